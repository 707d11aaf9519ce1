#!/usr/bin/env bash
# Builds node_exporter from the Go module proxy into
# ~/.cache/kmetrics/bin/node_exporter-<version> (cold: ~20 s). The e2e
# suite runs it as an annotated pod on the real node for the community
# dashboards. Prints the path.
set -euo pipefail
VERSION=v1.12.1
exec bash "$(dirname "$0")/go-install-tool.sh" node_exporter github.com/prometheus/node_exporter "$VERSION" "-X github.com/prometheus/common/version.Version=${VERSION#v}"
