//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

const promcfgNS = "e2e-promcfg"

// The same prometheus.yml — the typical kubernetes-pods,
// kubernetes-service-endpoints and kubernetes-cadvisor jobs with
// kubernetes_sd_configs and relabel_configs, and one job per Prometheus
// limit set low — given to kmetrics (--scrape.config) and to Prometheus
// 3.15 over the same cluster: the same targets, the same series with the
// same labels, and every limit failing its scrape whole on both.
func TestPrometheusConfigEquivalence(t *testing.T) {
	t.Parallel()
	prometheusBin := peerBinary(t, "PROMETHEUS_BIN", "hack/build-prometheus.sh")
	honorTS := time.Now().Add(-30 * time.Second).UnixMilli()

	// Applications: pods scraped through their annotations, one app per
	// limit, two replicas for target_limit.
	fleet := startAppFleet(t, promcfgNS, "9100")
	fleet.serve("plain", textHandler("# TYPE plain_requests_total counter\nplain_requests_total{code=\"200\"} 7\nplain_up 1\n"))
	fleet.serve("samples", textHandler("s 1\ns2 2\ns3 3\ns4 4\ns5 5\n"))
	fleet.serve("labels", textHandler("ok 1\nmany{a=\"1\",b=\"2\",c=\"3\"} 1\n"))
	fleet.serve("labelname", textHandler("ok 1\nm{a_label_name_far_too_long=\"1\"} 1\n"))
	fleet.serve("labelvalue", textHandler("ok 1\nm{a=\"a value far too long\"} 1\n"))
	fleet.serve("body", textHandler("big "+strings.Repeat("1", 200)+"\n"))
	fleet.serve("targets", textHandler("ok 1\n"))
	fleet.serve("honor", textHandler(fmt.Sprintf("honor_metric 1 %d\n", honorTS)))
	fleet.serve("slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
		fmt.Fprint(w, "slow_metric 1\n")
	})
	var manifest strings.Builder
	for _, app := range []string{"plain", "samples", "labels", "labelname", "labelvalue", "body", "honor", "slow"} {
		manifest.WriteString(scrapedDeployment(promcfgNS, app, 1, "tier: backend"))
	}
	manifest.WriteString(scrapedDeployment(promcfgNS, "targets", 2, ""))

	// A Service whose endpoint is outside the pod network: Endpoints
	// refuse loopback addresses, so it is this machine's own address.
	hostIP := nonLoopbackIPv4(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(hostIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	outside := &http.Server{Handler: textHandler("outside_requests_total 3\n"), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = outside.Serve(ln) }()
	t.Cleanup(func() { _ = outside.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	fmt.Fprintf(&manifest, `
apiVersion: v1
kind: Service
metadata:
  name: outside
  namespace: %[1]s
  labels: {tier: edge}
  annotations: {prometheus.io/scrape: "true"}
spec:
  ports: [{name: metrics, port: %[3]s}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: outside, namespace: %[1]s}
subsets: [{addresses: [{ip: %[2]s}], ports: [{name: metrics, port: %[3]s}]}]
`, promcfgNS, hostIP, port)
	kubectlApply(t, manifest.String())
	t.Cleanup(func() { _, _ = kubectl("delete", "namespace", promcfgNS, "--wait=false") })

	// A kubelet serving cAdvisor's metrics.
	kl := startTestKubelet(t, "e2e-cadvisor-kubelet", nodeNet+".51", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics/cadvisor" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "# TYPE container_cpu_usage_seconds_total counter\n"+
			"container_cpu_usage_seconds_total{container=\"main\",cpu=\"total\",id=\"/kubepods/p1/c1\",image=\"app:1\",name=\"c1\",namespace=\"shop\",pod=\"web-1\"} 12.5\n"+
			"container_memory_working_set_bytes{container=\"main\",id=\"/kubepods/p1/c1\",image=\"app:1\",name=\"c1\",namespace=\"shop\",pod=\"web-1\"} 1e6\n")
	})
	mustKubectl(t, "patch", "node", kl.node, "--subresource=status", "--type=merge", "-p",
		`{"status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":10250}}}}`)

	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("scraper-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(typicalPrometheusConfig(filepath.Join(state, "kmetrics.kubeconfig"),
		filepath.Join(state, "certs", "ca.crt"), token, kl.node)), 0o600); err != nil {
		t.Fatal(err)
	}

	prom := startPrometheus(t, prometheusBin, config)
	km2 := startSecondKmetrics(t, "equivalence", "--scrape.annotated=false", "--scrape.config", config)
	engines := map[string]func(path string) ([]byte, error){
		"prometheus": func(path string) ([]byte, error) { return httpGet(http.DefaultClient, "http://127.0.0.1:"+prom+path) },
		"kmetrics":   km2.query,
	}

	jobs := `{job=~"kubernetes-.*|limit-.*|honor|timeout"}`
	// Every target scraped a few times by both.
	for name, get := range engines {
		eventually(t, 2*time.Minute, name+" scraped every job three times", func() error {
			byJob := map[string]float64{}
			for _, s := range instantQuery(get, `min by (job) (count_over_time(up`+jobs+`[2m]))`) {
				byJob[s.labels["job"]] = s.value
			}
			for _, job := range []string{"kubernetes-pods", "kubernetes-service-endpoints", "kubernetes-cadvisor", "limit-samples", "limit-labels",
				"limit-label-name", "limit-label-value", "limit-body", "limit-targets", "honor", "timeout"} {
				if byJob[job] < 3 {
					return fmt.Errorf("job %s: %v scrapes", job, byJob[job])
				}
			}
			return nil
		})
	}

	t.Run("the same targets", func(t *testing.T) {
		compare(t, engines, func(get func(string) ([]byte, error)) []string {
			return sampleStrings(instantQuery(get, "up"+jobs))
		})
	})
	t.Run("the same series labels", func(t *testing.T) {
		compare(t, engines, func(get func(string) ([]byte, error)) []string {
			return seriesStrings(get, jobs, time.Now().Add(-5*time.Minute))
		})
	})
	t.Run("the same targets, health and errors on /targets", func(t *testing.T) {
		compare(t, engines, targetStrings)
	})
	t.Run("the same scraped sample counts", func(t *testing.T) {
		compare(t, engines, func(get func(string) ([]byte, error)) []string {
			return sampleStrings(instantQuery(get, "scrape_samples_scraped"+jobs))
		})
	})
	t.Run("honored timestamps", func(t *testing.T) {
		compare(t, engines, func(get func(string) ([]byte, error)) []string {
			return sampleStrings(instantQuery(get, `timestamp(honor_metric)`))
		})
		for _, s := range instantQuery(engines["kmetrics"], `timestamp(honor_metric)`) {
			if int64(s.value*1000) != honorTS {
				t.Errorf("honor_metric at %v, want the exposed %v", s.value, float64(honorTS)/1000)
			}
		}
	})
	t.Run("every limit fails its scrape whole", func(t *testing.T) {
		up := map[string]float64{}
		for _, s := range instantQuery(engines["kmetrics"], "up"+jobs) {
			up[s.labels["job"]] = max(up[s.labels["job"]], s.value)
		}
		for job, want := range map[string]float64{"kubernetes-pods": 1, "kubernetes-service-endpoints": 1, "kubernetes-cadvisor": 1, "honor": 1,
			"limit-samples": 0, "limit-labels": 0, "limit-label-name": 0, "limit-label-value": 0, "limit-body": 0, "limit-targets": 0, "timeout": 0} {
			if up[job] != want {
				t.Errorf("max(up{job=%q}) = %v, want %v", job, up[job], want)
			}
		}
		for _, m := range []string{"s", "many", "m", "big", "slow_metric"} {
			if got := instantQuery(engines["kmetrics"], m+jobs); len(got) > 0 {
				t.Errorf("%s stored from a job over its limit: %v", m, got)
			}
		}
	})
}

