#!/usr/bin/env bash
# `make kind-e2e`, for machines with Docker: a kind cluster with Istio and cert-manager, payguard's image
# built and loaded, the chart installed, the e2e tests run. Needs docker, kind, and the Istio and
# cert-manager Helm repositories added under the names below (see their install docs).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  echo "kind-e2e: skipped: no Docker engine here (kind needs one); the local control plane tests still run in make test" >&2
  exit 0
fi
ISTIO_REPO=${ISTIO_REPO:-istio}
CERT_MANAGER_REPO=${CERT_MANAGER_REPO:-jetstack}
IMAGE=${PAYGUARD_E2E_IMAGE:-payguard:0.1.0}
helm=$(bash hack/build-helm.sh)

kind get clusters | grep -qx payguard || kind create cluster --name payguard --config kind-config.yaml
kubeconfig=$(mktemp)
kind get kubeconfig --name payguard >"$kubeconfig"
export KUBECONFIG=$kubeconfig
"$helm" upgrade --install istio-base "$ISTIO_REPO/base" -n istio-system --create-namespace --wait
"$helm" upgrade --install istiod "$ISTIO_REPO/istiod" -n istio-system --wait
"$helm" upgrade --install cert-manager "$CERT_MANAGER_REPO/cert-manager" -n cert-manager --create-namespace \
  --set crds.enabled=true --wait
docker build -t "$IMAGE" .
PAYGUARD_E2E_KUBECONFIG=$kubeconfig PAYGUARD_E2E_IMAGE=$IMAGE .venv/bin/python -m pytest tests/e2e -rs
