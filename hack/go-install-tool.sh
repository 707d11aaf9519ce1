#!/usr/bin/env bash
# go-install-tool.sh <name> <package> <version> [ldflags]: builds a tool
# whose module `go install pkg@version` accepts, from the Go module proxy,
# into ~/.cache/kmetrics/bin/<name>-<version> (once; cached by version).
# Prints the path.
set -euo pipefail
name=$1 pkg=$2 version=$3 ldflags=${4:-}
BIN=${KMETRICS_CACHE:-$HOME/.cache/kmetrics}/bin
out=$BIN/$name-$version
if [ -x "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$BIN"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "[build-$name] building $name $version from the Go module proxy" >&2
CGO_ENABLED=0 GOBIN=$work go install -trimpath -ldflags "-s -w $ldflags" "$pkg@$version"
# go install names a binary after the package's last element, the one
# before a major-version suffix (k8s.io/kube-state-metrics/v2).
built=$(basename "$pkg")
if [[ $built =~ ^v[0-9]+$ ]]; then built=$(basename "$(dirname "$pkg")"); fi
mv "$work/$built" "$out"
echo "$out"
