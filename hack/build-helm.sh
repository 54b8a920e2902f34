#!/usr/bin/env bash
# Builds helm from the Go module proxy at the pinned version (helm's go.mod needs no replaces, so a plain
# `go install` works) and caches it by version. Prints the path of the binary on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${PAYGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/payguard}
bin="$cache/helm-$HELM_VERSION/bin"
if [ ! -x "$bin/helm" ]; then
  echo "build-helm: building helm $HELM_VERSION into $bin" >&2
  mkdir -p "$bin"
  tmp=$(mktemp -d)
  GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS=-mod=mod \
    go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  mv "$tmp/helm" "$bin/helm"
  rmdir "$tmp"
fi
echo "$bin/helm"
