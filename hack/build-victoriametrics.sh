#!/usr/bin/env bash
# Builds VictoriaMetrics single-node (the distributed engine the remote write
# test sends to) from the Go module proxy into
# ~/.cache/kmetrics/bin/victoria-metrics-<version> (cold: a few minutes; pure
# Go: its zstd has a cgo variant). Prints the path.
set -euo pipefail
VERSION=v1.151.0 # the newest that builds with Go 1.26 (v1.152 needs 1.27)
exec bash "$(dirname "$0")/go-install-tool.sh" victoria-metrics github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics "$VERSION"
