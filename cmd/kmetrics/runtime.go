package main

import (
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// setGCPercent uses GOGC=75 unless GOGC is set, as Prometheus 3 does: the
// TSDB head and query buffers dominate the heap, and a lower target keeps
// the resident set closer to live data for a little more GC work.
func setGCPercent() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(75)
	}
}

// setMemoryLimit sets GOMEMLIMIT to ratio of the container's memory limit
// (cgroup), as Prometheus does, unless GOMEMLIMIT is set: the collector
// works harder near the limit instead of the kernel killing the one process
// that serves every HPA. Without a cgroup limit nothing changes.
func setMemoryLimit(ratio float64) {
	if ratio <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	logger := slog.New(logr.ToSlogHandler(klog.Background().WithName("memlimit")))
	limit, err := memlimit.SetGoMemLimitWithOpts(
		memlimit.WithRatio(ratio),
		memlimit.WithProvider(memlimit.FromCgroup),
		memlimit.WithLogger(logger),
	)
	if err != nil || limit <= 0 {
		klog.V(2).InfoS("No container memory limit found; GOMEMLIMIT not set", "err", err)
		return
	}
	klog.InfoS("GOMEMLIMIT set from the container's memory limit", "bytes", limit, "ratio", ratio)
}
