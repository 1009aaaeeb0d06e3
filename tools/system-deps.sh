#!/usr/bin/env bash
# Install the system programs the tests drive for real, when they are missing. Debian or Ubuntu, as
# root or with sudo; elsewhere it says what to install.
#   tools/system-deps.sh         what `make test` needs: redis-server (the shared store), curl (the
#                                README's first session), openssl (certificates for the HTTPS callback
#                                receivers), chromium (the dashboard's browser tests, driven by
#                                Playwright for Python with executable_path: `playwright install` is
#                                never needed), prometheus (the server that scrapes /__admin/metrics
#                                in tests/test_metrics.py)
#   tools/system-deps.sh image   what `make image-test` needs: podman and runc (build and run the image),
#                                debootstrap (the stand-in base image), redis-server (two containers on
#                                one Redis). Separate, so that `make test` never installs a container engine.
set -euo pipefail
case "${1:-test}" in
  test) programs=(redis-server curl openssl chromium prometheus) ;;
  image) programs=(podman runc debootstrap redis-server) ;;
  *) echo "usage: $0 [test|image]" >&2; exit 2 ;;
esac
target="make ${1:-test}"
[ "$target" = "make image" ] && target="make image-test"
needed=()
for program in "${programs[@]}"; do  # each program comes in the Debian package of its name
  command -v "$program" >/dev/null 2>&1 || needed+=("$program")
done
[ ${#needed[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$target needs: ${needed[*]} (install them with your package manager)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "$target needs: ${needed[*]}; run as root, or: apt-get install ${needed[*]}" >&2
    exit 1
  fi
fi
echo "Installing ${needed[*]} (apt-get)..." >&2
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
