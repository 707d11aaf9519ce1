//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

const customNS = "e2e-custom"

// metricsConfig is the --custom-metrics.config file kmetrics runs with:
// the shipped defaults, which TestCustomMetricsReload rewrites.
func metricsConfig() string { return filepath.Join(state, "metrics-config.yaml") }

func defaultMetricsConfig() ([]byte, error) {
	return os.ReadFile(filepath.Join(root, "pkg", "rules", "naming", "default-config.yaml"))
}

// rawValues GETs a custom or external metrics URL through the aggregator
// and returns the items' values by described object (custom) or by the
// queue label (external).
func rawValues(path string) (map[string]float64, error) {
	out, err := kubectl("get", "--raw", path)
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []struct {
			DescribedObject struct{ Name string } `json:"describedObject"`
			MetricLabels    map[string]string     `json:"metricLabels"`
			Value           string                `json:"value"`
			WindowSeconds   *int64                `json:"windowSeconds"`
			Timestamp       time.Time             `json:"timestamp"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", out, err)
	}
	values := map[string]float64{}
	for _, it := range list.Items {
		q, err := resource.ParseQuantity(it.Value)
		if err != nil {
			return nil, err
		}
		key := it.DescribedObject.Name
		if key == "" {
			key = it.MetricLabels["queue"]
		}
		if age := time.Since(it.Timestamp); age < 0 || age > 2*resolution+5*time.Second {
			return nil, fmt.Errorf("%s: timestamp %v is not the last scrape's (age %v)", key, it.Timestamp, age)
		}
		values[key] = q.AsApproximateFloat64()
	}
	return values, nil
}

// TestCustomAndExternalMetrics: applications on kwok pods, found through
// their own prometheus.io annotations (web) and through an annotated Service
// (broker), are scraped; kubectl get --raw reads their metrics through the
// aggregator; the real HPA scales one Deployment on a Pods metric and
// another on an External metric, up and down.
func TestCustomAndExternalMetrics(t *testing.T) {
	t.Parallel()
	fleet := startAppFleet(t, customNS, "9100")
	fleet.set(35, 20)
	kubectlApply(t, fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9100"}
    spec:
      containers: [{name: main, image: registry.k8s.io/pause:3.10}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: broker, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: broker}}
  template:
    metadata: {labels: {app: broker}}
    spec:
      containers: [{name: main, image: registry.k8s.io/pause:3.10}]
---
apiVersion: v1
kind: Service
metadata:
  name: broker
  namespace: %[1]s
  annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9100"}
spec:
  selector: {app: broker}
  ports: [{port: 9100}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers: [{name: main, image: registry.k8s.io/pause:3.10}]
`, customNS))

	pods := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + customNS + "/pods/*/http_requests?labelSelector=" + url.QueryEscape("app=web")
	external := "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + customNS + "/queue_messages?labelSelector=" + url.QueryEscape("queue=jobs")
	eventually(t, 2*time.Minute, "the web pod's request rate served", func() error {
		v, err := rawValues(pods)
		if err != nil {
			return err
		}
		if len(v) != 1 {
			return fmt.Errorf("%d pods served: %v", len(v), v)
		}
		for _, rate := range v {
			if rate < 35*0.85 || rate > 35*1.15 {
				return fmt.Errorf("rate %.2f/s, want ≈35", rate)
			}
		}
		return nil
	})
	eventually(t, time.Minute, "the broker's queue (through the Service) served", func() error {
		v, err := rawValues(external)
		if err != nil {
			return err
		}
		if len(v) != 1 || v["jobs"] != 20 {
			return fmt.Errorf("got %v, want jobs=20", v)
		}
		return nil
	})
	// v1beta1 serves the same, and a wrong name says what is wrong.
	if v, err := rawValues(strings.Replace(pods, "v1beta2", "v1beta1", 1)); err != nil || len(v) != 1 {
		t.Errorf("v1beta1: %v %v", v, err)
	}
	_, err := kubectl("get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+customNS+"/pods/*/http_request?labelSelector=app%3Dweb")
	// Other tests' applications (hostile, kill) are listed after it: the
	// nearest name comes first, however many the cluster serves.
	if err == nil || !strings.Contains(err.Error(), "metric http_request is not served for pods; metrics for pods: http_requests, ") {
		t.Errorf("unknown metric: %v", err)
	}
	_, err = kubectl("get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+customNS+"/pods/*/http_requests?labelSelector=app%3Dnone")
	if err == nil || !strings.Contains(err.Error(), `no pods match the selector "app=none"`) {
		t.Errorf("selector matching nothing: %v", err)
	}

	kubectlApply(t, webHPA(customNS)+"---"+fmt.Sprintf(`
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: worker, namespace: %[1]s}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: worker}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: External
    external:
      metric: {name: queue_messages, selector: {matchLabels: {queue: jobs}}}
      target: {type: AverageValue, averageValue: "5"}
`, customNS))
	replicas := func(name, want string) func() error {
		return func() error {
			got, err := kubectl("-n", customNS, "get", "deployment", name, "-o", "jsonpath={.spec.replicas}")
			if err != nil {
				return err
			}
			if got != want {
				hpa, _ := kubectl("-n", customNS, "get", "hpa", name, "--no-headers")
				return fmt.Errorf("%s: replicas %s, want %s (hpa: %s)", name, got, want, strings.TrimSpace(hpa))
			}
			return nil
		}
	}
	// 35 req/s over pods that should each take 10: 4 (the maximum). A queue
	// of 20 at 5 per worker: 4.
	eventually(t, 4*time.Minute, "the HPA scales web up on requests per second", replicas("web", "4"))
	eventually(t, 2*time.Minute, "the HPA scales worker up on the queue", replicas("worker", "4"))
	eventually(t, 2*time.Minute, "every web pod served", func() error {
		v, err := rawValues(pods)
		if err == nil && len(v) != 4 {
			err = fmt.Errorf("%d pods served: %v", len(v), v)
		}
		return err
	})

	fleet.set(0, 0)
	eventually(t, 4*time.Minute, "the HPA scales web down", replicas("web", "1"))
	eventually(t, 2*time.Minute, "the HPA scales worker down", replicas("worker", "1"))
	for _, reason := range []string{"FailedGetPodsMetric", "FailedGetExternalMetric", "FailedComputeMetricsReplicas"} {
		if failed := mustKubectl(t, "-n", customNS, "get", "events", "--field-selector", "involvedObject.kind=HorizontalPodAutoscaler,reason="+reason,
			"-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}"); failed != "" {
			t.Errorf("the HPA reported %s:\n%s", reason, failed)
		}
	}
}

