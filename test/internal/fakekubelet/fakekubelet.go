// Package fakekubelet makes the bodies the benchmarks' simulated kubelets
// serve.
package fakekubelet

import (
	"fmt"
	"strings"
	"time"
)

// ResourceBody is a node's /metrics/resource at ts with pods one-container
// pods, each using 100m + 1m per pod index since start.
func ResourceBody(node string, ts int64, start time.Time, pods int) []byte {
	var b strings.Builder
	secs := float64(ts-start.UnixMilli()) / 1000
	fmt.Fprintf(&b, "# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total %g %d\nnode_memory_working_set_bytes 2e9 %d\n", secs*3, ts, ts)
	for p := 0; p < pods; p++ {
		l := fmt.Sprintf(`container="main",namespace="ns-%d",pod="%s-pod-%d"`, p%10, node, p)
		cpu := secs * (0.1 + float64(p)/1000)
		fmt.Fprintf(&b, "container_cpu_usage_seconds_total{%s} %g %d\ncontainer_memory_working_set_bytes{%s} 1e8 %d\ncontainer_start_time_seconds{%s} %d\n",
			l, cpu, ts, l, ts, l, start.Unix())
		pl := fmt.Sprintf(`namespace="ns-%d",pod="%s-pod-%d"`, p%10, node, p)
		fmt.Fprintf(&b, "pod_cpu_usage_seconds_total{%s} %g %d\npod_memory_working_set_bytes{%s} 1e8 %d\n", pl, cpu, ts, pl, ts)
	}
	return []byte(b.String())
}
