#!/usr/bin/env bash
# podman as `make image-test` runs it: tools/container/containers.conf, vfs storage in a store of the
# project's own (so neither podman's default store, which may use another driver, nor its images
# and containers are touched): as root (as CI runs it) in /var/lib/veo-mockserver/containers, as
# another user under XDG_DATA_HOME (rootless podman, not tried here). The store keeps the stand-in
# base image between runs. MOCKSERVER_PODMAN_ROOT chooses another place.
#   tools/container/podman.sh images        tools/container/podman.sh rmi docker.io/library/python:3.11-slim
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ "$(id -u)" -eq 0 ]; then
  root="${MOCKSERVER_PODMAN_ROOT:-/var/lib/veo-mockserver/containers}"
  run="/run/veo-mockserver"
else
  root="${MOCKSERVER_PODMAN_ROOT:-${XDG_DATA_HOME:-$HOME/.local/share}/veo-mockserver/containers}"
  run="${XDG_RUNTIME_DIR:-/tmp/veo-mockserver-$(id -u)}/veo-mockserver"
fi
export CONTAINERS_CONF="$here/containers.conf"
exec podman --root "$root" --runroot "$run/storage" --tmpdir "$run/libpod" --storage-driver vfs "$@"
