//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestStoppedKubelet stops one node's kwok: that node turns unavailable,
// the others keep being served, and up{node} is 0 in the TSDB.
func TestStoppedKubelet(t *testing.T) {
	const node = "kwok-node-3"
	if err := cluster("stop-node", node); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cluster("start-node", node); err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, node+" served again", func() error {
			for _, r := range parseTop(mustKubectlNoFail("top", "nodes")) {
				if r["NAME"] == node && r["CPU(cores)"] != "<unknown>" {
					return nil
				}
			}
			return fmt.Errorf("%s not served", node)
		})
	}()
	eventually(t, 60*time.Second, node+" shown unavailable, the others served", func() error {
		rows := parseTop(mustKubectlNoFail("top", "nodes"))
		if len(rows) != nodeCount {
			return fmt.Errorf("%d nodes listed", len(rows))
		}
		for _, r := range rows {
			unknown := r["CPU(cores)"] == "<unknown>"
			if unknown != (r["NAME"] == node) {
				return fmt.Errorf("node %s: cpu %s", r["NAME"], r["CPU(cores)"])
			}
		}
		return nil
	})
	if _, err := kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/"+node); err == nil {
		t.Error("NodeMetrics of the stopped node still served")
	}
	if ts, last := upSamples(t, node); len(ts) == 0 || last != 0 {
		t.Errorf("up{node=%q}: %d samples, last %v; want last 0", node, len(ts), last)
	}
}
