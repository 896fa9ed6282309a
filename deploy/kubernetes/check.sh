#!/usr/bin/env bash
# Offline checks of the Kubernetes manifests (CI; no cluster, no kubectl):
#
# 1. kubernetes-validate (PyPI; it ships the API schemas) validates every
#    resource strictly (unknown fields are errors) against Kubernetes
#    $K8S_VERSION.
# 2. check_pods.py renders each pod's environment and config file (the
#    ConfigMap in config.yaml) and runs the real binaries with them and
#    `--check-config` (see that file).
#
# The binaries come from $BIN (default target/debug; scripts/test.sh builds
# them first). The Python tools live in a virtualenv under target/ (made
# once; pip runs only when the pinned version is missing).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
BIN=${BIN:-$ROOT/target/debug}
K8S_VERSION=${K8S_VERSION:-1.33.0}
VALIDATE_VERSION=1.37.0
VENV=${VENV:-$ROOT/target/deploy-venv}

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if ! "$VENV/bin/pip" show kubernetes-validate 2>/dev/null | grep -qx "Version: $VALIDATE_VERSION"; then
  "$VENV/bin/pip" install -q "kubernetes-validate==$VALIDATE_VERSION" pyyaml
fi
for b in meta-service storage-node gateway; do
  [ -x "$BIN/$b" ] || { echo "check.sh: $BIN/$b missing (cargo build --bins -p $b)" >&2; exit 1; }
done

manifests=(config.yaml meta-service.yaml storage-node.yaml gateway.yaml)
"$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "${manifests[@]}"
echo "kubernetes-validate: ${manifests[*]} valid for Kubernetes $K8S_VERSION (strict)"
"$VENV/bin/python" check_pods.py "$BIN" "${manifests[@]}"
