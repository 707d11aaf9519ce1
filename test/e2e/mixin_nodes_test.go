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
	kubectlApply(t, `
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: `+policy+`}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [DELETE], resources: [pods]}
  validations:
  - {expression: "false", message: "the daemon pod stays (e2e test)"}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: `+policy+`}
spec:
  policyName: `+policy+`
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: `+ns+`}}
    objectSelector: {matchLabels: {app: misscheduled}}
`)
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
