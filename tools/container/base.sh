#!/usr/bin/env bash
# The stand-in for docker.io/library/python:3.11-slim, for machines with no registry to pull from:
# Debian bookworm's Python 3.11 (debootstrap, minbase) with a venv at /opt/py first on PATH, as the
# real image has its own Python first on PATH, and this machine's CA bundle (so pip inside the build
# reaches the package registry as the host does). Built once: it stays in podman's store
# (tools/container/podman.sh) until removed; `make image-test` calls this script every time.
# DEBIAN_MIRROR chooses the mirror (default http://deb.debian.org/debian).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
podman="$here/podman.sh"
base=docker.io/library/python:3.11-slim
if "$podman" image exists "$base"; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then  # debootstrap and chroot
  echo "Building the stand-in for $base needs root (debootstrap, chroot): run make image-test as root." >&2
  exit 1
fi
echo "Building the stand-in for $base (debootstrap; once per machine)..." >&2
rootfs="$(mktemp -d /var/tmp/python-slim-standin.XXXXXX)"
# never into a filesystem debootstrap left mounted inside it (/proc, /sys, a bound /dev) if it died
trap 'for m in proc sys dev/pts dev; do umount -l "$rootfs/$m" 2>/dev/null || true; done
      rm -rf --one-file-system "$rootfs" "$rootfs.log"' EXIT
chmod 755 "$rootfs"  # mktemp made it 0700: it becomes the image's /, which every user must traverse
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$rootfs.log" 2>&1 || {
  tail -n 30 "$rootfs.log" >&2
  exit 1
}
chroot "$rootfs" /usr/bin/python3 -m venv /opt/py
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
# What the real slim image does not carry either: apt's downloads and lists, documentation.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log
tar -C "$rootfs" --numeric-owner -c . | "$podman" import --quiet \
  --change 'ENV PATH=/opt/py/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "stand-in for $base (tools/container/base.sh)" - "$base" >/dev/null
echo "Built $base ($("$podman" image inspect --format '{{.Size}}' "$base") bytes)." >&2
