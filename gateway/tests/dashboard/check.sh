#!/usr/bin/env bash
# The cluster dashboard (GET /dashboard) in a real headless browser against
# a real local cluster: 1 meta-service, 3 storage nodes and 1 gateway as
# processes on loopback, the gateway requiring an API key.
#
#  1. /dashboard answers without a key, the data routes do not.
#  2. check_page.py opens the page with `?api_key=` in headless Chromium:
#     it must show the 3 nodes alive, every replica and primary of a
#     3-shard RF-2 collection and its point count; storage node 3 is then
#     SIGKILLed and the same page, polling on its own, must show it dead
#     and the alive -> dead change.
#  3. A screenshot of the page is written to $SCREENSHOT
#     (default target/dashboard.png), the test's artifact.
#
#   BIN=target/debug gateway/tests/dashboard/check.sh
#
# BIN: folder with meta-service, storage-node, gateway and certs binaries.
# PORT_BASE (default 26000) moves every port. Installs Debian's chromium
# if missing (idempotent). Every process is stopped on exit.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN=${BIN:-target/debug}
BASE=${PORT_BASE:-26000}
SCREENSHOT=$(realpath -m "${SCREENSHOT:-target/dashboard.png}")
WORK=$(mktemp -d)
REST=$((BASE + 1))
META=127.0.0.1:$((BASE + 7))
KEY=dashboard-test-key
URL="http://127.0.0.1:$REST"

if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# Dead after at most 2 s of silence: the kill shows within seconds.
META_ARGS=(--node-dead-after-ms 2000)
GATEWAY_API_KEY=$KEY
# shellcheck source=gateway/tests/lib/loopback-cluster.sh
. "$HERE/../lib/loopback-cluster.sh"
start_loopback_cluster

fail() { echo "dashboard check: $*"; tail -n 20 "$WORK"/*.log; exit 1; }
api() { curl -fsS -H "api-key: $KEY" "$@"; }
wait_active_nodes 3 -H "api-key: $KEY" || fail "cluster did not come up"

# The page needs no key; the data routes do.
code=$(curl -s -o "$WORK/page.html" -w '%{http_code}' "$URL/dashboard")
[ "$code" = 200 ] || fail "/dashboard answered $code without a key"
grep -q '/api/cluster/topology' "$WORK/page.html" || fail "/dashboard is not the dashboard page"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/cluster/topology")
[ "$code" = 401 ] || fail "/api/cluster/topology answered $code without a key"

api -X PUT "$URL/collections/dash" -H 'content-type: application/json' \
  -d '{"vectors": {"size": 4, "distance": "Cosine"}, "shard_number": 3, "replication_factor": 2}' >/dev/null
python3 -c 'import json; print(json.dumps({"points": [{"id": i, "vector": [1, i % 7, i % 5, 1]} for i in range(300)]}))' \
  | api -X PUT "$URL/collections/dash/points?wait=true" -H 'content-type: application/json' -d @- >/dev/null

# One browser page across the kill (check_page.py): live nodes and shards,
# then node 3 SIGKILLed and shown dead by the same page, then the
# screenshot. The meta-service replaces a dead node's replicas only after
# 60 s, so the page keeps showing 6 replicas and 3 primaries.
python3 "$HERE/check_page.py" "$URL/dashboard?api_key=$KEY" \
  --nodes 3 --replicas 6 --primaries 3 --points dash=300 \
  --kill-node 3 --kill-pid "${node_pid[3]}" --screenshot "$SCREENSHOT" \
  || fail "the dashboard did not show the cluster"
[ -s "$SCREENSHOT" ] || fail "no screenshot written"
echo "dashboard check passed; screenshot: $SCREENSHOT"
