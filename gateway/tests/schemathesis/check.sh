#!/usr/bin/env bash
# The gateway's OpenAPI document (GET /openapi.json) against the gateway
# itself: schemathesis (PyPI, pinned) generates requests from the document,
# valid and invalid ones, and sends them to a real local cluster
# (1 meta-service, 3 storage nodes, 1 gateway as processes on loopback).
# The run fails on
#   - any 5xx answer (check not_a_server_error),
#   - any answer that does not match its schema in the document
#     (response_schema_conformance),
#   - any refused (4xx) request that changed data
#     (refused_request_changes_nothing, in hooks.py: a fingerprint of every
#     collection's points, payloads and vectors, the aliases, the settings
#     and the nodes, taken before the request and after the refusal).
# Two collections are seeded: `fuzz`, which half the generated requests
# name (and may change, delete and re-create), and `sentinel`, which no
# request names. The 501 routes (tag `unsupported`) are left out: they
# answer 501 to everything by design.
#
#   BIN=target/debug gateway/tests/schemathesis/check.sh
#
# BIN: folder with meta-service, storage-node, gateway and certs binaries.
# PORT_BASE (default 27000) moves every port. MAX_TIME (default 110 s) and
# MAX_EXAMPLES (default 40 per operation) bound the run. VENV: where to
# create the virtualenv (default $WORK/venv). REFUSALS_LOG: a file to
# append every 4xx answer to (what the run reached). The last line printed is the
# summary: requests sent, answers by status class, 0 5xx.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN=${BIN:-target/debug}
BASE=${PORT_BASE:-27000}
WORK=$(mktemp -d)
VENV=${VENV:-$WORK/venv}
REST=$((BASE + 1))
META=127.0.0.1:$((BASE + 7))
URL="http://127.0.0.1:$REST"
SCHEMATHESIS_VERSION=4.32.5

# shellcheck source=gateway/tests/lib/loopback-cluster.sh
. "$HERE/../lib/loopback-cluster.sh"
start_loopback_cluster

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"

wait_active_nodes 3 || exit 1

# Seed `sentinel` (never named by the run) and `fuzz` (the run's target).
GATEWAY_URL=$URL "$VENV/bin/python" "$HERE/hooks.py"

# The document must be served before anything else is tried.
curl -fsS "$URL/openapi.json" -o "$WORK/openapi.json"

set +e
# From $WORK: schemathesis keeps a cache (.schemathesis/) in its working
# directory, which must not land in the repository.
cd "$WORK"
GATEWAY_URL=$URL SUMMARY_FILE="$WORK/summary.json" REFUSALS_LOG=${REFUSALS_LOG:-} SCHEMATHESIS_HOOKS="$HERE/hooks.py" \
  "$VENV/bin/schemathesis" run "$URL/openapi.json" \
  --checks not_a_server_error,response_schema_conformance,refused_request_changes_nothing \
  --exclude-tag unsupported \
  --phases examples,coverage,fuzzing \
  --workers 1 \
  --max-examples "${MAX_EXAMPLES:-40}" \
  --max-time "${MAX_TIME:-110}" \
  --request-timeout 30 \
  --suppress-health-check all \
  --seed "${SEED:-17}" \
  --report junit --report-dir "$WORK/report" \
  --output-truncate false
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  echo "schemathesis found failures; gateway log:"; tail -n 40 "$WORK/gateway.log"
fi
# The run must not have taken the cluster apart (hooks.py keeps the
# node-removing routes off the registered nodes): 3 nodes, all alive.
nodes=$(curl -fsS "$URL/api/cluster/nodes" | python3 -c 'import json, sys; print(" ".join(n["state"] for n in json.load(sys.stdin)["result"]["nodes"]))')
if [ "$nodes" != "alive alive alive" ]; then
  echo "after the run the nodes are: $nodes (expected 3 alive)"; rc=1
fi
python3 - "$WORK/summary.json" "$rc" <<'EOF'
import json, sys
counts = json.load(open(sys.argv[1]))
rc = int(sys.argv[2])
total = counts.get("total", 0)
print(
    f"schemathesis: {total} requests: {counts.get('2xx', 0)} 2xx, {counts.get('4xx', 0)} 4xx, "
    f"{counts.get('5xx', 0)} 5xx; {counts.get('refusals_checked', 0)} refusals checked "
    f"unchanged; {'passed' if rc == 0 else 'FAILED'}"
)
if total == 0:
    sys.exit("schemathesis sent no request")
if counts.get("4xx", 0) and not counts.get("refusals_checked"):
    sys.exit("no refused request was checked for changes (hooks.py not in effect?)")
EOF
exit "$rc"