// TestCustomMetricsReload: a changed config file is served without a
// restart; an invalid one is refused and the config in force stays.
func TestCustomMetricsReload(t *testing.T) {
	t.Parallel()
	original, err := defaultMetricsConfig()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.WriteFile(metricsConfig(), original, 0o644) })
	// A node metric needs no application: the kubelets' series are there.
	path := "/apis/custom.metrics.k8s.io/v1beta2/nodes/kwok-node-1/node_memory_working_set_mebibytes"
	if _, err := kubectl("get", "--raw", path); err == nil {
		t.Fatal("served before the rule exists")
	}
	extra := `
- seriesQuery: '{__name__="node_memory_working_set_bytes",job="kubelet",node!=""}'
  resources: {overrides: {node: {resource: node}}}
  name: {matches: "^(.*)_bytes$", as: "${1}_mebibytes"}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>) / 1048576'
`
	withRule := strings.Replace(string(original), "\nexternalRules:", extra+"\nexternalRules:", 1)
	if err := os.WriteFile(metricsConfig(), []byte(withRule), 0o644); err != nil {
		t.Fatal(err)
	}
	var mib float64
	eventually(t, time.Minute, "the new rule served", func() error {
		v, err := rawValues(path)
		if err == nil && v["kwok-node-1"] <= 0 {
			err = fmt.Errorf("got %v", v)
		}
		mib = v["kwok-node-1"]
		return err
	})
	bytes := queryScalar(t, `sum(node_memory_working_set_bytes{node="kwok-node-1"})`)
	if !within(mib, bytes/1048576) {
		t.Errorf("served %.1f MiB, the TSDB says %.1f", mib, bytes/1048576)
	}

	if err := os.WriteFile(metricsConfig(), []byte(withRule+"\n  bogus: field\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Read from kmetrics' stored self-metrics (every 30s).
	eventually(t, 2*time.Minute, "the invalid config refused", func() error {
		if v := queryScalar(t, `kmetrics_custom_metrics_config_last_reload_successful`); v != 0 {
			return fmt.Errorf("last_reload_successful = %v", v)
		}
		return nil
	})
	if _, err := rawValues(path); err != nil {
		t.Errorf("the config in force was dropped with the invalid one: %v", err)
	}
	log, _ := os.ReadFile(km.log)
	if !strings.Contains(string(log), `unknown field \"bogus\"`) && !strings.Contains(string(log), `unknown field "bogus"`) {
		t.Error("the log does not say what is wrong with the config")
	}
}
