//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestHPAScalesOnCPU lets the real HPA controller scale a Deployment on CPU
// utilisation read through kmetrics: up when its pods use 250% of their
// request, down once the usage annotation is lowered.
func TestHPAScalesOnCPU(t *testing.T) {
	// Runs beside the other waiting tests, after the sequential ones that
	// restart kmetrics or stop a node.
	t.Parallel()
	const ns = "e2e-hpa"
	deployment(t, ns, "app", 1, "250m", "64Mi", "100m")
	// As with metrics-server, a pod has CPU usage after two scrapes; an HPA
	// created before that reports FailedGetResourceMetric once. Start it
	// after, so any such event below is kmetrics' fault.
	eventually(t, 60*time.Second, "the first pod served", podsServed(ns, 1))
	mustKubectl(t, "-n", ns, "autoscale", "deployment", "app", "--cpu-percent=50", "--min=1", "--max=4")

	eventually(t, 3*time.Minute, "the HPA scales up to 4", replicasOf(ns, "app", "4"))
	active := mustKubectl(t, "-n", ns, "get", "hpa", "app", "-o", `jsonpath={.status.conditions[?(@.type=="ScalingActive")].status}`)
	if active != "True" {
		t.Fatalf("ScalingActive = %q, want True", active)
	}

	mustKubectl(t, "-n", ns, "annotate", "pods", "-l", "app=app", "kwok.x-k8s.io/usage-cpu=10m", "--overwrite")
	eventually(t, 3*time.Minute, "the HPA scales down to 1", replicasOf(ns, "app", "1"))

	rescaledWithoutFailures(t, ns, 4, 1)
}

// rescaledWithoutFailures checks the HPA events of ns: a rescale to up and
// one back to down, and never a FailedGetResourceMetric.
func rescaledWithoutFailures(t *testing.T, ns string, up, down int) {
	t.Helper()
	events := mustKubectl(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.kind=HorizontalPodAutoscaler,reason=SuccessfulRescale",
		"-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}")
	if !strings.Contains(events, fmt.Sprintf("New size: %d", up)) || !strings.Contains(events, fmt.Sprintf("New size: %d", down)) {
		t.Fatalf("rescale events lack the way up and down:\n%s", events)
	}
	if failed := mustKubectl(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.kind=HorizontalPodAutoscaler,reason=FailedGetResourceMetric",
		"-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}"); failed != "" {
		t.Errorf("the HPA failed to get metrics:\n%s", failed)
	}
}

// podsServed checks that kubectl top lists want pods in ns.
func podsServed(ns string, want int) func() error {
	return func() error {
		if rows := parseTop(mustKubectlNoFail("-n", ns, "top", "pods")); len(rows) != want {
			return fmt.Errorf("%d pods served, want %d", len(rows), want)
		}
		return nil
	}
}

// replicasOf checks that a Deployment (scaled by its HPA of the same name)
// has want replicas.
func replicasOf(ns, name, want string) func() error {
	return func() error {
		got, err := kubectl("-n", ns, "get", "deployment", name, "-o", "jsonpath={.spec.replicas}")
		if err != nil {
			return err
		}
		if got != want {
			hpa, _ := kubectl("-n", ns, "get", "hpa", name, "--no-headers")
			return fmt.Errorf("replicas %s, want %s (hpa: %s)", got, want, strings.TrimSpace(hpa))
		}
		return nil
	}
}

// webRequestsHPA: a Deployment of pods whose fake application counts
// requests (35/s in all, scraped through their prometheus.io annotations)
// and an HPA on the custom metric http_requests at 10 per pod: it scales
// 1 → 4 through custom.metrics.k8s.io, without a failed metric read.
func webRequestsHPA(t *testing.T, ns string) {
	fleet := startAppFleet(t, ns, "9100")
	fleet.set(35, 0)
	kubectlApply(t, scrapedDeployment(ns, "web", 1, ""))
	// The HPA comes once the metric is served: before, its failed reads
	// would be the test's doing, not kmetrics'.
	eventually(t, 2*time.Minute, "the web pod's request rate served", func() error {
		v, err := rawValues("/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/pods/*/http_requests?labelSelector=app%3Dweb")
		if err == nil && len(v) != 1 {
			err = fmt.Errorf("%d pods served: %v", len(v), v)
		}
		return err
	})
	kubectlApply(t, webHPA(ns))
	eventually(t, 4*time.Minute, "the HPA scales web up on requests per second", replicasOf(ns, "web", "4"))
	for _, reason := range []string{"FailedGetPodsMetric", "FailedComputeMetricsReplicas"} {
		if failed := mustKubectl(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.kind=HorizontalPodAutoscaler,reason="+reason,
			"-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}"); failed != "" {
			t.Errorf("the HPA reported %s:\n%s", reason, failed)
		}
	}
	mustKubectl(t, "-n", ns, "delete", "hpa", "web")
	mustKubectl(t, "-n", ns, "delete", "deployment", "web")
}

// webHPA is an HPA scaling Deployment web of ns between 1 and 4 replicas
// on the custom metric http_requests, 10 per pod.
func webHPA(ns string) string {
	return fmt.Sprintf(`
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: %[1]s}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: Pods
    pods:
      metric: {name: http_requests}
      target: {type: AverageValue, averageValue: "10"}
`, ns)
}
