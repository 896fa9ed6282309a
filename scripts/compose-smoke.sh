#!/usr/bin/env bash
# Smoke test of the containers: builds the images (offline, see
# scripts/docker-images.sh), brings docker-compose.yml up under a project
# name of its own, creates a collection through the load balancer, upserts,
# searches, checks /api/cluster/health, then `docker-compose down -v`.
#
#   scripts/compose-smoke.sh
#   SKIP_IMAGES=1 scripts/compose-smoke.sh    # use the images as they are
#   KEEP=1 ...                                # leave the cluster running
#   CHAOS=1 ...                               # with docker/chaos.compose.yml (5 storage nodes)
# Variables: PROJECT (vdbsmoke<pid>), LB_PORT (a free port), UP_TIMEOUT.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "compose-smoke.sh needs jq" >&2; exit 1; }
PROJECT=${PROJECT:-vdbsmoke$$}
files=(-f docker-compose.yml)
[ -z "${CHAOS:-}" ] || files+=(-f docker/chaos.compose.yml)
dc() { docker-compose -p "$PROJECT" "${files[@]}" "$@"; }
t0=$(date +%s)
elapsed() { echo $(($(date +%s) - t0)); }

if [ -z "${SKIP_IMAGES:-}" ]; then
  scripts/docker-images.sh
fi
t_images=$(date +%s)

if [ -z "${LB_PORT:-}" ]; then
  LB_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
export LB_PORT
url="http://127.0.0.1:$LB_PORT"

down() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    echo "== FAILED; last logs:" >&2
    dc logs --tail 15 >&2 || true
  fi
  if [ -z "${KEEP:-}" ]; then
    echo "== docker-compose down -v"
    timeout 120 docker-compose -p "$PROJECT" "${files[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  else
    echo "KEEP=1: project $PROJECT left running ($url); docker-compose -p $PROJECT ${files[*]} down -v"
  fi
  exit "$rc"
}
trap down EXIT INT TERM

echo "== project $PROJECT, REST on $url"
t_up0=$(date +%s)
scripts/compose-up.sh -p "$PROJECT" "${files[@]}"
t_up=$(date +%s)

fail() { echo "FAIL: $*" >&2; exit 1; }
req() {
  local out
  out=$(curl -sS --max-time 20 -H 'content-type: application/json' "$@") || fail "curl $*"
  echo "$out"
}

echo "== create collection smoke (3 shards x RF 3)"
out=$(req -X PUT "$url/collections/smoke" \
  -d '{"vectors":{"size":4,"distance":"Cosine"},"shard_number":3,"replication_factor":3}')
[ "$(jq -r .status <<<"$out")" = ok ] || fail "create: $out"

echo "== upsert 10 points"
points=$(jq -cn '[range(1; 11) as $i | {id: $i, vector: [$i, 1, ($i % 3), 0.5], payload: {n: $i, even: ($i % 2 == 0)}}]')
out=$(req -X PUT "$url/collections/smoke/points?wait=true" -d "{\"points\":$points}")
[ "$(jq -r .status <<<"$out")" = ok ] || fail "upsert: $out"

echo "== count and search"
out=$(req -X POST "$url/collections/smoke/points/count" -d '{"exact":true}')
[ "$(jq -r .result.count <<<"$out")" = 10 ] || fail "count: $out"
out=$(req -X POST "$url/collections/smoke/points/search" \
  -d '{"vector":[7,1,1,0.5],"limit":3,"with_payload":true}')
[ "$(jq -r '.result | length' <<<"$out")" = 3 ] || fail "search: $out"
[ "$(jq -r '.result[0].id' <<<"$out")" = 7 ] || fail "search: top hit is not point 7: $out"
out=$(req -X POST "$url/collections/smoke/points/search" \
  -d '{"vector":[7,1,1,0.5],"limit":10,"filter":{"must":[{"key":"even","match":{"value":true}}]}}')
[ "$(jq -r '[.result[].id] | sort | join(",")' <<<"$out")" = "2,4,6,8,10" ] || fail "filtered search: $out"

echo "== cluster health"
out=$(req "$url/api/cluster/health")
[ "$(jq -r .result.status <<<"$out")" = healthy ] || fail "health: $out"
nodes=$(dc config --services | grep -c '^storage')
[ "$(jq -r .result.nodes.alive <<<"$out")" = "$nodes" ] || fail "health: expected $nodes alive nodes: $out"
echo "   $(jq -c .result <<<"$out")"

echo "== load balancer: both gateways UP, requests spread over them"
for _ in 1 2 3 4 5 6; do
  req "$url/collections/smoke" >/dev/null
done
stats=$(dc exec -T lb curl -fsS 'http://127.0.0.1:8404/stats;csv') || fail "lb stats"
for gw in gateway1 gateway2; do
  # CSV columns: 2 svname, 8 stot (sessions), 18 status.
  line=$(awk -F, -v gw="$gw" '$1 == "gateways" && $2 == gw { print $18, $8 }' <<<"$stats")
  read -r status sessions <<<"$line"
  if [ "$status" != UP ] || [ "${sessions:-0}" -eq 0 ]; then
    fail "lb: $gw is '$line' (status, sessions)"
  fi
  echo "   $gw UP, $sessions requests"
done

out=$(req -X DELETE "$url/collections/smoke")
[ "$(jq -r .status <<<"$out")" = ok ] || fail "delete: $out"
t_end=$(date +%s)
echo "PASS: images $((t_images - t0)) s, up to serving $((t_up - t_up0)) s, smoke $((t_end - t_up)) s, total $(elapsed) s"
