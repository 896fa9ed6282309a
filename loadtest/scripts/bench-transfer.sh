#!/usr/bin/env bash
# Shard transfer benchmark: a fresh 3-node cluster (release binaries) takes
# N synthetic 128-d points in SHARDS shards at RF and builds its indexes
# (the collection turns green); a 4th storage node then joins and the
# rebalancer moves its share to it with no command. Prints the time until
# no transfer runs, points and bytes moved, the rate, and search latency
# before the join, during the transfers, and once the moved replicas are
# indexed again (same queries, same concurrency).
#
#   N=1000000 SHARDS=12 RF=1 THROTTLE=100 loadtest/scripts/bench-transfer.sh
#   THROTTLE=0 (unthrottled) | THROTTLE=20 (MB/s per transfer)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release}
N=${N:-1000000}; SHARDS=${SHARDS:-12}; RF=${RF:-1}; THROTTLE=${THROTTLE:-100}
CONC=${CONC:-4}; SEARCH_CONC=${SEARCH_CONC:-2}
OUT=${OUT:-target/loadtest}
SYN=${SYN:-data/bench/synth-$N-128}
DATA=${DATA_DIR:-data/bench/transfer-n$N-s$SHARDS-rf$RF-t$THROTTLE}
META=http://127.0.0.1:7947
GW=http://127.0.0.1:15001
mkdir -p "$OUT"; rm -f "$OUT"/transfer-search-*.json
[ -f "$SYN/base.fvecs" ] || "$BIN/loadtest" gen --out "$SYN" --n "$N" --nq 1000 --dim 128 \
  --clusters 1000 --k 10 --seed 7 --report "$OUT/gen-transfer.json"
rm -rf "$DATA"; mkdir -p "$DATA"
BIN=$BIN NODES=3 DATA_DIR=$DATA setsid loadtest/scripts/cluster.sh >"$OUT/cluster-transfer.log" 2>&1 &
CLUSTER=$!
NODE4=
cleanup() {
  [ -n "$NODE4" ] && kill -TERM "$NODE4" 2>/dev/null
  kill -TERM -- -$CLUSTER 2>/dev/null || kill -TERM $CLUSTER 2>/dev/null
  wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 150); do curl -fsS $GW/readyz >/dev/null 2>&1 && break; sleep 0.2; done
sleep 2
command() { curl -fsS -X POST $META/v1/commands -H 'content-type: application/json' -d "$1" >/dev/null; }
command "{\"type\":\"update_config\",\"key\":\"rebalancing.throttle_mb_per_sec\",\"value\":\"$THROTTLE\"}"
"$BIN/loadtest" ingest --collection synth --base "$SYN/base.fvecs" --create --shards "$SHARDS" \
  --rf "$RF" --distance Euclid --batch 1000 --concurrency "$CONC" --no-progress \
  --searchable-timeout 600 --report "$OUT/transfer-ingest.json"

map() { curl -fsS "$META/v1/cluster/map?consistency=local"; }
running() { map | jq '[.map.collections[].shards[] | select(.migration != null)] | length'; }
on_node4() { map | jq '[.map.collections[].shards[] | select(any(.replicas[]; .node == 4))] | length'; }
completed() { map | jq '.map.transfers.completed'; }

search_run() { # $1: report file; one bounded run of SEARCH_CONC closed-loop clients
  "$BIN/loadtest" search --collection synth --queries "$SYN/queries.fvecs" \
    --groundtruth "$SYN/groundtruth.ivecs" --concurrency "$SEARCH_CONC" --queries-count 1000000 \
    --duration 10 --warmup 0 --report "$1" >/dev/null 2>&1 || true
}
# The baseline is searched on built indexes: wait until the collection says
# green (every replica indexed), at most 20 min.
wait_green() {
  for _ in $(seq 1 1200); do
    [ "$(curl -fsS $GW/collections/synth | jq -r .result.status)" = green ] && return 0
    sleep 1
  done
  echo "collection not green after 20 min" >&2
}
green_from=$(date +%s.%N); wait_green
printf 'indexes built (green) %.0f s after the ingest\n' "$(echo "$(date +%s.%N) - $green_from" | bc -l)"
for j in 1 2 3; do search_run "$OUT/transfer-search-before-$j.json"; done

[ -f "$DATA/certs/storage-4.pem" ] || "$BIN/certs" issue --dir "$DATA/certs" --name storage-4 --ip 127.0.0.1 --dns localhost
before=$(completed)
start=$(date +%s.%N)
"$BIN/storage-node" --id 4 --data-dir "$DATA/storage-4" --rpc-listen 127.0.0.1:7954 \
  --http-listen 127.0.0.1:7964 --gossip-listen 127.0.0.1:7974 --seeds 127.0.0.1:7971 \
  --meta 127.0.0.1:7947 --certs-dir "$DATA/certs" >>"$DATA/storage-4.log" 2>&1 &
NODE4=$!
# Transfers start once node 4 heartbeats; done when none runs and node 4
# holds shards. Searches run meanwhile, 10 s at a time.
i=0
for _ in $(seq 1 360); do
  i=$((i + 1)); search_run "$OUT/transfer-search-during-$i.json"
  if [ "$(on_node4)" -gt 0 ] && [ "$(running)" -eq 0 ]; then break; fi
done
end=$(date +%s.%N)
moved=$(map | jq "[.map.transfers.recent[] | select(.outcome == \"completed\")] | .[-($(completed) - $before):]")
points=$(echo "$moved" | jq '[.[].points_copied] | add // 0')
bytes=$(echo "$moved" | jq '[.[].bytes_copied] | add // 0')
secs=$(echo "$end - $start" | bc -l)
green_from=$(date +%s.%N); wait_green
printf 'moved replicas indexed (green) %.0f s after the last transfer\n' "$(echo "$(date +%s.%N) - $green_from" | bc -l)"
for j in 1 2 3; do search_run "$OUT/transfer-search-after-$j.json"; done
printf 'transfers: %s completed, %s points, %s bytes in %.1f s (from node 4 start): %.0f points/s, %.1f MB/s (throttle %s MB/s)\n' \
  "$(($(completed) - before))" "$points" "$bytes" "$secs" "$(echo "$points / $secs" | bc -l)" \
  "$(echo "$bytes / $secs / 1000000" | bc -l)" "$THROTTLE"
p99() { jq -s -c '[.[].figures.runs[0].cluster | select(. != null)] | {runs: length, qps: ([.[].qps] | add / length), p99_ms_median: ([.[].latency.p99_ms] | sort | .[length / 2 | floor]), p99_ms_max: ([.[].latency.p99_ms] | max), errors: ([.[].errors] | add)}' "$@"; }
echo "search before the join (10 s runs):     $(p99 "$OUT"/transfer-search-before-*.json)"
echo "search during the transfers (10 s runs): $(p99 "$OUT"/transfer-search-during-*.json)"
echo "search afterwards (10 s runs):          $(p99 "$OUT"/transfer-search-after-*.json)"
map | jq -c '[.map.nodes | keys[] as $n | $n] as $ids | [.map.collections[].shards[] | .replicas[].node] | group_by(.) | map({node: .[0], shards: length})'
