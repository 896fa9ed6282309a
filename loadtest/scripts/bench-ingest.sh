#!/usr/bin/env bash
# Ingest throughput on synthetic clustered 128-d data (loadtest gen), fresh
# 3-node cluster per run, bounded to DURATION seconds of sending.
#
#   SHARDS=3 RF=3 CONC=4 BATCH=1000 loadtest/scripts/bench-ingest.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-/work/target-loadtest/release}
SYN=${SYN:-/tmp/synth-200k-128}
NODES=${NODES:-3}; SHARDS=${SHARDS:-3}; RF=${RF:-3}; CONC=${CONC:-4}; BATCH=${BATCH:-1000}
DURATION=${DURATION:-60}; CONSISTENCY=${CONSISTENCY:-majority}
TAG=synth-n${NODES}-s${SHARDS}-rf${RF}-c${CONC}-b${BATCH}
OUT=${OUT:-target/loadtest}
DATA=/tmp/lt-cluster-$TAG
[ -f "$SYN/base.fvecs" ] || "$BIN/loadtest" gen --out "$SYN" --n 200000 --nq 1000 --dim 128 \
  --clusters 1000 --k 100 --seed 42 --report "$OUT/gen-synth.json"
rm -rf "$DATA"; mkdir -p "$OUT"
BIN=$BIN NODES=$NODES DATA_DIR=$DATA setsid loadtest/scripts/cluster.sh >"$OUT/cluster-$TAG.log" 2>&1 &
CLUSTER=$!
trap 'kill -TERM $CLUSTER 2>/dev/null; wait $CLUSTER 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do curl -fsS http://127.0.0.1:15001/readyz >/dev/null 2>&1 && break; sleep 0.2; done
sleep 2
"$BIN/loadtest" ingest --collection synth --base "$SYN/base.fvecs" --create --shards "$SHARDS" \
  --rf "$RF" --m 32 --ef-construct 200 --distance Euclid --batch "$BATCH" --concurrency "$CONC" \
  --consistency "$CONSISTENCY" --no-progress --duration "$DURATION" --searchable-timeout 60 \
  --report "$OUT/ingest-$TAG.json"
