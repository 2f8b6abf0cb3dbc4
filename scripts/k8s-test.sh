#!/usr/bin/env bash
# Checks the Kubernetes manifests (deploy/k8s) offline: renders each overlay with `kubectl
# kustomize` and validates it against Kubernetes' schemas with kubernetes-validate (from PyPI,
# which ships them), plus the checks of scripts/k8s_check.py. Installs kubectl (Debian's
# kubernetes-client) and kubernetes-validate when missing; without them it fails under CI=true
# and says it skipped elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

skip_or_fail() {
  if [ "${CI:-}" = true ]; then echo "k8s-test: $1" >&2; exit 1; fi
  echo "k8s-test: skipped: $1"; exit 0
}

command -v kubectl >/dev/null 2>&1 || need_pkg kubectl kubernetes-client || true
command -v kubectl >/dev/null 2>&1 || skip_or_fail "kubectl is not installed"
if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
  echo "==> installing kubernetes-validate (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0' \
    || skip_or_fail "kubernetes-validate could not be installed"
fi
python3 scripts/k8s_check.py