// typicalPrometheusConfig is a prometheus.yml as operators write it for
// Kubernetes (the classic example jobs), restricted to this test's
// namespace and kubelet, plus one job per limit.
func typicalPrometheusConfig(kubeconfig, ca, token, node string) string {
	sd := func(role string) string {
		ns := fmt.Sprintf("\n    namespaces: {names: [%s]}", promcfgNS)
		if role == "node" {
			ns = ""
		}
		return fmt.Sprintf("  kubernetes_sd_configs:\n  - role: %s\n    kubeconfig_file: %s%s\n", role, kubeconfig, ns)
	}
	limitJob := func(name, app, limit string) string {
		return fmt.Sprintf(`- job_name: %s
  %s
%s  relabel_configs:
  - {source_labels: [__meta_kubernetes_pod_label_app], regex: %s, action: keep}
  - {source_labels: [__meta_kubernetes_pod_ip], replacement: "$1:9100", target_label: __address__}
  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
`, name, limit, sd("pod"), app)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `global:
  scrape_interval: 5s
  scrape_timeout: 4s
scrape_configs:
- job_name: kubernetes-pods
%s  relabel_configs:
  - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
    action: keep
    regex: true
  - source_labels: [__meta_kubernetes_pod_label_app]
    action: keep
    regex: plain|targets
  - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path]
    action: replace
    target_label: __metrics_path__
    regex: (.+)
  - source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
    action: replace
    regex: ([^:]+)(?::\d+)?;(\d+)
    replacement: $1:$2
    target_label: __address__
  - action: labelmap
    regex: __meta_kubernetes_pod_label_(.+)
  - source_labels: [__meta_kubernetes_namespace]
    action: replace
    target_label: namespace
  - source_labels: [__meta_kubernetes_pod_name]
    action: replace
    target_label: pod
  - source_labels: [__meta_kubernetes_pod_node_name]
    action: replace
    target_label: node
- job_name: kubernetes-service-endpoints
%s  relabel_configs:
  - source_labels: [__meta_kubernetes_service_annotation_prometheus_io_scrape]
    action: keep
    regex: true
  - source_labels: [__meta_kubernetes_service_annotation_prometheus_io_scheme]
    action: replace
    target_label: __scheme__
    regex: (https?)
  - source_labels: [__address__, __meta_kubernetes_service_annotation_prometheus_io_port]
    action: replace
    target_label: __address__
    regex: ([^:]+)(?::\d+)?;(\d+)
    replacement: $1:$2
  - action: labelmap
    regex: __meta_kubernetes_service_label_(.+)
  - source_labels: [__meta_kubernetes_namespace]
    action: replace
    target_label: namespace
  - source_labels: [__meta_kubernetes_service_name]
    action: replace
    target_label: service
- job_name: kubernetes-cadvisor
  scheme: https
  metrics_path: /metrics/cadvisor
  tls_config: {ca_file: %s}
  authorization: {credentials_file: %s}
%s  relabel_configs:
  - {source_labels: [__meta_kubernetes_node_name], regex: %s, action: keep}
  - action: labelmap
    regex: __meta_kubernetes_node_label_(.+)
`, sd("pod"), sd("endpoints"), ca, token, sd("node"), node)
	b.WriteString(limitJob("limit-samples", "samples", "sample_limit: 3"))
	b.WriteString(limitJob("limit-labels", "labels", "label_limit: 5"))
	b.WriteString(limitJob("limit-label-name", "labelname", "label_name_length_limit: 10"))
	b.WriteString(limitJob("limit-label-value", "labelvalue", "label_value_length_limit: 10"))
	b.WriteString(limitJob("limit-body", "body", "body_size_limit: 100B"))
	b.WriteString(limitJob("limit-targets", "targets", "target_limit: 1"))
	b.WriteString(limitJob("honor", "honor", "honor_timestamps: true"))
	b.WriteString(limitJob("timeout", "slow", "scrape_timeout: 1s"))
	return b.String()
}

