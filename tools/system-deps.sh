#!/usr/bin/env bash
# Install the system programs the tests drive for real, when they are missing: redis-server (the
# shared store), curl (the README's first session), openssl (certificates for the HTTPS callback
# receivers), chromium (the dashboard's browser tests, driven
# by Playwright for Python with executable_path: `playwright install` is never needed), prometheus (the
# server that scrapes /__admin/metrics in tests/test_metrics.py). Debian or Ubuntu, as root or with sudo;
# elsewhere it says what to install.
set -euo pipefail
needed=()
command -v redis-server >/dev/null 2>&1 || needed+=(redis-server)
command -v curl >/dev/null 2>&1 || needed+=(curl)
command -v openssl >/dev/null 2>&1 || needed+=(openssl)
command -v chromium >/dev/null 2>&1 || needed+=(chromium)
command -v prometheus >/dev/null 2>&1 || needed+=(prometheus)
[ ${#needed[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "make test needs: ${needed[*]} (install them with your package manager)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "make test needs: ${needed[*]}; run as root, or: apt-get install ${needed[*]}" >&2
    exit 1
  fi
fi
echo "Installing ${needed[*]} (apt-get)..." >&2
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
