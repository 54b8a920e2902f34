#!/usr/bin/env bash
# `make demo`: payguard's main job end to end. Uses $KUBECONFIG when set, else the local control plane;
# starts the operator, applies the example payments platform and shows `kubectl get paymentservices`.
set -euo pipefail
cd "$(dirname "$0")/.."
cluster_dir=${CLUSTER_DIR:-$PWD/.localcluster}
example=${DEMO_EXAMPLE:-examples/checkout.yaml}

if [ -z "${KUBECONFIG:-}" ]; then
  KUBECONFIG=$(.venv/bin/python hack/localcluster.py --state-dir "$cluster_dir" up | tail -n 1 | cut -d= -f2-)
  log_dir=$cluster_dir
else
  echo "demo: using the cluster in KUBECONFIG=$KUBECONFIG"
  .venv/bin/python hack/localcluster.py install-crds  # payguard's, Istio's and cert-manager's CRDs
  log_dir=$(mktemp -d)
fi
export KUBECONFIG

operator_log=$log_dir/payguard-demo.log
.venv/bin/payguard run >"$operator_log" 2>&1 &
operator=$!
trap 'kill $operator 2>/dev/null; wait $operator 2>/dev/null || true' EXIT

namespace=$(.venv/bin/python -c 'import sys,yaml; print(next(d["metadata"]["namespace"] for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$example" 2>/dev/null || echo payments)
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply --server-side --field-manager=payguard-demo -f "$example"

# Wait until the operator has reported on every PaymentService (observedGeneration catches up).
for _ in $(seq 1 60); do
  pending=$(kubectl get paymentservices -n "$namespace" -o json | .venv/bin/python -c '
import json, sys
items = json.load(sys.stdin)["items"]
print(sum(1 for i in items if i.get("status", {}).get("observedGeneration") != i["metadata"]["generation"]))')
  [ "$pending" = 0 ] && break
  sleep 1
done

echo
echo "\$ kubectl get paymentservices -n $namespace"
kubectl get paymentservices -n "$namespace"
echo
echo "Operator log: $operator_log"
echo "Keep exploring with: export KUBECONFIG=$KUBECONFIG   (stop the local cluster with: make cluster-down)"
