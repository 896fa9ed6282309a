#!/usr/bin/env bash
# Builds the images docker-compose.yml runs, without any registry:
#
#   vectordb-base:bookworm   Debian 12 root file system from debootstrap with
#                            the run-time libraries, curl and haproxy (once)
#   vectordb:local           the binaries built here, on the host, in that base
#                            (Dockerfile --target prebuilt)
#   vectordb-lb:local        HAProxy in front of the gateways (docker/lb)
#
#   scripts/docker-images.sh                  # debug binaries (fast to build;
#                                             # FAISS is optimised in debug too)
#   PROFILE=release scripts/docker-images.sh  # optimised binaries
#
# Idempotent: the base is made once, cargo and docker rebuild only what
# changed. With public images, `docker-compose build` (or `docker build .`)
# compiles everything in Docker instead; see docker/README.md.
# Variables: PROFILE (debug|release), CARGO_TARGET_DIR (target), BASE_IMAGE,
# VECTORDB_IMAGE, VECTORDB_LB_IMAGE.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-debug}
BASE_IMAGE=${BASE_IMAGE:-vectordb-base:bookworm}
IMAGE=${VECTORDB_IMAGE:-vectordb:local}
LB_IMAGE=${VECTORDB_LB_IMAGE:-vectordb-lb:local}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BINS=(storage-node meta-service gateway certs vectordb loadtest)
# Docker 20.10 without buildx: the legacy builder (builds every stage up to
# --target, in file order, which is why the Dockerfile lists `prebuilt` first).
export DOCKER_BUILDKIT=0

case "$PROFILE" in
  debug) cargo_profile=() ;;
  release) cargo_profile=(--release) ;;
  *) echo "PROFILE must be debug or release" >&2; exit 2 ;;
esac

t0=$(date +%s)
step() { echo "== $* ($(($(date +%s) - t0)) s)"; }

step "base image $BASE_IMAGE"
BASE_IMAGE=$BASE_IMAGE docker/base/build-base.sh
t_base=$(date +%s)

step "cargo build ($PROFILE)"
scripts/install-deps.sh
CARGO_TARGET_DIR=$TARGET_DIR cargo build "${cargo_profile[@]}" --locked \
  -p storage-node -p meta-service -p gateway -p transport -p vectordb -p loadtest --bins
t_cargo=$(date +%s)

step "copy binaries into docker/bin (debug info stripped)"
for b in "${BINS[@]}"; do
  src="$TARGET_DIR/$PROFILE/$b"
  tmp="docker/bin/.$b.tmp"
  objcopy --strip-debug "$src" "$tmp"
  # Keep the old file (and its mtime) when nothing changed.
  if cmp -s "$tmp" "docker/bin/$b"; then rm -f "$tmp"; else mv -f "$tmp" "docker/bin/$b"; fi
done
ls -l docker/bin

# Quiet on success, the whole build log on failure.
build() {
  local log
  log=$(mktemp)
  if ! docker build "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}
step "docker build $IMAGE (--target prebuilt)"
build --target prebuilt --build-arg "RUNTIME_IMAGE=$BASE_IMAGE" -t "$IMAGE" .
step "docker build $LB_IMAGE"
build --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$LB_IMAGE" docker/lb
t_end=$(date +%s)

docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E "^($IMAGE|$LB_IMAGE|$BASE_IMAGE) " || true
echo "timings: base $((t_base - t0)) s, cargo $((t_cargo - t_base)) s, images $((t_end - t_cargo)) s, total $((t_end - t0)) s"
