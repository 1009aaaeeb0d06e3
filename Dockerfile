# The fake API in a container (docker or podman; `make image-test` builds and tests it, as CI does):
#   docker build -t veo-mockserver .
#   docker run --rm -p 127.0.0.1:8000:8000 -e MOCKSERVER_ADMIN_TOKEN veo-mockserver --speed 60
# Flags go after the image name; choose the port with MOCKSERVER_PORT, not --port (the HEALTHCHECK
# reads it). Replicas share state through Redis (`MOCKSERVER_STORE=redis://:PASSWORD@redis:6379/0`):
# compose.yaml, docs/shared-environments.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY mockserver ./mockserver
COPY scenarios ./scenarios
# pip builds the package in /app: its build/ and *.egg-info are removed in the same step, so no layer keeps them.
RUN pip install '.[redis,ui,metrics]' \
    && rm -rf build *.egg-info \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mockserver

USER 10001
# Listen on every interface inside the container; publish the port to choose who can reach it.
ENV MOCKSERVER_HOST=0.0.0.0 \
    MOCKSERVER_PORT=8000
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/__admin/health' % os.environ.get('MOCKSERVER_PORT', '8000'), timeout=2)"]

ENTRYPOINT ["mockserver", "serve"]
