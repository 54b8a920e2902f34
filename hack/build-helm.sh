#!/usr/bin/env bash
# Builds helm from the Go module proxy at the pinned version (helm's go.mod needs no replaces, so a plain
# `go install` works) and caches it by version. Prints the path of the binary on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${PAYGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/payguard}
bin="$cache/helm-$HELM_VERSION-stamped/bin"
if [ ! -x "$bin/helm" ]; then
  echo "build-helm: building helm $HELM_VERSION into $bin" >&2
  mkdir -p "$bin"
  tmp=$(mktemp -d)
  # Stamp the Kubernetes version helm assumes without a cluster (helm template, lint) as helm's own
  # Makefile does, from its client-go: unstamped, it assumes v1.20 and refuses charts' kubeVersion.
  gomod=$(GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json "helm.sh/helm/v3@$HELM_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  client_go=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")
  stamp=""
  for package in chartutil lint/rules; do
    stamp="$stamp -X helm.sh/helm/v3/pkg/$package.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/$package.k8sVersionMinor=$client_go"
  done
  GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS=-mod=mod \
    go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION$stamp" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  mv "$tmp/helm" "$bin/helm"
  rmdir "$tmp"
fi
echo "$bin/helm"
