#!/usr/bin/env bash
# A cluster started from config files alone: 1 meta-service, 3 storage
# nodes and 1 gateway on loopback, each run as `<binary> --config <file>`
# with no other flag and an empty environment (PATH, HOME and RUST_LOG
# only). Every file is a whole-cluster file in the layout of
# docs/configuration.md (all four sections; each service ignores the
# others'), differing only in the process's node_id and ports. The check:
# the gateway sees 3 active nodes, a collection is created, points are
# upserted and searched, and the meta-service seeded the file's
# `cluster.rebalancing.throttle_mb_per_sec` into the cluster's settings.
#
#   BIN=target/debug scripts/config-cluster.sh
#
# BIN: folder with meta-service, storage-node, gateway and certs (default
# target/debug; scripts/test.sh builds them). PORT_BASE (default 26000)
# moves every port. KEEP=1 keeps the logs.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/debug}
BASE=${PORT_BASE:-26000}
WORK=$(mktemp -d)
REST=$((BASE + 1))
META_PORT=$((BASE + 7))
KEY=config-cluster-key
pids=()
stop() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap stop INT TERM EXIT
fail() { echo "config-cluster: FAIL: $*" >&2; tail -n 15 "$WORK"/*.log >&2; exit 1; }

"$BIN/certs" init --dir "$WORK/certs" >/dev/null
for name in storage-1 storage-2 storage-3 gateway; do
  "$BIN/certs" issue --dir "$WORK/certs" --name "$name" --ip 127.0.0.1 --dns localhost >/dev/null
done

# The whole-cluster file for one process: $1 node_id, $2 storage node
# number (its ports and data dir).
cluster_file() {
  local id=$1 n=$2
  cat <<YAML
cluster:
  node_id: "$id"
  swim: {probe_interval: 1s, probe_timeout: 500ms, suspect_timeout: 1.1s, gossip_fanout: 3, port: $((BASE + 30 + n))}
  raft: {election_timeout: 150-300ms, heartbeat_interval: 50ms, snapshot_interval: 1000, port: $META_PORT}
  seed_nodes: ["127.0.0.1:$((BASE + 31))"]
  rebalancing: {auto_enabled: true, max_concurrent_migrations: 1, throttle_mb_per_sec: 42}
meta_service:
  listen: "127.0.0.1:$META_PORT"
  data_dir: "$WORK/meta"
  bootstrap: true
storage_node:
  data_dir: "$WORK/storage-$n"
  rpc_listen: "127.0.0.1:$((BASE + 10 + n))"
  http_listen: "127.0.0.1:$((BASE + 20 + n))"
  gossip_advertise: "127.0.0.1:$((BASE + 30 + n))"
  certs_dir: "$WORK/certs"
  heartbeat: 100ms
gateway:
  rest_port: $REST
  listen_host: "127.0.0.1"
  api_key: "$KEY"
  certs_dir: "$WORK/certs"
  cert_name: "gateway"
YAML
}

start() { # name binary file
  env -i PATH="$PATH" HOME="${HOME:-/tmp}" RUST_LOG=info "$2" --config "$3" >>"$WORK/$1.log" 2>&1 &
  pids+=($!)
}
started=$(date +%s.%N)
cluster_file 1 1 >"$WORK/meta.yml"
start meta-1 "$BIN/meta-service" "$WORK/meta.yml"
for i in 1 2 3; do
  cluster_file "$i" "$i" >"$WORK/storage-$i.yml"
  start "storage-$i" "$BIN/storage-node" "$WORK/storage-$i.yml"
done
cluster_file gateway-1 1 >"$WORK/gateway.yml"
start gateway "$BIN/gateway" "$WORK/gateway.yml"

api() { # method path [json]
  curl -fsS -X "$1" -H "api-key: $KEY" -H 'content-type: application/json' \
    ${3:+--data "$3"} "http://127.0.0.1:$REST$2"
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

active=""
for _ in $(seq 1 150); do
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || fail "a process exited"; done
  active=$(api GET /api/cluster/metrics 2>/dev/null | json 'd["result"]["active_nodes"]' 2>/dev/null || true)
  [ "$active" = 3 ] && break
  sleep 0.2
done
[ "$active" = 3 ] || fail "the gateway did not see 3 active storage nodes (saw ${active:-none})"
up=$(python3 -c "import time; print(round(time.time() - $started, 1))")

api PUT /collections/c '{"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 2, "replication_factor": 2}' >/dev/null \
  || fail "create collection"
points=$(python3 -c 'import json; print(json.dumps({"points": [{"id": i, "vector": [1.0, float(i), 0.0, 0.5], "payload": {"i": i}} for i in range(1, 21)]}))')
api PUT '/collections/c/points?wait=true' "$points" >/dev/null || fail "upsert"
top=$(api POST /collections/c/points/search '{"vector": [0.0, 1.0, 0.0, 0.0], "limit": 3}' | json 'd["result"][0]["id"]') \
  || fail "search"
[ "$top" = 20 ] || fail "search returned $top first, not 20"
count=$(api POST /collections/c/points/count '{"exact": true}' | json 'd["result"]["count"]') || fail "count"
[ "$count" = 20 ] || fail "count is $count, not 20"
throttle=$(api GET /api/cluster/settings | json 'd["result"]["rebalancing.throttle_mb_per_sec"]') || fail "settings"
[ "$throttle" = 42.0 ] || [ "$throttle" = 42 ] || fail "throttle_mb_per_sec is $throttle, not the file's 42"
# Gossip from the file alone: cluster.swim.port, gossip_advertise, seed_nodes.
live=""
for _ in $(seq 1 50); do
  live=$(curl -fsS "http://127.0.0.1:$((BASE + 21))/metrics" | awk '/^membership_live_nodes / {print $2}' || true)
  [ "$live" = 3 ] && break
  sleep 0.2
done
[ "$live" = 3 ] || fail "gossip: storage-1 sees ${live:-no} live nodes, not 3"
echo "config-cluster: ok: 5 processes from config files alone; 3 nodes active after ${up}s; 20 points upserted, searched and counted; the file's rebalancing throttle (42) is the cluster's; gossip sees 3 nodes"
