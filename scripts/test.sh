#!/usr/bin/env bash
# The project's test command: installs what the build needs, runs every
# test of the workspace (unit, property, multi-process, crash, partition),
# then the official qdrant-client (from PyPI) against a real local cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo test --workspace --locked "$@"
cargo build --locked --bins -p meta-service -p storage-node -p gateway -p transport
BIN=target/debug gateway/tests/qdrant_client_smoke.sh
