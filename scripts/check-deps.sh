#!/usr/bin/env bash
# Dependency boundaries (CI): the data plane must not link the Raft server.
# Gateways and storage nodes talk to the meta-service through `meta-client`
# only; if `cargo tree -e normal` of either shows openraft, redb or the
# meta-service crate itself, some change pulled the Raft crate back in.
# `meta-client` itself must stay free of those and of axum.
# Dev-dependencies (tests starting an in-process meta-service) are allowed.
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
check() {
  local crate=$1 forbidden=$2 tree found
  tree=$(cargo tree --locked -p "$crate" -e normal --prefix none --format '{p}')
  found=$(grep -E "^($forbidden) v" <<<"$tree" | sort -u || true)
  if [ -n "$found" ]; then
    echo "check-deps: FAIL: \`$crate\` depends (normal edges) on crates it must not link:" >&2
    sed 's/^/  /' <<<"$found" >&2
    echo "  (see \`cargo tree -p $crate -e normal -i <crate>\` for the path)" >&2
    failed=1
  else
    echo "check-deps: ok: $crate ($(grep -c . <<<"$tree") lines of cargo tree, none of: ${forbidden//|/, })"
  fi
}

check gateway 'openraft|redb|meta-service'
check storage-node 'openraft|redb|meta-service'
check meta-client 'openraft|redb|axum|meta-service'

exit "$failed"