func textHandler(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, body)
	}
}

func nonLoopbackIPv4(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Fatal("this machine has no non-loopback IPv4 address for an Endpoints object")
	return ""
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// startPrometheus runs Prometheus 3.15 on config; it returns its port.
func startPrometheus(t *testing.T, bin, config string) string {
	t.Helper()
	port := freePort(t)
	logf, err := os.Create(filepath.Join(state, "logs", "prometheus-equivalence.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file", config, "--storage.tsdb.path", t.TempDir(),
		"--web.listen-address", "127.0.0.1:"+port)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close(); logTailOnFailure(t, logf.Name()) })
	eventually(t, time.Minute, "Prometheus ready", func() error {
		_, err := httpGet(http.DefaultClient, "http://127.0.0.1:"+port+"/-/ready")
		return err
	})
	return port
}

func httpGet(c *http.Client, u string) ([]byte, error) {
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", u, resp.Status, b.String())
	}
	return []byte(b.String()), nil
}

type promSample struct {
	labels map[string]string
	value  float64
}

func instantQuery(get func(string) ([]byte, error), expr string) []promSample {
	body, err := get("/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil
	}
	var resp struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &resp) != nil {
		return nil
	}
	var out []promSample
	for _, r := range resp.Data.Result {
		var v float64
		if s, ok := r.Value[1].(string); ok {
			fmt.Sscan(s, &v)
		}
		out = append(out, promSample{labels: r.Metric, value: v})
	}
	return out
}

