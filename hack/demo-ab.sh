#!/usr/bin/env bash
# demo-ab.sh OLD NEW [ROUNDS]: compares two kmetrics binaries on make demo's
# running cluster, each restarted alternately with the demo's own arguments,
# so that both meet the same cluster in one sitting. For each start it prints
# the peak RSS of the first minute (VmHWM), then the median RSS and anonymous
# RSS of 12 samples 5 s apart from minute 4 with no PromQL query, and the CPU
# used until then. At the end the demo's own binary runs again.
#
# Why a script: a change to start-up (what is built lazily, what is kept)
# shows in the first minutes of a process, which make bench-footprint's
# steady windows, taken after it queries PromQL, do not see.
#
# Build both alike, e.g. CGO_ENABLED=0 GOFLAGS=-trimpath go build -o OLD ./cmd/kmetrics
# at each commit; run with nothing else on the machine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OLD=${1:?usage: demo-ab.sh OLD NEW [ROUNDS]} NEW=${2:?usage: demo-ab.sh OLD NEW [ROUNDS]} ROUNDS=${3:-2}
STATE=$ROOT/.state/demo
for bin in "$OLD" "$NEW"; do
	[[ -x $bin ]] || { echo "demo-ab.sh: $bin is not an executable" >&2; exit 1; }
done
[[ -f $STATE/pids/kmetrics.pid ]] || { echo "demo-ab.sh: no demo running (make demo)" >&2; exit 1; }
pid=$(cat "$STATE/pids/kmetrics.pid")
kill -0 "$pid" 2>/dev/null || { echo "demo-ab.sh: the demo's kmetrics ($pid) is not running" >&2; exit 1; }
mapfile -d '' args < "/proc/$pid/cmdline"
clk=$(getconf CLK_TCK)

cpu() { awk -v c="$clk" '{printf "%.2f", ($14+$15)/c}' "/proc/$pid/stat"; }
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }
median() { sort -n | awk '{v[NR]=$1} END{printf "%.1f", v[int((NR+1)/2)]/1024}'; }
restart() {
	kill "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
	setsid "$@" >>"$STATE/logs/kmetrics.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$STATE/pids/kmetrics.pid"
}

# Whatever happens (a binary that exits, ^C), the demo's own binary runs
# again at the end.
trap 'restart "${args[@]}"' EXIT
for round in $(seq "$ROUNDS"); do
	for bin in "$OLD" "$NEW"; do
		a=("${args[@]}")
		a[0]=$bin
		restart "${a[@]}"
		sleep 60
		kill -0 "$pid" 2>/dev/null || { echo "demo-ab.sh: $bin exited (see $STATE/logs/kmetrics.log)" >&2; exit 1; }
		peak=$(kib VmHWM)
		sleep 180
		rss=() anon=()
		for _ in $(seq 12); do
			rss+=("$(kib VmRSS)") anon+=("$(kib RssAnon)")
			sleep 5
		done
		printf '%s round %d: peak RSS (1st minute) %.1f MiB; minute 4-5: RSS %s MiB, anonymous %s MiB; CPU %s s\n' \
			"$bin" "$round" "$(awk -v k="$peak" 'BEGIN{print k/1024}')" \
			"$(printf '%s\n' "${rss[@]}" | median)" "$(printf '%s\n' "${anon[@]}" | median)" "$(cpu)"
	done
done
