//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// nodesOvercommitted: a pod asking for more CPU and memory than the whole
// cluster has stays Pending, and Pending requests count (the mixin's
// namespace_*:kube_pod_container_resource_requests:sum): KubeCPUOvercommit
// and KubeMemoryOvercommit fire on kmetrics k by their multi-node branch
// (requests above what is left when the largest node is lost). Deleted,
// both resolve: the suite's other pods ask for a few cores and a few GiB, far
// below two kwok nodes' 8 cores and 32 GiB.
func nodesOvercommitted(t *testing.T, k *secondKmetrics, ns string) {
	kubectlApply(t, `
apiVersion: v1
kind: Pod
metadata: {name: too-big, namespace: `+ns+`}
spec:
  terminationGracePeriodSeconds: 0
  containers: [{name: main, image: registry.k8s.io/pause:3.10, resources: {requests: {cpu: "1000", memory: 1Pi}}}]
`)
	t.Cleanup(func() { _, _ = kubectl("-n", ns, "delete", "pod", "too-big", "--ignore-not-found", "--wait=false") })
	for _, name := range []string{"KubeCPUOvercommit", "KubeMemoryOvercommit"} {
		eventually(t, 3*time.Minute, name+" firing", alertFiring(k, name, nil))
	}
	mustKubectl(t, "-n", ns, "delete", "pod", "too-big")
	for _, name := range []string{"KubeCPUOvercommit", "KubeMemoryOvercommit"} {
		eventually(t, 2*time.Minute, name+" resolved", alertResolved(k, name, nil))
	}
}

// daemonSetMisScheduled: a DaemonSet runs its pod on the one node labelled
// for it; the label removed, its controller must delete that pod, and an
// admission policy refuses the deletion (as a stuck finalizer or a webhook
// would keep it; kwok ends a deleted pod at once, whatever its finalizers):
// the pod runs where it should not, and KubeDaemonSetMisScheduled fires on
// kmetrics k. The policy gone and the DaemonSet touched (its controller's
// queue had backed off), the pod is deleted and the alert resolves.
func daemonSetMisScheduled(t *testing.T, k *secondKmetrics, ns string) {
	const (
		policy = "e2e-mixin-pods-stay"
		label  = "e2e.kmetrics.dev/mixin-daemon"
		node   = "kwok-node-2"
	)
	mustKubectl(t, "label", "node", node, label+"=true", "--overwrite")
	t.Cleanup(func() {
		_, _ = kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy, "--ignore-not-found")
		_, _ = kubectl("label", "node", node, label+"-")
		_, _ = kubectl("-n", ns, "delete", "daemonset", "misscheduled", "--ignore-not-found", "--wait=false")
	})
	kubectlApply(t, `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: misscheduled, namespace: `+ns+`}
spec:
  selector: {matchLabels: {app: misscheduled}}
  template:
    metadata: {labels: {app: misscheduled}}
    spec:
      nodeSelector: {`+label+`: "true"}
      terminationGracePeriodSeconds: 0
      containers: [{name: main, image: registry.k8s.io/pause:3.10}]
`)
	eventually(t, 2*time.Minute, "the daemon pod ready on "+node, func() error {
		out, err := kubectl("-n", ns, "get", "daemonset", "misscheduled", "-o", "jsonpath={.status.numberReady} {.status.numberMisscheduled}")
		if err != nil || strings.TrimSpace(out) != "1 0" {
			return fmt.Errorf("ready, misscheduled: %q, %v", out, err)
		}
		return nil
	})
	kubectlApply(t, refusingPolicy(policy, ns, `{app: misscheduled}`, "the daemon pod stays (e2e test)",
		`{apiGroups: [""], apiVersions: [v1], operations: [DELETE], resources: [pods]}`))
	// The policy takes effect a moment after it is created: the label goes
	// once a deletion (dry run) is refused.
	eventually(t, time.Minute, "the daemon pod's deletion refused", func() error {
		_, err := kubectl("-n", ns, "delete", "pod", "-l", "app=misscheduled", "--dry-run=server")
		if err == nil || !strings.Contains(err.Error(), "the daemon pod stays") {
			return fmt.Errorf("a deletion was not refused by the policy: %v", err)
		}
		return nil
	})
	mustKubectl(t, "label", "node", node, label+"-")
	match := alertLabels(ns, "daemonset", "misscheduled")
	eventually(t, 3*time.Minute, "KubeDaemonSetMisScheduled firing", alertFiring(k, "KubeDaemonSetMisScheduled", match))
	mustKubectl(t, "delete", "validatingadmissionpolicybinding", policy)
	eventually(t, time.Minute, "the misscheduled pod deleted", func() error {
		// Touching the DaemonSet (a label: no new generation) queues it at
		// once.
		if _, err := kubectl("-n", ns, "label", "--overwrite", "daemonset", "misscheduled", fmt.Sprintf("e2e.kmetrics.dev/touched=%d", time.Now().UnixNano())); err != nil {
			return err
		}
		out, err := kubectl("-n", ns, "get", "daemonset", "misscheduled", "-o", "jsonpath={.status.numberMisscheduled}")
		if err != nil || strings.TrimSpace(out) != "0" {
			return fmt.Errorf("misscheduled: %q, %v", out, err)
		}
		return nil
	})
	eventually(t, 2*time.Minute, "KubeDaemonSetMisScheduled resolved", alertResolved(k, "KubeDaemonSetMisScheduled", match))
}

