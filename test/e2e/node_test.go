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
	served := func() error {
		for _, r := range parseTop(mustKubectlNoFail("top", "nodes")) {
			if r["NAME"] == node && r["CPU(cores)"] != "<unknown>" {
				return nil
			}
		}
		return fmt.Errorf("%s not served", node)
	}
	// Start from a served node, so what follows is the stop's doing.
	eventually(t, 60*time.Second, node+" served", served)
	if err := cluster("stop-node", node); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cluster("start-node", node); err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, node+" served again", served)
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
		if _, last := upSamples(t, node); last != 0 {
			return fmt.Errorf("up{node=%q} is %v", node, last)
		}
		return nil
	})
	if _, err := kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/"+node); err == nil {
		t.Error("NodeMetrics of the stopped node still served")
	}
}
