#!/usr/bin/env bash
# scripts/local-cluster.sh with the number of storage nodes as a knob and
# prebuilt binaries: 1 meta-service, NODES storage nodes (1..3), 1 gateway on
# 127.0.0.1:$GATEWAY_PORT. Ctrl-C / SIGTERM stops them all.
#
#   BIN=/work/target-loadtest/release NODES=1 DATA_DIR=/tmp/lt-1 loadtest/scripts/cluster.sh
# CPU_QUOTA=0.5 puts each storage node in its own cgroup (v1 cpu controller)
# limited to that many cores, so node counts can be compared at equal CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release}
NODES=${NODES:-3}
DATA=${DATA_DIR:-data/loadtest-cluster}
PORT=${GATEWAY_PORT:-15001}
mkdir -p "$DATA"
[ -f "$DATA/certs/ca.pem" ] || "$BIN/certs" init --dir "$DATA/certs"
for i in $(seq 1 "$NODES"); do
  name=storage-$i
  [ -f "$DATA/certs/$name.pem" ] || "$BIN/certs" issue --dir "$DATA/certs" --name "$name" --ip 127.0.0.1 --dns localhost
done
[ -f "$DATA/certs/gateway.pem" ] || "$BIN/certs" issue --dir "$DATA/certs" --name gateway --ip 127.0.0.1 --dns localhost

pids=()
stop() {
  trap - INT TERM EXIT
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "stopped; data and logs in $DATA"
}
trap stop INT TERM EXIT

"$BIN/meta-service" --id 1 --listen 127.0.0.1:7947 --data-dir "$DATA/meta-1" --bootstrap >>"$DATA/meta-1.log" 2>&1 &
pids+=($!)
for i in $(seq 1 "$NODES"); do
  "$BIN/storage-node" --id "$i" --data-dir "$DATA/storage-$i" \
    --rpc-listen "127.0.0.1:795$i" --http-listen "127.0.0.1:796$i" \
    --gossip-listen "127.0.0.1:797$i" --seeds 127.0.0.1:7971 \
    --meta 127.0.0.1:7947 --certs-dir "$DATA/certs" >>"$DATA/storage-$i.log" 2>&1 &
  pids+=($!)
  if [ -n "${CPU_QUOTA:-}" ]; then
    cg=/sys/fs/cgroup/cpu/loadtest-storage-$i
    mkdir -p "$cg"
    echo 100000 >"$cg/cpu.cfs_period_us"
    awk -v q="$CPU_QUOTA" 'BEGIN { printf "%d\n", q * 100000 }' >"$cg/cpu.cfs_quota_us"
    echo $! >"$cg/cgroup.procs"
  fi
done
"$BIN/gateway" --rest-port "$PORT" --listen-host 127.0.0.1 --meta 127.0.0.1:7947 \
  --certs-dir "$DATA/certs" --cert-name gateway >>"$DATA/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
echo "cluster up: $NODES storage node(s), REST on http://127.0.0.1:$PORT (logs: $DATA/*.log)"
wait
