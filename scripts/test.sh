#!/usr/bin/env bash
# The project's test command: installs what the build needs, runs every
# test of the workspace (unit, property, multi-process, crash, partition),
# the offline checks of deploy/ (Kubernetes manifests, alert rules,
# dashboard), the cluster dashboard page in headless Chromium, the
# official qdrant-client (from PyPI) against a real local
# cluster, schemathesis (PyPI) against the gateway's OpenAPI document on
# a real local cluster, the fuzz targets (fuzz/run.sh, about 30 s each), and
# the chaos suite against the docker-compose cluster (scripts/chaos.sh:
# kills, partitions, rolling restarts; needs root, Docker and
# docker-compose; CHAOS=0 skips it, and without Docker it says SKIPPED —
# in CI (`CI` set) a missing Docker fails instead).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo test --workspace --locked "$@"
cargo build --locked --bins -p meta-service -p storage-node -p gateway -p transport
# A cluster started from config files alone (`--config`, no other flag or
# environment), written to and searched; ~6 s.
BIN=target/debug scripts/config-cluster.sh
# Kubernetes manifests (schemas + each pod's command line through the real
# binaries) and the monitoring rules and dashboard; offline, seconds.
deploy/kubernetes/check.sh
deploy/monitoring/check.sh
# The /dashboard page in headless Chromium (Debian's, installed if
# missing) against a real local cluster, before and after a node SIGKILL;
# writes target/dashboard.png.
BIN=target/debug gateway/tests/dashboard/check.sh
BIN=target/debug gateway/tests/qdrant_client_smoke.sh
# The OpenAPI document (GET /openapi.json) against the live gateway:
# schemathesis (PyPI, pinned) sends generated requests for at most 110 s
# (about 2.5 minutes with the cluster's start); fails on any 5xx, any
# answer breaking its schema, any refused request that changed data.
BIN=target/debug gateway/tests/schemathesis/check.sh
# Coverage-guided fuzzing (AFL++ via cargo-afl, installed under target/fuzz
# on first use): each decoder target for FUZZ_SECONDS (30) from its
# committed corpus; fails on any crash or hang. FUZZ=0 skips it.
if [ "${FUZZ:-1}" = 0 ]; then
  echo "fuzz: skipped (FUZZ=0)"
else
  fuzz/run.sh
fi
if [ "${CHAOS:-1}" = 0 ]; then
  echo "chaos suite: skipped (CHAOS=0)"
elif [ "$(id -u)" -eq 0 ] && command -v docker-compose >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  scripts/chaos.sh
elif [ -n "${CI:-}" ]; then
  echo "chaos suite: needs root, Docker and docker-compose, which CI must have" >&2
  exit 1
else
  echo "chaos suite: SKIPPED (needs root, a running Docker and docker-compose)"
fi
