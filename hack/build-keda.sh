#!/usr/bin/env bash
# Builds test/keda's program (KEDA's Prometheus scaler, unchanged, from the
# Go module proxy; a module of its own: KEDA brings most cloud SDKs) into
# ~/.cache/kmetrics/bin/keda-prometheus-<KEDA version>, cached by version.
# Prints the path.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(awk '$1 == "github.com/kedacore/keda/v2" && $2 ~ /^v/ {print $2; exit}' "$ROOT/test/keda/go.mod")
[ -n "$VERSION" ] || { echo "[build-keda] no KEDA version in test/keda/go.mod" >&2; exit 1; }
BIN=${KMETRICS_CACHE:-$HOME/.cache/kmetrics}/bin
out=$BIN/keda-prometheus-$VERSION
if [ -x "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$BIN"
echo "[build-keda] building KEDA $VERSION's Prometheus scaler from the Go module proxy" >&2
cd "$ROOT/test/keda"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp" .
mv "$out.tmp" "$out"
echo "$out"
