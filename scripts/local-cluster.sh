#!/usr/bin/env bash
# Starts a working local cluster from a fresh clone: 1 meta-service, 3
# storage nodes and 1 gateway as local processes, every byte of data and
# every log under one folder ($DATA_DIR, default data/local-cluster).
# Ctrl-C stops them all cleanly. Installs the build's system packages first.
#
#   REST (Qdrant-compatible):  http://127.0.0.1:15001   (GATEWAY_PORT)
#   meta-service:              http://127.0.0.1:7947
#   storage nodes:             QUIC 127.0.0.1:7951-7953, HTTP /metrics 7961-7963,
#                              gossip 127.0.0.1:7971-7973
# PORT_OFFSET=N shifts every port but the REST one by N (two clusters on one machine).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked -p meta-service -p storage-node -p gateway -p transport --bins
BIN=target/release
DATA=${DATA_DIR:-data/local-cluster}
PORT=${GATEWAY_PORT:-15001}
OFF=${PORT_OFFSET:-0}
META=127.0.0.1:$((7947 + OFF))
mkdir -p "$DATA"

# Dev certificates (a cluster CA and one certificate per process), once.
[ -f "$DATA/certs/ca.pem" ] || "$BIN/certs" init --dir "$DATA/certs"
for name in storage-1 storage-2 storage-3 gateway; do
  [ -f "$DATA/certs/$name.pem" ] || "$BIN/certs" issue --dir "$DATA/certs" --name "$name" --ip 127.0.0.1 --dns localhost
done

pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping cluster..."
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "stopped; data and logs in $DATA"
}
trap stop INT TERM EXIT

"$BIN/meta-service" --id 1 --listen "$META" --data-dir "$DATA/meta-1" --bootstrap >>"$DATA/meta-1.log" 2>&1 &
pids+=($!)
for i in 1 2 3; do
  "$BIN/storage-node" --id "$i" --data-dir "$DATA/storage-$i" \
    --rpc-listen "127.0.0.1:$((7950 + OFF + i))" --http-listen "127.0.0.1:$((7960 + OFF + i))" \
    --gossip-listen "127.0.0.1:$((7970 + OFF + i))" --seeds "127.0.0.1:$((7971 + OFF))" \
    --meta "$META" --certs-dir "$DATA/certs" >>"$DATA/storage-$i.log" 2>&1 &
  pids+=($!)
done
"$BIN/gateway" --rest-port "$PORT" --listen-host 127.0.0.1 --meta "$META" \
  --certs-dir "$DATA/certs" --cert-name gateway >>"$DATA/gateway.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
echo "cluster up: REST on http://127.0.0.1:$PORT (logs: $DATA/*.log). Ctrl-C stops it."
echo "try: curl -X PUT http://127.0.0.1:$PORT/collections/demo -H 'content-type: application/json' \\"
echo "       -d '{\"vectors\": {\"size\": 4, \"distance\": \"Cosine\"}, \"shard_number\": 3, \"replication_factor\": 2}'"
wait
