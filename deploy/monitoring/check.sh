#!/usr/bin/env bash
# Offline checks of the alert rules and the Grafana dashboard (CI):
#
# 1. `promtool check rules` (Debian's `prometheus` package, installed here
#    with apt if promtool is missing) and `promtool test rules
#    alerts_test.yml`: every alert fires on the series it should, with the
#    text it should, and stays quiet on a healthy cluster.
# 2. check_metrics.py: every metric the rules and the dashboard query is
#    one our services export (names taken from the code).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
VENV=${VENV:-$ROOT/target/deploy-venv}

if ! command -v promtool >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool check rules alerts.yml
promtool test rules alerts_test.yml
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' grafana-dashboard.json

# PyYAML: the deploy venv's (deploy/kubernetes/check.sh makes it) or the system's.
PY=python3
[ -x "$VENV/bin/python" ] && PY="$VENV/bin/python"
if ! "$PY" -c 'import yaml' 2>/dev/null; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q pyyaml
  PY="$VENV/bin/python"
fi
"$PY" check_metrics.py alerts.yml grafana-dashboard.json
