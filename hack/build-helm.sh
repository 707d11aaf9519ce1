#!/usr/bin/env bash
# Builds helm (v4, same k8s.io libraries as kmetrics) from the Go module
# proxy into ~/.cache/kmetrics/bin/helm-<version>. Prints the path.
set -euo pipefail
VERSION=v4.3.2
BIN=${KMETRICS_CACHE:-$HOME/.cache/kmetrics}/bin
out=$BIN/helm-$VERSION
if [ -x "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$BIN"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "[build-helm] building helm $VERSION from the Go module proxy (cold: ~5 min)" >&2
CGO_ENABLED=0 GOBIN=$work go install -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$VERSION" "helm.sh/helm/v4/cmd/helm@$VERSION"
mv "$work/helm" "$out"
echo "$out"
