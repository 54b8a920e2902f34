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
if [ "$log_dir" = "$cluster_dir" ]; then
  echo "demo: the real cert-manager controller issues from ClusterIssuer payments-ca (log: $cluster_dir/cert-manager-controller.log)"
fi

namespace=$(.venv/bin/python -c 'import sys,yaml; print(next(d["metadata"]["namespace"] for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$example" 2>/dev/null || echo payments)
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
if [ "$log_dir" = "$cluster_dir" ]; then
  # Nor a kubelet or Istio's injector: pods are created as API objects, as the injector leaves them.
  echo "demo: no kubelet or Istio here: tests/mesh_pods.py creates one injected pod per workload"
  .venv/bin/python tests/mesh_pods.py "$example" | kubectl apply --server-side --field-manager=payguard-demo -f - >/dev/null
fi
# An example whose namespaced Issuer ships beside it (examples/issuers/<name>.yaml) gets that first.
issuer=$(.venv/bin/python -c 'import sys,yaml; d=yaml.safe_load(open(sys.argv[1])); print(d["spec"]["certificates"]["issuerRef"]["name"])' "$example")
if [ -f "examples/issuers/$issuer.yaml" ]; then
  kubectl apply --server-side --field-manager=payguard-demo -f "examples/issuers/$issuer.yaml"
fi
kubectl apply --server-side --field-manager=payguard-demo -f "$example"

# Wait until every PaymentService is Ready, or 30 s have passed (then the conditions say why not).
kubectl wait paymentservices --all -n "$namespace" --for=condition=Ready --timeout=30s >/dev/null || true

echo
echo "\$ kubectl get paymentservices -n $namespace"
kubectl get paymentservices -n "$namespace"
echo
echo "\$ kubectl get certificates,certificaterequests -n $namespace"
kubectl get certificates,certificaterequests -n "$namespace"
echo
echo "Operator log: $operator_log"
if [ -t 0 ]; then
  echo "payguard keeps running: in another shell, export KUBECONFIG=$KUBECONFIG and explore"
  echo "(e.g. kubectl edit peerauthentication -n $namespace and watch it reverted). Ctrl-C stops payguard."
  wait $operator || true
else
  echo "demo: not on a terminal, so payguard and the stand-in stop now; the cluster keeps running"
  echo "(KUBECONFIG=$KUBECONFIG; make cluster-down stops it). Run make demo in a terminal to keep payguard up."
fi
