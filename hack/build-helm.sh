#!/usr/bin/env bash
# Builds helm (v4, same k8s.io libraries as kmetrics) from the Go module
# proxy into ~/.cache/kmetrics/bin/helm-<version> (cold: ~5 min). Prints the path.
set -euo pipefail
VERSION=v4.3.2
exec bash "$(dirname "$0")/go-install-tool.sh" helm helm.sh/helm/v4/cmd/helm "$VERSION" "-X helm.sh/helm/v4/internal/version.version=$VERSION"
