#!/usr/bin/env bash
# Builds k9s from the Go module proxy into ~/.cache/kmetrics/bin/k9s-<version>
# (cold: ~6 min, it brings grype and syft). Prints the path.
set -euo pipefail
VERSION=v0.50.16
exec bash "$(dirname "$0")/go-install-tool.sh" k9s github.com/derailed/k9s "$VERSION" "-X github.com/derailed/k9s/cmd.version=$VERSION"
