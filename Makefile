# `make serve` and `make test` set everything up on a fresh machine: they create .venv with
# the project and its test extra installed (and `make test` the system programs the tests drive,
# with tools/system-deps.sh: redis-server, curl, openssl, chromium, prometheus), then run; `make test` first runs
# `make lint` (ruff check, ruff format --check, mypy: zero findings). Pass options through ARGS, e.g.
#   make serve ARGS="--speed 60"        make test ARGS="-k lifecycle"
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint bench install clean image-test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/mockserver serve $(ARGS)

test: $(STAMP) lint
	./tools/system-deps.sh
	$(BIN)/python -m pytest $(ARGS)

# Lint and types first (part of `make test`): zero findings, with the versions pinned in the test extra.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The container image, built from the Dockerfile and tested with real requests (tests/image; CI runs it
# after `make test`). Sets up what it needs: podman, runc and debootstrap (tools/system-deps.sh image),
# the stand-in for python:3.11-slim (tools/container/base.sh: built once, kept in podman's store).
VEO_IMAGE ?= localhost/veo-mockserver:test
PODMAN := tools/container/podman.sh

image-test: $(STAMP)
	./tools/system-deps.sh image
	./tools/container/base.sh
	$(PODMAN) build --layers=false --force-rm --pull=never --network host --format docker --tag $(VEO_IMAGE) .
	$(PODMAN) image prune --force >/dev/null
	@echo "$(VEO_IMAGE): $$($(PODMAN) image inspect --format '{{.Size}}' $(VEO_IMAGE)) bytes"
	IMAGE_UNDER_TEST=$(VEO_IMAGE) $(BIN)/python -m pytest tests/image -n 0 $(ARGS)

# Not part of `make test`: needs wrk and redis-server (apt-get install wrk redis-server) and, for
# the peers, npm and Java.
bench: $(STAMP)
	$(BIN)/python bench/bench.py --sustained --redis --peers --million $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
