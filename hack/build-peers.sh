#!/usr/bin/env bash
# build-peers.sh DIR: builds, in the background and at the lowest CPU
# priority, the peers and clients the end-to-end suite drives (each by its
# hack/build-*.sh, cached by version in ~/.cache/kmetrics), and returns at
# once. As each is ready its path is written to DIR/<ENV> (the variable the
# suite reads it from); a build that fails leaves DIR/<ENV>.failed and its
# log in DIR/<ENV>.log. The suite waits for a file only where a test needs
# it (test/internal/peers).
#
# Why: on a machine whose cache is empty these builds take half an hour of
# CPU, while the suite mostly waits on clocks. Started before lint, unit and
# the control plane's build, at nice 19, they take only the CPU those leave
# idle; what remains when the suite starts overlaps its waiting. Warm, each
# build script prints its cached path at once.
#
# Idempotent: while one run is building into DIR, a second returns at once.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:?usage: build-peers.sh DIR}
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock -n 9 || exit 0
rm -f "$DIR"/*_*
# In the order the suite first needs them: VictoriaMetrics (the HA pair, an
# early serial test), helm (the in-cluster install), node_exporter and the
# VPA (the real-node test), then what only the parallel tests use.
peers=(
	VICTORIAMETRICS_BIN:build-victoriametrics.sh
	HELM_BIN:build-helm.sh
	NODE_EXPORTER:build-node-exporter.sh
	VPA_RECOMMENDER:build-vpa.sh
	PROMETHEUS_BIN:build-prometheus.sh
	K9S_BIN:build-k9s.sh
	KEDA_PROMETHEUS:build-keda.sh
)
(
	# The lock travels with the builder: it is released when the last
	# build ends.
	for p in "${peers[@]}"; do
		env=${p%%:*} script=${p#*:}
		if nice -n 19 bash "$ROOT/hack/$script" >"$DIR/$env.tmp" 2>"$DIR/$env.log"; then
			mv "$DIR/$env.tmp" "$DIR/$env"
		else
			rm -f "$DIR/$env.tmp"
			touch "$DIR/$env.failed"
		fi
	done
) </dev/null >/dev/null 2>&1 &
