//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// generationMismatch: a Deployment and a StatefulSet of ns (no replicas)
// whose controllers cannot record what they observed — an admission policy
// refuses their status updates, as a broken or overloaded controller never
// writes them — lag behind a changed spec: KubeDeploymentGenerationMismatch
// and KubeStatefulSetGenerationMismatch fire on kmetrics k. The policy gone
// and the objects touched (the controllers' queues back off), the
// controllers catch up and both resolve.
func generationMismatch(t *testing.T, k *secondKmetrics, ns string) {
	const policy = "e2e-mixin-frozen-status"
	kubectlApply(t, refusingPolicy(policy, ns, `{e2e.kmetrics.dev/frozen: "true"}`, "status frozen by the e2e test",
		`{apiGroups: [apps], apiVersions: [v1], operations: [UPDATE], resources: [deployments/status, statefulsets/status]}`)+`
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: frozen, namespace: `+ns+`, labels: {e2e.kmetrics.dev/frozen: "true"}}
spec:
  replicas: 0
  selector: {matchLabels: {app: frozen}}
  template:
    metadata: {labels: {app: frozen}}
    spec: {containers: [{name: main, image: registry.k8s.io/pause:3.10}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: frozen, namespace: `+ns+`, labels: {e2e.kmetrics.dev/frozen: "true"}}
spec:
  replicas: 0
  serviceName: frozen
  selector: {matchLabels: {app: frozen-sts}}
  template:
    metadata: {labels: {app: frozen-sts}}
    spec: {containers: [{name: main, image: registry.k8s.io/pause:3.10}]}
`)
	t.Cleanup(func() {
		_, _ = kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy, "--ignore-not-found")
		_, _ = kubectl("-n", ns, "delete", "deployment,statefulset", "frozen", "--ignore-not-found", "--wait=false")
	})
	// The policy takes effect a moment after it is created: the spec
	// changes once a status update (dry run) is refused.
	for _, kind := range []string{"deployment", "statefulset"} {
		eventually(t, time.Minute, kind+"'s status updates refused", func() error {
			_, err := kubectl("-n", ns, "patch", kind, "frozen", "--subresource=status", "--dry-run=server",
				"--type=merge", "-p", `{"status":{"observedGeneration":1}}`)
			if err == nil || !strings.Contains(err.Error(), "status frozen") {
				return fmt.Errorf("a status update was not refused by the policy: %v", err)
			}
			return nil
		})
		mustKubectl(t, "-n", ns, "patch", kind, "frozen", "-p",
			`{"spec":{"template":{"metadata":{"annotations":{"e2e.kmetrics.dev/revision":"2"}}}}}`)
	}
	alerts := map[string]map[string]string{
		"KubeDeploymentGenerationMismatch":  alertLabels(ns, "deployment", "frozen"),
		"KubeStatefulSetGenerationMismatch": alertLabels(ns, "statefulset", "frozen"),
	}
	for name, match := range alerts {
		eventually(t, 3*time.Minute, name+" firing", alertFiring(k, name, match))
	}
	mustKubectl(t, "delete", "validatingadmissionpolicybinding", policy)
	for _, kind := range []string{"deployment", "statefulset"} {
		eventually(t, time.Minute, kind+"'s status updates accepted", func() error {
			// Touching the object (its labels: no new generation) queues
			// it at once; its controller had backed off.
			_, err := kubectl("-n", ns, "label", "--overwrite", kind, "frozen", fmt.Sprintf("e2e.kmetrics.dev/touched=%d", time.Now().UnixNano()))
			if err != nil {
				return err
			}
			out, err := kubectl("-n", ns, "get", kind, "frozen", "-o", "jsonpath={.metadata.generation} {.status.observedGeneration}")
			if f := strings.Fields(out); err != nil || len(f) != 2 || f[0] != f[1] {
				return fmt.Errorf("generation, observed: %q %v", out, err)
			}
			return nil
		})
	}
	for name, match := range alerts {
		eventually(t, 2*time.Minute, name+" resolved", alertResolved(k, name, match))
	}
}

// refusingPolicy is an admission policy, name, that refuses every request
// matching rule (a resourceRules entry) with message, bound to the objects
// of namespace ns whose labels match selector (matchLabels): a controller
// whose writes or deletions fail, as a broken webhook or finalizer makes it.
func refusingPolicy(name, ns, selector, message, rule string) string {
	return admissionRefusal(name, message, rule, "", fmt.Sprintf(`
  matchResources:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: %s}}
    objectSelector: {matchLabels: %s}`, ns, selector))
}

// refusingPolicyWhen is an admission policy, name, that refuses with
// message the requests matching rule for which condition (CEL, on
// request) holds, whatever their object, cluster-scoped ones included.
func refusingPolicyWhen(name, condition, message, rule string) string {
	return admissionRefusal(name, message, rule, fmt.Sprintf(`
  matchConditions:
  - {name: when, expression: %q}`, condition), "")
}

// admissionRefusal is a ValidatingAdmissionPolicy refusing what rule
// matches with message, with more of its spec (policySpec) and of its
// binding's (bindingSpec).
func admissionRefusal(name, message, rule, policySpec, bindingSpec string) string {
	return fmt.Sprintf(`
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: %[1]s}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - %[3]s%[4]s
  validations:
  - {expression: "false", message: %[2]q}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: %[1]s}
spec:
  policyName: %[1]s
  validationActions: [Deny]%[5]s
`, name, message, rule, policySpec, bindingSpec)
}