// targetStrings lists the active targets of /api/v1/targets: job, URL,
// labels, health and last error.
func targetStrings(get func(string) ([]byte, error)) []string {
	body, err := get("/api/v1/targets?state=active")
	if err != nil {
		return []string{err.Error()}
	}
	var resp struct {
		Data struct {
			Active []struct {
				ScrapePool string            `json:"scrapePool"`
				ScrapeURL  string            `json:"scrapeUrl"`
				Labels     map[string]string `json:"labels"`
				Health     string            `json:"health"`
				LastError  string            `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, a := range resp.Data.Active {
		out = append(out, fmt.Sprintf("%s %s {%s} %s %q", a.ScrapePool, a.ScrapeURL, labelString(a.Labels), a.Health, a.LastError))
	}
	sort.Strings(out)
	return out
}

func labelString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}

func sampleStrings(samples []promSample) []string {
	var out []string
	for _, s := range samples {
		out = append(out, fmt.Sprintf("{%s} %g", labelString(s.labels), s.value))
	}
	sort.Strings(out)
	return out
}

func seriesStrings(get func(string) ([]byte, error), match string, since time.Time) []string {
	body, err := get(fmt.Sprintf("/api/v1/series?match[]=%s&start=%d", url.QueryEscape(match), since.Unix()))
	if err != nil {
		return []string{err.Error()}
	}
	var resp struct {
		Data []map[string]string `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, s := range resp.Data {
		out = append(out, "{"+labelString(s)+"}")
	}
	sort.Strings(out)
	return out
}

// compare checks that every engine gives what Prometheus gives.
func compare(t *testing.T, engines map[string]func(string) ([]byte, error), f func(get func(string) ([]byte, error)) []string) {
	t.Helper()
	// Each engine discovers and scrapes on its own schedule: a snapshot of
	// both can catch one a target behind the other (one of two pods of a
	// PodMonitor discovered, on a loaded machine). Compare until both agree;
	// a difference that persists for two minutes is a real one.
	var got []string
	eventually(t, 2*time.Minute, "kmetrics answers as Prometheus 3.15", func() error {
		want := f(engines["prometheus"])
		got = f(engines["kmetrics"])
		if len(want) == 0 {
			return fmt.Errorf("Prometheus returned nothing")
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			return fmt.Errorf("kmetrics:\n  %s\nPrometheus 3.15:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		return nil
	})
	t.Logf("%d equal, e.g.\n  %s", len(got), strings.Join(got[:min(4, len(got))], "\n  "))
}
