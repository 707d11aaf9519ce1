//go:build bench

// Package footprint runs kmetrics (every default on, as the chart installs
// it) beside the stack it replaces, against the same kwok kubelets of a
// real control plane: metrics-server v0.8.0 ($METRICS_SERVER_BIN),
// kube-state-metrics v2.20.0 ($KUBE_STATE_METRICS_BIN, the resources and
// families kmetrics writes by default) and Prometheus 3.15
// ($PROMETHEUS_BIN) holding the same history: the kubelets'
// /metrics/resource at the same 10 s resolution, kube-state-metrics at
// kmetrics' cluster-state interval, itself as kmetrics stores itself, and
// the same rule files. It reports each process's resident memory (median
// of samples every 5 s) and CPU time over the same minutes, and the stack's
// sum. Each is first checked to serve what it scraped: a like-for-like
// comparison.
//
//	make bench-footprint   (FOOTPRINT_NODES=3 FOOTPRINT_PODS=12 FOOTPRINT_DURATION=3m)
package footprint

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kmetrics/kmetrics/pkg/kubestate"
	"github.com/kmetrics/kmetrics/test/internal/benchcluster"
)

const (
	apiserverPort  = "46443"
	kmetricsPort   = "48443"
	msPort         = "48444"
	prometheusPort = "49090"
	ksmPort        = "48082"
	ksmSelfPort    = "48083"
	resolution     = "10s"
	// clusterStateInterval is kmetrics' default --cluster-state.interval,
	// kube-prometheus' scrape interval of kube-state-metrics.
	clusterStateInterval = "30s"
)

