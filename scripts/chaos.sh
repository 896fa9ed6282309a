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
# network, volumes) at exit. Needs root (iptables and tc through nsenter,
# a loop mount) and docker-compose 1.29. storage5's data directory is a
# 256 MB ext4 image loop-mounted at target/chaos-small-disk
# (docker/chaos-disk.compose.yml), which the `disk-full` scenario fills.
# The runner prints the summary table; the JSON report
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
COMPOSE_FILES=(docker-compose.yml docker/chaos.compose.yml docker/chaos-disk.compose.yml)
FILES=()
for f in "${COMPOSE_FILES[@]}"; do FILES+=(-f "$f"); done
export CHAOS_SMALL_DISK=$PWD/target/chaos-small-disk
DISK_IMG=$PWD/target/chaos-small-disk.img

teardown() {
  docker-compose -p "$PROJECT" "${FILES[@]}" down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
  if mountpoint -q "$CHAOS_SMALL_DISK"; then umount "$CHAOS_SMALL_DISK" || true; fi
  rm -f "$DISK_IMG"
}

# A fresh small filesystem for storage5 (uid 10001 runs the services).
small_disk() {
  mkdir -p "$CHAOS_SMALL_DISK"
  truncate -s 256M "$DISK_IMG"
  mkfs.ext4 -q -F "$DISK_IMG"
  mount -o loop "$DISK_IMG" "$CHAOS_SMALL_DISK"
  chown 10001:10001 "$CHAOS_SMALL_DISK"
}
trap teardown EXIT INT TERM

scripts/docker-images.sh
cargo build --locked -p chaos
# A cluster left over by an interrupted run would hold old data.
teardown
small_disk
rm -rf "$LOGS"
mkdir -p "$(dirname "$REPORT")"

status=0
compose_args=()
for f in "${COMPOSE_FILES[@]}"; do compose_args+=(--compose-file "$f"); done
"${CARGO_TARGET_DIR:-target}/debug/chaos" run --project "$PROJECT" "${compose_args[@]}" \
  --report "$REPORT" --logs-dir "$LOGS" "$@" || status=$?
echo "chaos suite: exit $status, $(($(date +%s) - started)) s in all (images, build, cluster, scenarios); report $REPORT"
exit "$status"
