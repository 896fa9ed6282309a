#!/usr/bin/env bash
# Starts 1 meta-service, 3 storage nodes and 1 gateway as local processes
# (loopback only, data in a temp dir), installs the official qdrant-client
# from PyPI into a venv and runs the python/ tests against the gateway:
# qdrant_client_smoke.py (core routes), qdrant_client_read_api.py (every
# read-only method), qdrant_client_aliases_batch.py (aliases, batch
# updates), qdrant_client_filters.py (every filter condition, with and
# without payload indexes, against the client's local mode). Every process
# is stopped on exit.
#
#   BIN=target/release gateway/tests/qdrant_client_smoke.sh
#
# BIN: folder with meta-service, storage-node, gateway and certs binaries
# (built with `cargo build --release -p meta-service -p storage-node
# -p gateway -p transport --bins`). PORT_BASE (default 25000) moves every
# port. VENV: where to create the virtualenv (default $WORK/venv).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN=${BIN:-target/release}
BASE=${PORT_BASE:-25000}
WORK=$(mktemp -d)
VENV=${VENV:-$WORK/venv}
REST=$((BASE + 1))
META=127.0.0.1:$((BASE + 7))

# shellcheck source=gateway/tests/lib/loopback-cluster.sh
. "$HERE/lib/loopback-cluster.sh"
start_loopback_cluster
wait_active_nodes 3 || exit 1

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q qdrant-client numpy
for test in qdrant_client_smoke qdrant_client_read_api qdrant_client_aliases_batch qdrant_client_query_api qdrant_client_filters; do
  GATEWAY_URL="http://127.0.0.1:$REST" "$VENV/bin/python" "$HERE/python/$test.py" || {
    echo "$test failed; gateway log:"; tail -n 40 "$WORK/gateway.log"; exit 1
  }
done
