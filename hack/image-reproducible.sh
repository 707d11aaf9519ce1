#!/usr/bin/env bash
# Builds the image twice — in the tree, then from a copy of the tree in
# another directory — and fails unless both have the same digest: what
# `make image` produces depends on the sources alone, not on where or when
# it was built. Leaves the first build in _output/. IMAGE_ARCHS as for
# make image (default: amd64 and arm64).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export IMAGE_ARCHS=${IMAGE_ARCHS:-amd64 arm64}
# The copy has no .git: the same version, commit and time are passed.
export VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
export REVISION=${REVISION:-$(git rev-parse HEAD 2>/dev/null)}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
first=$(make -s --no-print-directory image IMAGE_ARCHS="$IMAGE_ARCHS" | tail -n 1)
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -xf - -C "$copy"
second=$(cd "$copy" && make -s --no-print-directory image IMAGE_ARCHS="$IMAGE_ARCHS" | tail -n 1)
echo "[image-reproducible] $first (in $ROOT), $second (in $copy)" >&2
if [ "$first" != "$second" ]; then
  echo "[image-reproducible] ERROR: the same sources gave two digests" >&2
  exit 1
fi
echo "$first"
