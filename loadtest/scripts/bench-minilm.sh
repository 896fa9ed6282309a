#!/usr/bin/env bash
# The BENCHMARKS.md "Cluster (loadtest)" runs on debian-minilm-384: start a
# cluster with NODES storage nodes, ingest (SHARDS, RF), wait for the nodes'
# background indexing to go idle, then search at concurrency 1 and 8 and two
# hnsw_ef values with raw FAISS measured in the same invocation. Stops the
# cluster at the end. Reports land in $OUT.
#
#   NODES=1 SHARDS=1 RF=1 loadtest/scripts/bench-minilm.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-/work/target-loadtest/release}
DS=${DATASET:-../shared/datasets/debian-minilm-384}
NODES=${NODES:-1}; SHARDS=${SHARDS:-1}; RF=${RF:-1}
EFS=${EFS:-64,128}; CONC=${CONC:-1,8}; NQ=${NQ:-3000}; BASELINE=${BASELINE:-1}
TAG=${TAG:-n${NODES}-s${SHARDS}-rf${RF}}
OUT=${OUT:-target/loadtest}
PORT=${GATEWAY_PORT:-15001}
URL=http://127.0.0.1:$PORT
# Where the time goes: the gateway's and every node's /metrics.
METRICS=$URL/metrics
for i in $(seq 1 "$NODES"); do METRICS=$METRICS,http://127.0.0.1:796$i/metrics; done
DATA=${DATA_DIR:-/tmp/lt-cluster-$TAG}
rm -rf "$DATA"; mkdir -p "$OUT"
BIN=$BIN NODES=$NODES DATA_DIR=$DATA GATEWAY_PORT=$PORT CPU_QUOTA=${CPU_QUOTA:-} setsid loadtest/scripts/cluster.sh >"$OUT/cluster-$TAG.log" 2>&1 &
CLUSTER=$!
trap 'kill -TERM $CLUSTER 2>/dev/null; wait $CLUSTER 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do curl -fsS "$URL/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
sleep 2  # storage nodes register with the meta-service

"$BIN/loadtest" ingest --url "$URL" --collection minilm --base "$DS/base.fvecs" --payloads "$DS/texts.jsonl" \
  --recreate --shards "$SHARDS" --rf "$RF" --m 32 --ef-construct 200 --distance Cosine \
  --batch 256 --concurrency 4 --consistency majority --no-progress --report "$OUT/ingest-$TAG.json"

# Background indexing (frozen segments -> HNSW, then the idle merge into
# one graph) shows as storage-node CPU. It starts only once the shards have
# been idle for 5 s (idle seal), so wait that long first, then until the
# CPU stays under 5% of a core for 5 s (at most 10 min).
sleep 7
busy() {
  local t=0
  for p in $(pgrep -f "storage-node --id [0-9]+ --data-dir $DATA/"); do
    t=$((t + $(awk '{print $14+$15}' /proc/$p/stat)))
  done
  echo $t
}
start=$(date +%s); quiet=0
while [ $(( $(date +%s) - start )) -lt 600 ] && [ $quiet -lt 5 ]; do
  a=$(busy); sleep 1; b=$(busy)
  if [ $((b - a)) -lt 5 ]; then quiet=$((quiet + 1)); else quiet=0; fi
done
echo "indexing settled after $(( $(date +%s) - start )) s"

"$BIN/loadtest" search --url "$URL" --collection minilm --metrics "$METRICS" --queries "$DS/queries.fvecs" \
  --groundtruth "$DS/groundtruth.ivecs" --k 10 --concurrency "$CONC" --hnsw-ef "$EFS" \
  --queries-count "$NQ" --duration 60 --warmup 500 \
  $([ "$BASELINE" = 1 ] && echo --baseline) --base "$DS/base.fvecs" --m 32 --ef-construct 200 --threads 2 \
  --report "$OUT/search-$TAG.json"
# Server-side view of the same run (every gateway histogram).
curl -fsS "$URL/metrics" >"$OUT/gateway-metrics-$TAG.txt" || true
