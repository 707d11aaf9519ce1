//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// metricsServerSkips are the specs of metrics-server's suite that assert
// metrics-server's own internals, not the metrics API; each is skipped by
// name.
// consumerImage is the image the suite runs its consumers from, built
// and imported by hack/real-node.sh under this name.
const consumerImage = "registry.k8s.io/e2e-test-images/resource-consumer:1.9"

var metricsServerSkips = []string{
	// The exact list of metrics-server's readyz checks
	// (metric-storage-ready, metric-informer-sync, …), read through a
	// port-forward to its pod in kube-system labelled k8s-app=metrics-server.
	// kmetrics' /readyz and /livez have checks of their own (pkg/apiserver's
	// tests; the probes of this pod are the chart's, and it turned Ready).
	"passes readyz probe",
	// The same for livez (metric-collection-timely).
	"passes livez probe",
	// The exact set of metrics_server_* metric names on port 10250 of that
	// pod; kmetrics' self-metrics are kmetrics_* (and scraped by the
	// ServiceMonitor test above).
	"exposes prometheus metrics",
}

// metricsServerSuite runs metrics-server v0.8.0's own e2e suite, unchanged
// (built from the module cache by test/metricsserver), against the kmetrics
// pod: as metrics-server's chart does for its suite, the kwok nodes carry
// metrics-server-skip=true and kmetrics is told --node-selector
// metrics-server-skip!=true, so that "all nodes" is the real node, whose
// taint is lifted for the suite's consumer pods (they tolerate nothing).
func (ic *inCluster) metricsServerSuite(t *testing.T) {
	bin := os.Getenv("METRICS_SERVER_E2E")
	if bin == "" {
		t.Fatal("METRICS_SERVER_E2E is not set: run through make e2e (it builds _output/metrics-server-e2e.test)")
	}
	for i := 1; i <= nodeCount; i++ {
		node := fmt.Sprintf("kwok-node-%d", i)
		mustKubectl(t, "label", "node", node, "metrics-server-skip=true", "--overwrite")
		t.Cleanup(func() { _, _ = kubectl("label", "node", node, "metrics-server-skip-") })
	}
	mustKubectl(t, "taint", "node", ic.node.name, "kmetrics.dev/real-node:NoSchedule-")
	t.Cleanup(func() {
		if _, err := kubectl("taint", "node", ic.node.name, "kmetrics.dev/real-node:NoSchedule", "--overwrite"); err != nil {
			t.Errorf("tainting the real node again: %v", err)
		}
	})

	selector := filepath.Join(t.TempDir(), "node-selector.yaml")
	if err := os.WriteFile(selector, []byte("args: [--custom-metrics.discovery-interval=5s, \"--node-selector=metrics-server-skip!=true\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := ic.pod(t)
	runCmd(t, nil, ic.helm, "upgrade", icRelease, ic.chart, "-n", icNS, "-f", ic.values, "-f", selector, "--wait", "--timeout", "5m")
	ic.podReplaced(t, old)
	// kubectl top nodes prints every Node object, <unknown> for those
	// without metrics; the list of the API is what the suite reads.
	eventually(t, 3*time.Minute, "the metrics API lists the real node alone", func() error {
		out, err := kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes")
		if err != nil {
			return err
		}
		var list struct {
			Items []struct {
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			} `json:"items"`
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err
		}
		if len(list.Items) != 1 || list.Items[0].Metadata.Name != ic.node.name {
			return fmt.Errorf("nodes with metrics: %+v", list.Items)
		}
		return nil
	})

	quoted := make([]string, len(metricsServerSkips))
	for i, s := range metricsServerSkips {
		quoted[i] = regexp.QuoteMeta(s)
	}
	cmd := exec.Command(bin, "-test.v", "-test.timeout=15m", "-ginkgo.v", "-ginkgo.no-color", "-ginkgo.skip="+strings.Join(quoted, "|"))
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	ran := regexp.MustCompile(`Ran (\d+) of (\d+) Specs`).FindStringSubmatch(string(out))
	counts := regexp.MustCompile(`(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped`).FindStringSubmatch(string(out))
	if err != nil || ran == nil || counts == nil {
		t.Fatalf("metrics-server's suite: %v\n%s", err, lastLines(string(out), 80))
	}
	t.Logf("metrics-server v0.8.0 e2e suite: ran %s of %s specs: %s passed, %s failed, %s pending, %s skipped",
		ran[1], ran[2], counts[1], counts[2], counts[3], counts[4])
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	if n(counts[1]) != n(ran[1]) || n(ran[1]) < 7 || n(counts[4]) != len(metricsServerSkips) {
		t.Errorf("want every spec run to pass (at least 7) and exactly the %d named ones skipped:\n%s", len(metricsServerSkips), lastLines(string(out), 80))
	}
}

// everyContainerMeasured is what the suite's init and sidecar specs mean
// but do not check (they compare an int64 with an int, which never fails):
// every running container of a pod after an init container, with a
// sidecar, and with a native sidecar (an init container that keeps
// running) is served, with CPU and memory above zero, and the finished
// init container is not.
func (ic *inCluster) everyContainerMeasured(t *testing.T) {
	consumeFor := func(name string, seconds int) string {
		return fmt.Sprintf(`{name: %s, image: %s, command: [/consume-cpu/consume-cpu], args: [--duration-sec=%d, --millicores=50]}`, name, consumerImage, seconds)
	}
	consume := func(name string) string { return consumeFor(name, 600) }
	spec := func(name, init, containers string) string {
		return fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s}
spec:
%s
  initContainers: [%s]
  containers: [%s]
`, name, icAppNS, realNodePlacement("  "), init, containers)
	}
	pods := map[string][]string{"after-init": {"main"}, "with-sidecar": {"main", "sidecar"}, "native-sidecar": {"main", "sidecar"}}
	kubectlApply(t, spec("after-init", consumeFor("init", 3), consume("main"))+"---"+
		spec("with-sidecar", "", consume("main")+", "+consume("sidecar"))+"---"+
		spec("native-sidecar", strings.Replace(consume("sidecar"), "}", ", restartPolicy: Always}", 1), consume("main")))
	t.Cleanup(func() {
		_, _ = kubectl("-n", icAppNS, "delete", "pod", "after-init", "with-sidecar", "native-sidecar", "--wait=false")
	})
	for name, want := range pods {
		eventually(t, 2*time.Minute, name+": every running container measured", func() error {
			usage, err := containerUsage("v1", icAppNS, name)
			if err != nil {
				return err
			}
			var names []string
			for c, u := range usage {
				names = append(names, c)
				cpu, err1 := resource.ParseQuantity(u["cpu"])
				mem, err2 := resource.ParseQuantity(u["memory"])
				if err1 != nil || err2 != nil || cpu.MilliValue() <= 0 || mem.Value() <= 0 {
					return fmt.Errorf("container %s: usage %v", c, u)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, want) {
				return fmt.Errorf("containers %v, want %v", names, want)
			}
			return nil
		})
	}
}
