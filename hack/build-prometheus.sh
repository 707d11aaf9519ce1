#!/usr/bin/env bash
# Builds Prometheus 3.15 (the version whose tsdb/promql kmetrics embeds) from
# the Go module proxy into ~/.cache/kmetrics/bin/prometheus-<version>, for
# the same-engine query benchmark (make bench-query). Prints the path.
set -euo pipefail
VERSION=v0.315.0 # Prometheus 3.15.0
BIN=${KMETRICS_CACHE:-$HOME/.cache/kmetrics}/bin
out=$BIN/prometheus-$VERSION
if [ -x "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$BIN"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > go.mod <<MOD
module kmetrics.local/prometheus

go 1.26.4

require github.com/prometheus/prometheus $VERSION

// Prometheus' own go.mod carries this replace; go install cannot honour it.
replace cloud.google.com/go => cloud.google.com/go v0.123.0
MOD
printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/prometheus/prometheus/cmd/prometheus"\n' > tools.go
echo "[build-prometheus] building Prometheus $VERSION from the Go module proxy (cold: ~5 min)" >&2
GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1
GOFLAGS=-mod=mod go build -o "$out" github.com/prometheus/prometheus/cmd/prometheus
echo "$out"
