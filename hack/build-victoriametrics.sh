#!/usr/bin/env bash
# Builds VictoriaMetrics single-node (the distributed engine the remote write
# test sends to) from the Go module proxy into
# ~/.cache/kmetrics/bin/victoria-metrics-<version>. Prints the path.
set -euo pipefail
VERSION=v1.151.0 # the newest that builds with Go 1.26 (v1.152 needs 1.27)
BIN=${KMETRICS_CACHE:-$HOME/.cache/kmetrics}/bin
out=$BIN/victoria-metrics-$VERSION
if [ -x "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$BIN"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "[build-victoriametrics] building VictoriaMetrics $VERSION from the Go module proxy (cold: a few minutes)" >&2
# Pure Go (its zstd has a cgo variant).
CGO_ENABLED=0 GOBIN=$work go install -ldflags "-s -w" "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@$VERSION"
mv "$work/victoria-metrics" "$out"
echo "$out"
