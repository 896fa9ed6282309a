#!/usr/bin/env bash
# The project's test command: installs what the build needs, then runs
# every test of the workspace (unit, property, multi-process, crash).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo test --workspace --locked "$@"