func TestFootprint(t *testing.T) {
	nodes, pods := benchcluster.IntEnv(t, "FOOTPRINT_NODES", 3), benchcluster.IntEnv(t, "FOOTPRINT_PODS", 12)
	duration, warmup := benchcluster.DurationEnv(t, "FOOTPRINT_DURATION", 3*time.Minute), benchcluster.DurationEnv(t, "FOOTPRINT_WARMUP", time.Minute)
	msBin, promBin, ksmBin := os.Getenv("METRICS_SERVER_BIN"), os.Getenv("PROMETHEUS_BIN"), os.Getenv("KUBE_STATE_METRICS_BIN")
	if msBin == "" || promBin == "" || ksmBin == "" {
		t.Fatal("METRICS_SERVER_BIN, PROMETHEUS_BIN and KUBE_STATE_METRICS_BIN are needed (make bench-footprint builds them)")
	}
	c := benchcluster.Up(t, benchcluster.Config{Name: "footprint", APIServerPort: apiserverPort, EtcdPort: "42379", KmetricsPort: kmetricsPort,
		NodeNet: "127.0.5", PodNet: "127.140", Nodes: nodes})
	root, state, admin := c.Root, c.State, c.Admin
	createPods(t, admin, pods)

	certs, kubeconfig := c.Certs(), c.Kubeconfig()
	token := tokenOf(t, kubeconfig)
	tokenFile := filepath.Join(state, "kmetrics.token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	procs := []*process{
		// FOOTPRINT_KMETRICS_ENV, e.g. "GOGC=50": the Go runtime
		// settings to compare.
		start(t, state, "kmetrics", strings.Fields(os.Getenv("FOOTPRINT_KMETRICS_ENV")), filepath.Join(root, "bin", "kmetrics"), append(c.KmetricsFlags(),
			"--storage.tsdb.path", filepath.Join(state, "tsdb"), "--metric-resolution", resolution, "--kubelet-request-timeout", "5s",
			"--rules.file", filepath.Join(root, "deploy", "base", "rules", "*.yaml"))...),
		// As its components.yaml runs it, with the kubelets' CA verified
		// (kmetrics verifies it too).
		start(t, state, "metrics-server", nil, msBin,
			"--kubeconfig", kubeconfig, "--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
			"--bind-address", "127.0.0.1", "--secure-port", msPort,
			"--tls-cert-file", filepath.Join(certs, "kmetrics.crt"), "--tls-private-key-file", filepath.Join(certs, "kmetrics.key"),
			"--metric-resolution", resolution, "--kubelet-request-timeout", "5s",
			"--kubelet-preferred-address-types", "InternalIP", "--kubelet-certificate-authority", filepath.Join(certs, "ca.crt")),
		// With kmetrics' RBAC (its kubeconfig), the resources kmetrics
		// watches and the families it writes by default.
		start(t, state, "kube-state-metrics", nil, ksmBin, "--kubeconfig", kubeconfig,
			"--host", "127.0.0.1", "--port", ksmPort, "--telemetry-host", "127.0.0.1", "--telemetry-port", ksmSelfPort,
			"--resources", strings.Join(kmetricsResources(t), ","), "--metric-allowlist", anchored(kubestate.DefaultFamilies())),
		start(t, state, "prometheus", nil, promBin, "--config.file", prometheusConfig(t, state, root, c.KubeletAddresses(), certs, tokenFile),
			"--storage.tsdb.path", filepath.Join(state, "prometheus"), "--web.listen-address", "127.0.0.1:"+prometheusPort),
	}
	stack := procs[1:] // what kmetrics replaces
	client := httpsClient(t, c)
	// The controllers create, the scheduler binds and kwok starts every
	// pod first: a 100-node × 30-pod cluster needs longer than 3 minutes.
	settle := max(3*time.Minute, time.Duration(pods)*100*time.Millisecond)
	benchcluster.Eventually(t, "kmetrics serves every pod", settle, func() error { return podMetrics(client, "https://127.0.0.1:"+kmetricsPort, pods) })
	benchcluster.Eventually(t, "metrics-server serves every pod", settle, func() error { return podMetrics(client, "https://127.0.0.1:"+msPort, pods) })
	benchcluster.Eventually(t, "Prometheus scrapes every kubelet and kube-state-metrics", 3*time.Minute, func() error { return prometheusUp(nodes) })
	// Both hold the cluster state of every pod before anything is measured.
	benchcluster.Eventually(t, "kmetrics holds every pod's kube_pod_info", settle, func() error {
		return podInfo(client, kmetricsPromQL, pods)
	})
	benchcluster.Eventually(t, "Prometheus holds every pod's kube_pod_info", settle, func() error {
		return podInfo(http.DefaultClient, prometheusPromQL, pods)
	})

	time.Sleep(warmup)
	for _, p := range procs {
		p.begin(t)
	}
	for end := time.Now().Add(duration); time.Now().Before(end); time.Sleep(5 * time.Second) {
		for _, p := range procs {
			p.sample(t)
		}
	}
	for _, p := range procs {
		p.finish(t)
	}
	// They still serve: nothing was measured while one of them had failed.
	for _, check := range []func() error{
		func() error { return podMetrics(client, "https://127.0.0.1:"+kmetricsPort, pods) },
		func() error { return podMetrics(client, "https://127.0.0.1:"+msPort, pods) },
		func() error { return prometheusUp(nodes) },
		func() error { return podInfo(client, kmetricsPromQL, pods) },
		func() error { return podInfo(http.DefaultClient, prometheusPromQL, pods) },
	} {
		if err := check(); err != nil {
			t.Fatal(err)
		}
	}
	// Where kmetrics' resident set goes (its Go runtime's own figures),
	// and a heap profile to read it by function:
	// go tool pprof -top -sample_index=inuse_space bench-footprint-kmetrics.heap.prof
	kmetricsBase := "https://127.0.0.1:" + kmetricsPort
	runtimeFigures := goRuntime(t, client, kmetricsBase)
	saveProfile(t, client, kmetricsBase+"/debug/pprof/heap", filepath.Join(root, "bench-footprint-kmetrics.heap.prof"))
	// Where its CPU goes, over the minute after the measurement (so the
	// profiler's own cost is not in the figures above):
	// go tool pprof -top bench-footprint-kmetrics.cpu.prof
	saveProfile(t, client, kmetricsBase+"/debug/pprof/profile?seconds=60", filepath.Join(root, "bench-footprint-kmetrics.cpu.prof"))
	ms := procs[1]
	t.Logf("RESULT nodes=%d pods=%d resolution=%s duration=%v samples=%d", nodes, pods, resolution, duration, len(ms.rss))
	for _, p := range procs {
		t.Logf("RESULT %-15s RSS median %6.1f MiB (%.2f× metrics-server), of which anonymous %6.1f MiB (%.2f×)  CPU %6.2f s (%.2f× metrics-server)",
			p.name, p.medianRSS()/(1<<20), p.medianRSS()/ms.medianRSS(), p.medianAnon()/(1<<20), p.medianAnon()/ms.medianAnon(), p.cpu, p.cpu/ms.cpu)
	}
	var stackRSS, stackAnon, stackCPU float64
	for _, p := range stack {
		stackRSS, stackAnon, stackCPU = stackRSS+p.medianRSS(), stackAnon+p.medianAnon(), stackCPU+p.cpu
	}
	km := procs[0]
	t.Logf("RESULT %-15s RSS median %6.1f MiB, of which anonymous %6.1f MiB  CPU %6.2f s  (kmetrics: %.2f× RSS, %.2f× anonymous, %.2f× CPU)",
		"stack (sum)", stackRSS/(1<<20), stackAnon/(1<<20), stackCPU, km.medianRSS()/stackRSS, km.medianAnon()/stackAnon, km.cpu/stackCPU)
	t.Logf("RESULT head series at the end: kmetrics %s, Prometheus %s",
		headSeries(t, client, kmetricsBase+"/metrics"), headSeries(t, http.DefaultClient, "http://127.0.0.1:"+prometheusPort+"/metrics"))
	t.Logf("RESULT kmetrics Go runtime at the end: %s", runtimeFigures)
	for _, p := range procs {
		t.Logf("RESULT %-15s resident at the end by mapping: %s", p.name, residentByMapping(t, p.cmd.Process.Pid))
	}
}