// readinessFlapping: a node whose Ready condition goes true, false, true,
// false (three changes) — a Node object with no kubelet, its status written
// here as a flapping kubelet would, each state waited for in kmetrics k's
// cluster state — fires KubeNodeReadinessFlapping. Cordoned, as an operator
// takes a flapping node out, the alert's "schedulable" half ends and it
// resolves (its 15-minute window of changes would take that long to empty).
func readinessFlapping(t *testing.T, k *secondKmetrics) {
	const node = "e2e-mixin-flapping"
	kubectlApply(t, `
apiVersion: v1
kind: Node
metadata: {name: `+node+`}
spec:
  taints: [{key: e2e/mixin-flapping, effect: NoSchedule}]
`)
	t.Cleanup(func() { _, _ = kubectl("delete", "node", node, "--wait=false") })
	ready := `kube_node_status_condition{job="kube-state-metrics",node="` + node + `",condition="Ready",status="true"}`
	for i, status := range []string{"True", "False", "True", "False"} {
		now := time.Now().UTC().Format(time.RFC3339)
		mustKubectl(t, "patch", "node", node, "--subresource=status", "-p", fmt.Sprintf(
			`{"status":{"conditions":[{"type":"Ready","status":%q,"reason":"E2EFlapping","message":"written by the e2e test","lastHeartbeatTime":%q,"lastTransitionTime":%q}]}}`,
			status, now, now))
		want := map[string]float64{"True": 1, "False": 0}[status]
		eventually(t, time.Minute, fmt.Sprintf("Ready=%s (change %d) in kmetrics' cluster state", status, i), func() error {
			got := instantQuery(k.query, ready)
			if len(got) != 1 || got[0].value != want {
				return fmt.Errorf("%s: %v, want %v", ready, got, want)
			}
			return nil
		})
	}
	match := map[string]string{"node": node}
	eventually(t, 2*time.Minute, "KubeNodeReadinessFlapping firing", alertFiring(k, "KubeNodeReadinessFlapping", match))
	mustKubectl(t, "cordon", node)
	eventually(t, 2*time.Minute, "KubeNodeReadinessFlapping resolved", alertResolved(k, "KubeNodeReadinessFlapping", match))
}

// jobNotCompleted: a Job run by another controller (spec.managedBy, as
// Kueue's are: Kubernetes' job controller leaves it alone) that reports it
// started 13 hours ago and still has a pod active fires KubeJobNotCompleted
// (12 hours). Deleted, its series end and the alert resolves.
func jobNotCompleted(t *testing.T, k *secondKmetrics, ns string) {
	kubectlApply(t, `
apiVersion: batch/v1
kind: Job
metadata: {name: long, namespace: `+ns+`}
spec:
  managedBy: e2e.kmetrics.dev/elsewhere
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: registry.k8s.io/pause:3.10}]
`)
	t.Cleanup(func() { _, _ = kubectl("-n", ns, "delete", "job", "long", "--ignore-not-found", "--wait=false") })
	started := time.Now().Add(-13 * time.Hour).UTC().Format(time.RFC3339)
	mustKubectl(t, "-n", ns, "patch", "job", "long", "--subresource=status", "--type=merge", "-p",
		fmt.Sprintf(`{"status":{"startTime":%q,"active":1}}`, started))
	match := alertLabels(ns, "job_name", "long")
	eventually(t, 3*time.Minute, "KubeJobNotCompleted firing", alertFiring(k, "KubeJobNotCompleted", match))
	mustKubectl(t, "-n", ns, "delete", "job", "long")
	eventually(t, 2*time.Minute, "KubeJobNotCompleted resolved", alertResolved(k, "KubeJobNotCompleted", match))
}
