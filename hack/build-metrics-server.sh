#!/usr/bin/env bash
# Builds metrics-server v0.8.0 from the Go module proxy into
# ~/.cache/kmetrics/bin/metrics-server-v0.8.0 (the peer of make
# bench-footprint; v0.9.0 is served but not an approved release). Prints
# the path.
set -euo pipefail
exec bash "$(dirname "$0")/go-install-tool.sh" metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server v0.8.0
