//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// brokenNode fails the real node the ways nodes fail, one after the other,
// each condition ended before the next, and checks the kubernetes-mixin's
// node alerts on k (the shipped rules without their "for:", with the
// kubelet's /metrics scraped):
//   - full: a kubelet with room for exactly the pods it runs:
//     KubeletTooManyPods (the kubelet's running pods over the node's
//     capacity);
//   - memory pressure: an eviction threshold above what the node has:
//     KubeNodePressure (the node's condition), and the kubelet evicts a pod
//     that arrives: KubeNodeEviction (its evictions counter);
//   - stopped: its /metrics unreachable: KubeletInstanceUnreachable; the
//     node controller's grace period passes: KubeNodeNotReady and
//     KubeNodeUnreachable (its taint).
//
// Every one resolves when its condition ends, but KubeNodeEviction: it
// reads the evictions of the last 15 minutes, which the test does not wait
// out. It runs last: the evictions end the test's pods on the node.
func brokenNode(t *testing.T, node *realNode, k *secondKmetrics) {
	stopped := false
	t.Cleanup(func() {
		if stopped || t.Failed() {
			_, _ = realNodeScript("restart-kubelet", "cluster")
		}
	})
	onNode := map[string]string{"node": node.name}
	fires := func(names ...string) {
		t.Helper()
		for _, name := range names {
			eventually(t, 3*time.Minute, name+" firing", alertFiring(k, name, onNode))
		}
	}
	resolves := func(names ...string) {
		t.Helper()
		for _, name := range names {
			eventually(t, 3*time.Minute, name+" resolved", alertResolved(k, name, onNode))
		}
	}
	restartKubelet := func(args ...string) {
		t.Helper()
		if _, err := realNodeScript(append([]string{"restart-kubelet"}, args...)...); err != nil {
			t.Fatal(err)
		}
	}

	began := time.Now()
	done := func(what string) { t.Logf("%s: done at %v", what, time.Since(began).Round(time.Second)) }

	// Full: the node runs two pods (burn and spare) and is given room for
	// two. The other parts' pods must be gone first.
	kubectlApply(t, burnPod(node.name, "spare", 10, 8))
	eventually(t, 3*time.Minute, "exactly burn and spare running on the node", func() error {
		out, err := kubectl("get", "pods", "-A", "--field-selector", "spec.nodeName="+node.name,
			"-o", `jsonpath={range .items[*]}{.metadata.name}={.status.phase}{"\n"}{end}`)
		if err != nil {
			return err
		}
		var running []string
		for _, p := range strings.Fields(out) {
			if !strings.HasSuffix(p, "=Succeeded") && !strings.HasSuffix(p, "=Failed") {
				running = append(running, p)
			}
		}
		if strings.Join(running, " ") != "burn=Running spare=Running" {
			return fmt.Errorf("pods on the node: %v", running)
		}
		return nil
	})
	eventually(t, 2*time.Minute, "the kubelet counts two running pods", func() error {
		if got := instantQuery(k.query, `kubelet_running_pods{node="`+node.name+`"} == 2`); len(got) != 1 {
			return fmt.Errorf("kubelet_running_pods: %v", instantQuery(k.query, `kubelet_running_pods{node="`+node.name+`"}`))
		}
		return nil
	})
	restartKubelet("full", "2")
	fires("KubeletTooManyPods")

	// Memory pressure, with room for 110 pods again. The kubelet evicts
	// burn and spare within a second: its evictions counter appears at 2,
	// which rate() cannot tell from a counter that never moved. An eviction
	// after that (a pod arriving at the node, tolerating its pressure) is
	// what KubeNodeEviction sees — on a node under pressure, there is one.
	done("full")
	restartKubelet("pressure")
	resolves("KubeletTooManyPods")
	fires("KubeNodePressure")
	evictions := `kubelet_evictions{node="` + node.name + `", eviction_signal="memory.available"}`
	eventually(t, 2*time.Minute, "the kubelet's evictions counted", func() error {
		if got := instantQuery(k.query, evictions+` > 0`); len(got) != 1 {
			return fmt.Errorf("%s: %v", evictions, instantQuery(k.query, evictions))
		}
		return nil
	})
	kubectlApply(t, strings.Replace(burnPod(node.name, "late", 10, 8),
		"tolerations: [{key: kmetrics.dev/real-node, operator: Exists}]", "tolerations: [{operator: Exists}]", 1))
	fires("KubeNodeEviction")
	if got := instantQuery(k.query, `kube_node_status_condition{node="`+node.name+`", condition="MemoryPressure", status="true"} == 1`); len(got) != 1 {
		t.Errorf("kube_node_status_condition MemoryPressure: %v", got)
	}
	restartKubelet("cluster")
	resolves("KubeNodePressure")
	done("pressure")

	// Stopped.
	if _, err := realNodeScript("stop-kubelet"); err != nil {
		t.Fatal(err)
	}
	stopped = true
	fires("KubeletInstanceUnreachable", "KubeNodeNotReady", "KubeNodeUnreachable")
	restartKubelet("cluster")
	stopped = false
	resolves("KubeletInstanceUnreachable", "KubeNodeNotReady", "KubeNodeUnreachable")
	done("stopped")
}
