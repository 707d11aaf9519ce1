//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// brokenNode fails the real node the ways nodes fail, one after the other,
// each condition ended before the next, and checks the kubernetes-mixin's
// node alerts on k (the shipped rules without their "for:", with the
// kubelet's /metrics scraped):
//   - certificates close to their end whose renewal is refused (see
//     expiringCertificates): the kubelet certificate expiry and renewal
//     alerts; renewed, they resolve (the renewal alerts at the end: they
//     read five minutes of errors);
//   - a runtime that hangs (see hangingRuntime): KubeletPlegDurationHigh,
//     resolved at the end too;
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

	// Expiring certificates, renewal refused, then renewed; a runtime that
	// hangs. What they fire reads five minutes of history: checked
	// resolved at the end.
	began := time.Now()
	done := func(what string) { t.Logf("%s: done at %v", what, time.Since(began).Round(time.Second)) }
	renewed := expiringCertificates(t, node, k, restartKubelet)
	done("certificates")
	thawed := hangingRuntime(t, node, k)
	done("hanging runtime")

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
	resolvedAfterWindow(t, k, onNode, renewed, "KubeletClientCertificateRenewalErrors", "KubeletServerCertificateRenewalErrors")
	resolvedAfterWindow(t, k, onNode, thawed, "KubeletPlegDurationHigh")
	done("five-minute windows")
}

// hangingRuntime stops the node's containerd for 12 s, five times, 3 s
// apart: each relist of the kubelet's PLEG that meets it waits it out.
// Five relists past 10 s among some 250 in five minutes put the 99th
// percentile in the kubelet's highest bucket, 10 s, which is what
// KubeletPlegDurationHigh (p99 >= 10) reads. It returns when the runtime
// last resumed.
//
// KubeletPodStartUpLatencyHigh (p99 of the pod workers' durations > 60)
// cannot fire on this kubelet: those buckets end at 10 s too, and
// histogram_quantile answers at most the highest finite bucket. Checked
// here, so that a kubelet with wider buckets shows up.
func hangingRuntime(t *testing.T, node *realNode, k *secondKmetrics) (thawed time.Time) {
	t.Helper()
	buckets := instantQuery(k.query, `kubelet_pod_worker_duration_seconds_bucket{node="`+node.name+`"}`)
	highest := 0.0
	for _, b := range buckets {
		if le, err := strconv.ParseFloat(b.labels["le"], 64); err == nil && !math.IsInf(le, 1) {
			highest = max(highest, le)
		}
	}
	if highest != 10 {
		t.Errorf("kubelet_pod_worker_duration_seconds' highest finite bucket is %v (of %d series), not 10: "+
			"KubeletPodStartUpLatencyHigh (> 60) may now fire; make it", highest, len(buckets))
	}

	for i := 0; i < 5; i++ {
		if _, err := realNodeScript("freeze-runtime", "12"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
	}
	thawed = time.Now()
	eventually(t, 3*time.Minute, "KubeletPlegDurationHigh firing", alertFiring(k, "KubeletPlegDurationHigh", map[string]string{"node": node.name}))
	t.Logf("PLEG relist p99: %v", instantQuery(k.query, `node_quantile:kubelet_pleg_relist_duration_seconds:histogram_quantile{node="`+node.name+`"}`))
	return thawed
}

// resolvedAfterWindow checks that alerts reading five minutes of history
// resolve once five minutes have passed since their cause ended (and a
// rule evaluation, and a margin).
func resolvedAfterWindow(t *testing.T, k *secondKmetrics, match map[string]string, ended time.Time, names ...string) {
	t.Helper()
	for _, name := range names {
		eventually(t, max(time.Minute, time.Until(ended.Add(7*time.Minute))), name+" resolved", alertResolved(k, name, match))
	}
}
