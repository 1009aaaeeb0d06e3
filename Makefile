# `make serve` and `make test` set everything up on a fresh machine: they create .venv with
# the project and its test extra installed (and `make test` the system programs the tests drive,
# with tools/system-deps.sh: redis-server, curl, openssl, chromium, prometheus), then run; `make test` first runs
# `make lint` (ruff check, ruff format --check, mypy: zero findings). Pass options through ARGS, e.g.
#   make serve ARGS="--speed 60"        make test ARGS="-k lifecycle"
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint bench install clean

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

# Not part of `make test`: needs wrk and redis-server (apt-get install wrk redis-server) and, for
# the peers, npm and Java.
bench: $(STAMP)
	$(BIN)/python bench/bench.py --sustained --redis --peers --million $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