// residentByMapping sums /proc/pid/smaps' Rss by what is mapped: the
// binary's text (r-xp), read-only data (r--p: type data, the pclntab the
// runtime reads to walk stacks) and data (rw-p), other files (the TSDB's
// memory-mapped chunks) and anonymous memory (the heap, stacks).
func residentByMapping(t *testing.T, pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	binary, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	order := []string{"binary r-xp", "binary r--p", "binary rw-p", "other files", "anonymous"}
	kb := map[string]float64{}
	kind := ""
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && len(f[1]) == 4:
			path := ""
			if len(f) >= 6 {
				path = f[5]
			}
			switch {
			case path == binary:
				kind = "binary " + f[1]
			case strings.HasPrefix(path, "/"):
				kind = "other files"
			default:
				kind = "anonymous"
			}
		case len(f) >= 2 && f[0] == "Rss:":
			v, _ := strconv.ParseFloat(f[1], 64)
			kb[kind] += v
		}
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%s %.1f MiB", k, kb[k]/1024))
	}
	return strings.Join(parts, ", ")
}

// goRuntime is the Go runtime's memory figures from a /metrics.
func goRuntime(t *testing.T, c *http.Client, base string) string {
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		for _, name := range []string{"go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes", "go_goroutines"} {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				if strings.HasSuffix(name, "_bytes") {
					out = append(out, fmt.Sprintf("%s=%.1fMiB", strings.TrimPrefix(name, "go_memstats_"), f/(1<<20)))
				} else {
					out = append(out, fmt.Sprintf("%s=%.0f", name, f))
				}
			}
		}
	}
	return strings.Join(out, " ")
}

func saveProfile(t *testing.T, c *http.Client, url, path string) {
	long := *c
	long.Timeout = 2 * time.Minute // a CPU profile takes its seconds
	resp, err := long.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %.200s", url, resp.StatusCode, body)
	}
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
}

// createPods runs a Deployment of n pods with kwok's usage annotations
// (CPU and memory as the kwok kubelets report them), spread over the nodes.
func createPods(t *testing.T, c kubernetes.Interface, n int) {
	ctx := context.Background()
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "footprint"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	replicas := int32(n)
	labels := map[string]string{"app": "load"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "load", Namespace: "footprint"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"kwok.x-k8s.io/usage-cpu": "250m", "kwok.x-k8s.io/usage-memory": "64Mi"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "load", Image: "registry.k8s.io/pause:3.10",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}}}}},
			},
		},
	}
	if _, err := c.AppsV1().Deployments("footprint").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// prometheusConfig: what kmetrics stores, as kube-prometheus' Prometheus
// scrapes it: the kubelets' /metrics/resource (TLS verified, the same
// ServiceAccount's token), kube-state-metrics at kmetrics' cluster-state
// interval, itself at kmetrics' self-metrics interval, and the rule files
// kmetrics evaluates.
func prometheusConfig(t *testing.T, state, root string, kubelets []string, certs, tokenFile string) string {
	var targets []string
	for _, k := range kubelets {
		targets = append(targets, fmt.Sprintf("%q", k))
	}
	cfg := fmt.Sprintf(`global: {scrape_interval: %s, scrape_timeout: 5s, evaluation_interval: 30s}
rule_files: [%q]
scrape_configs:
- job_name: kubelet
  scheme: https
  metrics_path: /metrics/resource
  tls_config: {ca_file: %q}
  authorization: {credentials_file: %q}
  static_configs: [{targets: [%s]}]
- job_name: kube-state-metrics
  scrape_interval: %s
  honor_labels: true
  static_configs: [{targets: ["127.0.0.1:%s"]}]
- job_name: prometheus
  scrape_interval: 30s
  static_configs: [{targets: ["127.0.0.1:%s"]}]
`, resolution, filepath.Join(root, "deploy", "base", "rules", "*.yaml"), filepath.Join(certs, "ca.crt"), tokenFile, strings.Join(targets, ", "),
		clusterStateInterval, ksmPort, prometheusPort)
	path := filepath.Join(state, "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func tokenOf(t *testing.T, kubeconfig string) string {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil || cfg.BearerToken == "" {
		t.Fatalf("no token in %s: %v", kubeconfig, err)
	}
	return cfg.BearerToken
}

