#!/usr/bin/env bash
# Builds the Vertical Pod Autoscaler's recommender, unchanged, from the Go
# module proxy (test/vpa: a module of its own; the VPA's go.mod has exclude
# directives, so `go install …@version` refuses it) into
# ~/.cache/kmetrics/bin/vpa-recommender-<version>, with the VPA's CRDs from
# the same module beside it. Prints the binary's path.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(awk '$1 == "k8s.io/autoscaler/vertical-pod-autoscaler" {print $2}' "$ROOT/test/vpa/go.mod")
[ -n "$VERSION" ] || { echo "[build-vpa] no VPA version in test/vpa/go.mod" >&2; exit 1; }
BIN=${KMETRICS_CACHE:-$HOME/.cache/kmetrics}/bin
out=$BIN/vpa-recommender-$VERSION
if [ -x "$out" ] && [ -s "$out.crds.yaml" ]; then echo "$out"; exit 0; fi
mkdir -p "$BIN"
echo "[build-vpa] building the VPA recommender $VERSION from the Go module proxy" >&2
cd "$ROOT/test/vpa"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp" k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender
dir=$(go list -m -f '{{.Dir}}' k8s.io/autoscaler/vertical-pod-autoscaler)
cp "$dir/deploy/vpa-v1-crd-gen.yaml" "$out.crds.yaml"
mv "$out.tmp" "$out"
echo "$out"
