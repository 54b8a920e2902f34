#!/usr/bin/env bash
# Builds payguard's cert-manager controller (hack/cert-manager-controller/main.go over the pinned
# github.com/cert-manager/cert-manager module from the Go module proxy) and caches it by cert-manager
# version and by a hash of main.go, so a second run builds nothing. Prints the path of the binary.
#
# The proxy serves the root module but not the nested cmd/controller module, so our own main imports
# the root module's controller packages inside a small wrapper module.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${PAYGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/payguard}
main="$here/cert-manager-controller/main.go"
main_hash=$(sha256sum "$main" | cut -c1-12)
bin="$cache/cert-manager-$CERT_MANAGER_VERSION-$main_hash/bin"
if [ -x "$bin/cert-manager-controller" ]; then echo "$bin/cert-manager-controller"; exit 0; fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
work="$cache/build/cert-manager-$CERT_MANAGER_VERSION"
rm -rf "$work" && mkdir -p "$work" "$bin"
cd "$work"
log() { echo "build-cert-manager: $*" >&2; }
start=$(date +%s)
log "building the cert-manager $CERT_MANAGER_VERSION controller into $bin"

cmmod=$(go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
{
  echo "module payguard.dev/hack/cert-manager-controller"
  echo
  grep -E '^go [0-9.]+$' "$cmmod"
  echo
  echo "require github.com/cert-manager/cert-manager $CERT_MANAGER_VERSION"
} > go.mod
cp "$main" main.go
go mod tidy >&2
go build -trimpath -ldflags "-s -w" -o "$bin/cert-manager-controller.tmp" .
# Rename last, so an interrupted build never leaves a half-written binary that looks cached.
mv "$bin/cert-manager-controller.tmp" "$bin/cert-manager-controller"
log "built in $(( $(date +%s) - start ))s"
echo "$bin/cert-manager-controller"
