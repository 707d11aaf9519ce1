//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"
)

// hangingRuntime stops the node's containerd for 12 s, four times, 2 s
// apart: the relist of the kubelet's PLEG that meets it waits it out (11
// to 12 s: relists start every second). Four relists past 10 s among some
// 250 in five minutes put the 99th percentile in the kubelet's highest
// bucket, 10 s, which is what KubeletPlegDurationHigh (p99 >= 10) reads.
// It returns when the runtime last resumed.
//
// KubeletPodStartUpLatencyHigh (p99 of the pod workers' durations > 60)
// cannot fire on this kubelet: those buckets end at 10 s too, and
// histogram_quantile answers at most the highest finite bucket. Checked
// here, so that a kubelet with wider buckets shows up.
func hangingRuntime(t *testing.T, node *realNode, k *secondKmetrics) (thawed time.Time) {
	// Read once kmetrics has the kubelet's buckets: an empty answer is not
	// a highest bucket of 0.
	eventually(t, 2*time.Minute, "kubelet_pod_worker_duration_seconds' highest finite bucket is 10", func() error {
		buckets := instantQuery(k.query, `kubelet_pod_worker_duration_seconds_bucket{node="`+node.name+`"}`)
		if len(buckets) == 0 {
			return fmt.Errorf("no kubelet_pod_worker_duration_seconds_bucket series yet")
		}
		highest := 0.0
		for _, b := range buckets {
			if le, err := strconv.ParseFloat(b.labels["le"], 64); err == nil && !math.IsInf(le, 1) {
				highest = max(highest, le)
			}
		}
		if highest != 10 {
			t.Fatalf("kubelet_pod_worker_duration_seconds' highest finite bucket is %v (of %d series), not 10: "+
				"KubeletPodStartUpLatencyHigh (> 60) may now fire; make it", highest, len(buckets))
		}
		return nil
	})

	for i := 0; i < 4; i++ {
		if _, err := realNodeScript("freeze-runtime", "12"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
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
