#!/usr/bin/env bash
# Builds the local runtime base image `vectordb-base:bookworm` without any
# registry: debootstrap a minimal Debian 12 (bookworm) root file system with
# the run-time libraries of the binaries (OpenBLAS, libgomp, libstdc++),
# ca-certificates, curl (health checks) and haproxy (the load balancer
# image), then `docker import` it. The host builds the binaries on Debian 12
# too, so the glibc matches.
#
#   docker/base/build-base.sh            # skips if the image exists
#   FORCE=1 docker/base/build-base.sh    # rebuild
#   BASE_IMAGE=name:tag MIRROR=http://... SUITE=bookworm
#
# Needs root (debootstrap) and network access to the Debian mirror only.
set -euo pipefail
IMAGE=${BASE_IMAGE:-vectordb-base:bookworm}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PACKAGES=libopenblas0-pthread,libgomp1,libstdc++6,ca-certificates,curl,haproxy

if [ -z "${FORCE:-}" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "base image $IMAGE exists (FORCE=1 rebuilds)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "build-base.sh: debootstrap needs root" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
fi

start=$(date +%s)
root=$(mktemp -d /var/tmp/vectordb-base.XXXXXX)
cleanup() { rm -rf "$root"; }
trap cleanup EXIT

echo "debootstrap $SUITE into $root (packages: $PACKAGES)"
timeout 1200 debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" \
  >"$root.log" 2>&1 || { tail -n 40 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

# Smaller image: no package caches, lists, docs or man pages.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
# apt inside the image (optional extra packages) uses the same mirror.
echo "deb $MIRROR $SUITE main" >"$root/etc/apt/sources.list"

tar --numeric-owner -C "$root" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' \
  -c 'CMD ["bash"]' \
  -m "debootstrap --variant=minbase $SUITE + $PACKAGES" - "$IMAGE" >/dev/null
echo "built $IMAGE in $(($(date +%s) - start)) s ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
