#!/usr/bin/env bash
# Starts 1 meta-service, 3 storage nodes and 1 gateway as local processes
# (loopback only, data in a temp dir), installs the official qdrant-client
# from PyPI into a venv and runs the python/ tests against the gateway:
# qdrant_client_smoke.py (core routes), qdrant_client_read_api.py (every
# read-only method), qdrant_client_aliases_batch.py (aliases, batch
# updates). Every process is stopped on exit.
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

pids=()
stop() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap stop INT TERM EXIT

"$BIN/certs" init --dir "$WORK/certs" >/dev/null
for name in storage-1 storage-2 storage-3 gateway; do
  "$BIN/certs" issue --dir "$WORK/certs" --name "$name" --ip 127.0.0.1 --dns localhost >/dev/null
done
"$BIN/meta-service" --id 1 --listen "$META" --data-dir "$WORK/meta-1" --bootstrap >>"$WORK/meta-1.log" 2>&1 &
pids+=($!)
for i in 1 2 3; do
  "$BIN/storage-node" --id "$i" --data-dir "$WORK/storage-$i" \
    --rpc-listen "127.0.0.1:$((BASE + 10 + i))" --http-listen "127.0.0.1:$((BASE + 20 + i))" \
    --gossip-listen "127.0.0.1:$((BASE + 30 + i))" --seeds "127.0.0.1:$((BASE + 31))" \
    --meta "$META" --certs-dir "$WORK/certs" >>"$WORK/storage-$i.log" 2>&1 &
  pids+=($!)
done
"$BIN/gateway" --rest-port "$REST" --listen-host 127.0.0.1 --meta "$META" \
  --certs-dir "$WORK/certs" --cert-name gateway >>"$WORK/gateway.log" 2>&1 &
pids+=($!)

ready=0
for _ in $(seq 1 150); do
  # A process that died (a port taken by another cluster) must not let
  # the tests run against whatever else answers on these ports.
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "a cluster process exited; logs:"; tail -n 5 "$WORK"/*.log; exit 1; }
  done
  if curl -fsS "http://127.0.0.1:$REST/readyz" >/dev/null 2>&1 \
    && [ "$(curl -fsS "http://127.0.0.1:$REST/api/cluster/metrics" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["active_nodes"])' 2>/dev/null)" = 3 ]; then
    ready=1
    break
  fi
  sleep 0.2
done
if [ "$ready" != 1 ]; then
  echo "cluster did not come up; logs:"; tail -n 20 "$WORK"/*.log; exit 1
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q qdrant-client numpy
for test in qdrant_client_smoke qdrant_client_read_api qdrant_client_aliases_batch; do
  GATEWAY_URL="http://127.0.0.1:$REST" "$VENV/bin/python" "$HERE/python/$test.py" || {
    echo "$test failed; gateway log:"; tail -n 40 "$WORK/gateway.log"; exit 1
  }
done
