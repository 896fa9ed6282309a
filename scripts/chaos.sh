#!/usr/bin/env bash
# The chaos suite against the docker-compose cluster (5 storage nodes,
# 3 meta-service members, 2 gateways behind HAProxy):
#
#   scripts/chaos.sh                         # every scenario of the suite
#   scripts/chaos.sh --scenario partition    # extra arguments go to `chaos run`
#   scripts/chaos.sh --scenario elastic      # the 7 elastic-cluster scenarios (join, drain,
#                                            # kills mid-transfer, move RF 1, change RF)
#
# Builds the images (scripts/docker-images.sh) and the `chaos` runner, runs
# `chaos run --scenario all`, and always removes the cluster (containers,
# network, volumes) at exit. Needs root (iptables through nsenter) and
# docker-compose 1.29. The runner prints the summary table; the JSON report
# goes to $CHAOS_REPORT and, for failed scenarios, service logs and the
# client's history to $CHAOS_LOGS.
#
# Variables: CHAOS_PROJECT (vdbchaos), LB_PORT (25001: the host port of the
# load balancer, away from a local cluster's 15001), CHAOS_REPORT
# (target/chaos-report.json), CHAOS_LOGS (target/chaos-logs), plus those of
# scripts/docker-images.sh (PROFILE, VECTORDB_IMAGE, VECTORDB_LB_IMAGE).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
PROJECT=${CHAOS_PROJECT:-vdbchaos}
REPORT=${CHAOS_REPORT:-target/chaos-report.json}
LOGS=${CHAOS_LOGS:-target/chaos-logs}
export LB_PORT=${LB_PORT:-25001}
FILES=(-f docker-compose.yml -f docker/chaos.compose.yml)

teardown() {
  docker-compose -p "$PROJECT" "${FILES[@]}" down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
}
trap teardown EXIT INT TERM

scripts/docker-images.sh
cargo build --locked -p chaos
# A cluster left over by an interrupted run would hold old data.
teardown
rm -rf "$LOGS"
mkdir -p "$(dirname "$REPORT")"

status=0
"${CARGO_TARGET_DIR:-target}/debug/chaos" run --project "$PROJECT" \
  --compose-file docker-compose.yml --compose-file docker/chaos.compose.yml \
  --report "$REPORT" --logs-dir "$LOGS" "$@" || status=$?
echo "chaos suite: exit $status, $(($(date +%s) - started)) s in all (images, build, cluster, scenarios); report $REPORT"
exit "$status"