// process is one measured process: its RSS samples and CPU time.
type process struct {
	name     string
	cmd      *exec.Cmd
	rss      []float64
	anon     []float64 // RssAnon: the heap, stacks and other private memory
	cpuStart float64
	cpu      float64
}

// start runs bin with args, its environment this one's plus env.
func start(t *testing.T, state, name string, env []string, bin string, args ...string) *process {
	log, err := os.Create(filepath.Join(state, "logs", name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); log.Close() })
	return &process{name: name, cmd: cmd}
}

func (p *process) begin(t *testing.T)  { p.cpuStart = cpuSeconds(t, p.cmd.Process.Pid) }
func (p *process) finish(t *testing.T) { p.cpu = cpuSeconds(t, p.cmd.Process.Pid) - p.cpuStart }
func (p *process) sample(t *testing.T) {
	p.rss = append(p.rss, status(t, p.cmd.Process.Pid, "VmRSS:"))
	p.anon = append(p.anon, status(t, p.cmd.Process.Pid, "RssAnon:"))
}

func (p *process) medianRSS() float64  { return median(p.rss) }
func (p *process) medianAnon() float64 { return median(p.anon) }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// status is a /proc/pid/status figure (kB) in bytes.
func status(t *testing.T, pid int, field string) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, field) {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb * 1024
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// cpuSeconds is the process' user + system time (/proc/pid/stat fields 14
// and 15, in clock ticks of 1/100 s).
func cpuSeconds(t *testing.T, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

// httpsClient is the cluster admin's (a client certificate in
// system:masters), trusting the cluster CA.
func httpsClient(t *testing.T, c *benchcluster.Cluster) *http.Client {
	cert, err := tls.LoadX509KeyPair(filepath.Join(c.Certs(), "admin.crt"), filepath.Join(c.Certs(), "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	// Both serve the certificate the cluster CA signed for 127.0.0.1.
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: c.RootCAs(t)}}}
}

// podMetrics checks that a metrics.k8s.io server serves the pods.
func podMetrics(c *http.Client, base string, pods int) error {
	resp, err := c.Get(base + "/apis/metrics.k8s.io/v1beta1/namespaces/footprint/pods")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var list struct{ Items []json.RawMessage }
	if err := json.Unmarshal(body, &list); err != nil || len(list.Items) != pods {
		return fmt.Errorf("%s: %d pods of %d (%v): %.200s", base, len(list.Items), pods, err, body)
	}
	return nil
}

// prometheusUp checks that Prometheus scrapes every kubelet, and
// kube-state-metrics and itself.
func prometheusUp(nodes int) error {
	return promQLIs(http.DefaultClient, prometheusPromQL, "sum(up)", nodes+2)
}

// podInfo checks that a PromQL API holds kube_pod_info of every pod.
func podInfo(c *http.Client, api string, pods int) error {
	return promQLIs(c, api, `count(kube_pod_info{namespace="footprint"})`, pods)
}

const (
	prometheusPromQL = "http://127.0.0.1:" + prometheusPort + "/api/v1/query"
	kmetricsPromQL   = "https://127.0.0.1:" + kmetricsPort + "/prometheus/api/v1/query"
)

// promQLIs checks that an instant query answers one sample of value want.
func promQLIs(c *http.Client, api, query string, want int) error {
	resp, err := c.Get(api + "?query=" + url.QueryEscape(query))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), fmt.Sprintf(`"%d"]`, want)) {
		return fmt.Errorf("%s: %s is not %d: %.200s", api, query, want, body)
	}
	return nil
}

// headSeries is prometheus_tsdb_head_series from a /metrics.
func headSeries(t *testing.T, c *http.Client, url string) string {
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, "prometheus_tsdb_head_series "); ok {
			return v
		}
	}
	return "unknown"
}

// kmetricsResources are the cluster-state resources kmetrics watches by
// default, in kube-state-metrics' names.
func kmetricsResources(t *testing.T) []string {
	on, err := kubestate.Config{}.Enabled()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for r, yes := range on {
		if yes {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// anchored is a kube-state-metrics --metric-allowlist of exactly these
// names (its patterns match anywhere in a name).
func anchored(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "^" + n + "$"
	}
	return strings.Join(out, ",")
}
