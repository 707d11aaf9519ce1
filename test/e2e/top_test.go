//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestKubectlTop(t *testing.T) {
	// Runs beside the other waiting tests, after the sequential ones that
	// restart kmetrics or stop a node.
	t.Parallel()
	deployment(t, "e2e-top", "web", 3, "300m", "96Mi", "100m")
	deployment(t, "e2e-top", "batch", 1, "700m", "256Mi", "100m")
	want := map[string][2]float64{"web": {300, 96}, "batch": {700, 256}}

	eventually(t, 90*time.Second, "kubectl top pods --containers shows every pod at its usage", func() error {
		out, err := kubectl("top", "pods", "-n", "e2e-top", "--containers")
		if err != nil {
			return err
		}
		rows := parseTop(out)
		if len(rows) != 4 {
			return fmt.Errorf("%d rows, want 4:\n%s", len(rows), out)
		}
		for _, r := range rows {
			app := strings.SplitN(r["POD"], "-", 2)[0]
			cpu, err1 := millicores(r["CPU(cores)"])
			mem, err2 := mebibytes(r["MEMORY(bytes)"])
			if err1 != nil || err2 != nil || r["NAME"] != "main" {
				return fmt.Errorf("bad row %v", r)
			}
			if !within(cpu, want[app][0]) || mem != want[app][1] {
				return fmt.Errorf("pod %s: %vm/%vMi, want %vm/%vMi", r["POD"], cpu, mem, want[app][0], want[app][1])
			}
		}
		return nil
	})

	t.Run("the query API shows what the HPA sees", func(t *testing.T) {
		top := map[string]float64{}
		for _, r := range parseTop(mustKubectl(t, "top", "pods", "-n", "e2e-top")) {
			top[r["NAME"]], _ = millicores(r["CPU(cores)"])
		}
		byPod, err := queryByPod(t, `sum by (pod) (irate(container_cpu_usage_seconds_total{namespace="e2e-top"}[1m]))`)
		if err != nil {
			t.Fatal(err)
		}
		if len(byPod) != len(top) {
			t.Fatalf("query returned %d pods, kubectl top %d", len(byPod), len(top))
		}
		for pod, v := range byPod {
			if !within(v*1000, top[pod]) {
				t.Errorf("pod %s: query %.0fm, kubectl top %.0fm", pod, v*1000, top[pod])
			}
		}
	})
	t.Run("cluster-state series join with usage", func(t *testing.T) {
		// The mixin's request-utilisation join: usage / requests per pod.
		const expr = `sum by (pod) (irate(container_cpu_usage_seconds_total{namespace="e2e-top"}[1m]))
			/ on (pod) sum by (pod) (kube_pod_container_resource_requests{job="kube-state-metrics", namespace="e2e-top", resource="cpu"})`
		// Cluster state is written every 30s (--cluster-state.interval).
		eventually(t, 90*time.Second, "usage/requests for every pod", func() error {
			byPod, err := queryByPod(t, expr)
			if err != nil {
				return err
			}
			if len(byPod) != 4 {
				return fmt.Errorf("%d pods, want 4", len(byPod))
			}
			for pod, v := range byPod {
				want := 3.0 // web: 300m used / 100m requested
				if strings.HasPrefix(pod, "batch-") {
					want = 7
				}
				if !within(v, want) {
					return fmt.Errorf("pod %s: %v× its request, want %v×", pod, v, want)
				}
			}
			return nil
		})
	})
	t.Run("label selector", func(t *testing.T) {
		rows := parseTop(mustKubectl(t, "top", "pods", "-n", "e2e-top", "-l", "app=batch"))
		if len(rows) != 1 || !strings.HasPrefix(rows[0]["NAME"], "batch-") {
			t.Fatalf("-l app=batch gave %v", rows)
		}
	})
	t.Run("all namespaces", func(t *testing.T) {
		n := 0
		for _, r := range parseTop(mustKubectl(t, "top", "pods", "-A")) {
			if r["NAMESPACE"] == "e2e-top" {
				n++
			}
		}
		if n != 4 {
			t.Fatalf("top pods -A lists %d e2e-top pods, want 4", n)
		}
	})
	t.Run("nodes", func(t *testing.T) {
		// Only the kwok nodes: TestHostileTenants adds a node of its own
		// (never served) meanwhile.
		var rows []topRow
		for _, r := range parseTop(mustKubectl(t, "top", "nodes")) {
			if strings.HasPrefix(r["NAME"], "kwok-node-") {
				rows = append(rows, r)
			}
		}
		if len(rows) != nodeCount {
			t.Fatalf("%d nodes, want %d", len(rows), nodeCount)
		}
		var total float64
		for _, r := range rows {
			cpu, err := millicores(r["CPU(cores)"])
			if err != nil {
				t.Fatalf("node %s: %v", r["NAME"], err)
			}
			total += cpu
		}
		// kwok's node CPU is the sum of its pods' usage (at least ours).
		if total < 0.9*(3*300+700) {
			t.Fatalf("nodes use %vm in all, want at least the pods' %vm", total, 3*300+700)
		}
	})
}
