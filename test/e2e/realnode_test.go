//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const realNS = "e2e-real"

// realNode is the real kubelet hack/real-node.sh runs beside the kwok nodes.
type realNode struct {
	name, ip, dir string
	// client reads the kubelet directly as the cluster admin (x509, which
	// the kubelet authenticates against the cluster CA and authorizes with
	// a SubjectAccessReview), verifying its certificate.
	client *http.Client
}

// realNodeScript runs hack/real-node.sh against the suite's cluster.
func realNodeScript(args ...string) (string, error) {
	cmd := exec.Command("bash", append([]string{filepath.Join(root, "hack", "real-node.sh")}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("hack/real-node.sh %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func startRealNode(t *testing.T) *realNode {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("tail", "-n", "40", filepath.Join(state, "logs", "kubelet.log")).Output()
			t.Logf("kubelet.log:\n%s", out)
		}
		if _, err := realNodeScript("down"); err != nil {
			t.Errorf("taking the real node down: %v", err)
		}
	})
	if _, err := realNodeScript("up"); err != nil {
		t.Fatal(err)
	}
	out, err := realNodeScript("env")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	admin := adminCert(t)
	return &realNode{name: env["REAL_NODE"], ip: env["REAL_NODE_IP"], dir: env["REAL_NODE_DIR"],
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: clusterCAPool(t), Certificates: []tls.Certificate{admin}}}}}
}

// get reads one of the kubelet's paths directly (safe from any goroutine).
func (n *realNode) get(path string) ([]byte, error) {
	return httpGet(n.client, "https://"+n.ip+":10250"+path)
}

// TestRealKubelet checks kmetrics against a real kubelet running real
// containers in real cgroups: what kubectl top and the HPA see is what the
// cgroups account; the node row is the kubelet's own; cAdvisor series carry
// the labels the kubernetes-mixin selects on; a kmetrics without
// nodes/metrics is refused by the kubelet, and a node serving a certificate
// from the wrong CA fails alone.
//
// Not parallel: the node joins the shared cluster for this test only
// (tainted, so only this test's pods land on it) and is removed after.
func TestRealKubelet(t *testing.T) {
	node := startRealNode(t)
	mustKubectl(t, "create", "namespace", realNS)
	t.Cleanup(func() { _, _ = kubectl("delete", "namespace", realNS, "--wait=false") })
	kubectlApply(t, burnPod(node.name, "burn", 300, 64))
	eventually(t, 2*time.Minute, "the burn pod runs", func() error {
		phase, err := kubectl("-n", realNS, "get", "pod", "burn", "-o", "jsonpath={.status.phase}")
		if err != nil || phase != "Running" {
			return fmt.Errorf("phase %q: %v", phase, err)
		}
		return nil
	})
	cg := containerCgroup(t, "burn", "burn")

	t.Run("kubectl top pods: CPU within 15% of the cgroup's", func(t *testing.T) {
		eventually(t, time.Minute, "the pod served", podsServed(realNS, 1))
		u0, t0 := cgroupCPU(t, cg)
		var tops []float64
		for i := 0; i < 12; i++ {
			time.Sleep(3 * time.Second)
			rows := parseTop(mustKubectl(t, "-n", realNS, "top", "pod", "burn"))
			if len(rows) != 1 {
				t.Fatalf("kubectl top pod burn: %v", rows)
			}
			m, err := millicores(rows[0]["CPU(cores)"])
			if err != nil {
				t.Fatal(err)
			}
			tops = append(tops, m)
		}
		u1, t1 := cgroupCPU(t, cg)
		cgroupMillicores := (u1 - u0) / t1.Sub(t0).Seconds() * 1000
		top := median(tops)
		t.Logf("cgroup %.0fm over %v; kubectl top median %.0fm of %v", cgroupMillicores, t1.Sub(t0).Round(time.Second), top, tops)
		if cgroupMillicores < 200 {
			t.Fatalf("the container used %.0fm, not the 300m it burns: the test cannot tell anything", cgroupMillicores)
		}
		if math.Abs(top-cgroupMillicores) > 0.15*cgroupMillicores {
			t.Fatalf("kubectl top says %.0fm, the cgroup accounted %.0fm (more than 15%% apart)", top, cgroupMillicores)
		}
	})

	t.Run("memory is the cgroup's working set", func(t *testing.T) {
		eventually(t, time.Minute, "memory within 2% of the cgroup's working set", func() error {
			ws := cgroupWorkingSet(t, cg)
			served, err := containerMemory(t, "burn", "burn")
			if err != nil {
				return err
			}
			if ws < 64<<20 {
				return fmt.Errorf("working set %.0f B is below the 64 MiB held", ws)
			}
			if math.Abs(served-ws) > 0.02*ws {
				return fmt.Errorf("served %.0f B, cgroup working set %.0f B", served, ws)
			}
			return nil
		})
		rows := parseTop(mustKubectl(t, "-n", realNS, "top", "pod", "burn"))
		mi, err := mebibytes(rows[0]["MEMORY(bytes)"])
		if err != nil || mi < 64 || mi > 80 {
			t.Fatalf("kubectl top pod burn memory %v (%v), want the 64 MiB held and the program", rows[0]["MEMORY(bytes)"], err)
		}
	})

	t.Run("the node row is the kubelet's own", func(t *testing.T) { nodeRowIsKubelets(t, node) })
	t.Run("the shipped dashboards show the node and its pod", func(t *testing.T) {
		dashboardsAnswer(t, strings.NewReplacer("$cluster", ".*", "$namespace", realNS, "$pod", "burn", "$node", node.name, "$__rate_interval", "1m", "$__interval", "15s"))
	})
	t.Run("an HPA scales a real Deployment on real CPU, up and down", func(t *testing.T) { realHPA(t, node) })
	t.Run("cAdvisor series carry the kubernetes-mixin labels", func(t *testing.T) { cadvisorLabels(t) })
	t.Run("without nodes/metrics the kubelet refuses, per node", func(t *testing.T) { refusedWithoutNodeMetrics(t, node) })
	t.Run("a node serving from the wrong CA fails alone", func(t *testing.T) { wrongCA(t, node) })
}

// burnPod is a pod on the real node burning millicores and holding memory.
func burnPod(node, name string, millicores, memoryMiB int) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: %[2]s, namespace: %[5]s}
spec:
  nodeName: %[1]s
  tolerations: [{key: kmetrics.dev/real-node, operator: Exists}]
  hostNetwork: true
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: %[2]s
    image: kmetrics.local/workload:e2e
    imagePullPolicy: Never
    command: [/workload, burn, --millicores, "%[3]d", --memory-mib, "%[4]d"]
    resources: {requests: {cpu: 100m, memory: 32Mi}}
`, node, name, millicores, memoryMiB, realNS)
}

// containerCgroup finds a container's cgroup (v1, cgroupfs driver) below
// the cpuacct hierarchy; the same relative path holds in memory.
func containerCgroup(t *testing.T, pod, container string) string {
	t.Helper()
	uid := mustKubectl(t, "-n", realNS, "get", "pod", pod, "-o", "jsonpath={.metadata.uid}")
	id := mustKubectl(t, "-n", realNS, "get", "pod", pod, "-o",
		fmt.Sprintf(`jsonpath={.status.containerStatuses[?(@.name=="%s")].containerID}`, container))
	id = strings.TrimPrefix(id, "containerd://")
	for _, pattern := range []string{"kubepods/*/pod%s/%s", "kubepods/pod%s/%s"} {
		matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/cpuacct", fmt.Sprintf(pattern, uid, id)))
		if len(matches) == 1 {
			rel, _ := filepath.Rel("/sys/fs/cgroup/cpuacct", matches[0])
			return rel
		}
	}
	t.Fatalf("no cgroup for pod %s container %s", uid, id)
	return ""
}

// cgroupCPU is the CPU time the cgroup accounted (cpuacct.usage, seconds)
// and when it was read.
func cgroupCPU(t *testing.T, cg string) (float64, time.Time) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuacct", cg, "cpuacct.usage"))
	now := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		t.Fatal(err)
	}
	return ns / 1e9, now
}

// cgroupWorkingSet is what cAdvisor and the kubelet call the working set
// on cgroup v1: usage minus the inactive file cache.
func cgroupWorkingSet(t *testing.T, cg string) float64 {
	t.Helper()
	dir := filepath.Join("/sys/fs/cgroup/memory", cg)
	b, err := os.ReadFile(filepath.Join(dir, "memory.usage_in_bytes"))
	if err != nil {
		t.Fatal(err)
	}
	usage, _ := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	stat, err := os.ReadFile(filepath.Join(dir, "memory.stat"))
	if err != nil {
		t.Fatal(err)
	}
	inactive := 0.0
	for _, l := range strings.Split(string(stat), "\n") {
		if v, ok := strings.CutPrefix(l, "total_inactive_file "); ok {
			inactive, _ = strconv.ParseFloat(v, 64)
		}
	}
	if inactive > usage {
		return 0
	}
	return usage - inactive
}

// containerMemory is a container's memory as metrics.k8s.io serves it.
func containerMemory(t *testing.T, pod, container string) (float64, error) {
	out, err := kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/"+realNS+"/pods/"+pod)
	if err != nil {
		return 0, err
	}
	var pm struct {
		Containers []struct {
			Name  string            `json:"name"`
			Usage map[string]string `json:"usage"`
		} `json:"containers"`
	}
	if err := json.Unmarshal([]byte(out), &pm); err != nil {
		return 0, err
	}
	for _, c := range pm.Containers {
		if c.Name == container {
			return quantity(t, c.Usage["memory"]), nil
		}
	}
	return 0, fmt.Errorf("container %s not in %s", container, out)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// kubeletSample is one of the node's samples as the kubelet served it.
type kubeletSample struct{ cpu, memory float64 }

// nodeRowIsKubelets collects the node's samples straight from the kubelet
// while asking metrics.k8s.io: the row served must be exactly those
// samples — memory the kubelet's value at the row's timestamp, CPU the rate
// between the two kubelet samples that end at it.
func nodeRowIsKubelets(t *testing.T, node *realNode) {
	samples := map[int64]kubeletSample{} // by the kubelet's timestamp (ms)
	var mu sync.Mutex
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if body, err := node.get("/metrics/resource"); err == nil {
				cpu, ts1, ok1 := exposedSample(body, "node_cpu_usage_seconds_total")
				mem, ts2, ok2 := exposedSample(body, "node_memory_working_set_bytes")
				if ok1 && ok2 && ts1 == ts2 {
					mu.Lock()
					samples[ts1] = kubeletSample{cpu, mem}
					mu.Unlock()
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
		}
	}()
	defer func() { close(stop); <-done }()

	eventually(t, 2*time.Minute, "the served row matches the kubelet's samples", func() error {
		out, err := kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/"+node.name)
		if err != nil {
			return err
		}
		var nm struct {
			Timestamp time.Time         `json:"timestamp"`
			Window    string            `json:"window"`
			Usage     map[string]string `json:"usage"`
		}
		if err := json.Unmarshal([]byte(out), &nm); err != nil {
			return err
		}
		window, err := time.ParseDuration(nm.Window)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		// metrics.k8s.io's timestamp has seconds; the kubelet's, milliseconds.
		var end int64
		for ts := range samples {
			if ts/1000 == nm.Timestamp.Unix() {
				end = ts
			}
		}
		last, ok := samples[end]
		prev, okPrev := samples[end-window.Milliseconds()]
		if end == 0 || !ok || !okPrev {
			return fmt.Errorf("row at %v (window %v) not among the %d kubelet samples seen yet", nm.Timestamp, window, len(samples))
		}
		if mem := quantity(t, nm.Usage["memory"]); mem != last.memory {
			return fmt.Errorf("memory %v, the kubelet's %v", mem, last.memory)
		}
		wantCPU := (last.cpu - prev.cpu) / window.Seconds()
		if cpu := quantity(t, nm.Usage["cpu"]); math.Abs(cpu-wantCPU) > 1e-6+1e-4*wantCPU {
			return fmt.Errorf("cpu %v cores, the kubelet's samples give %v", cpu, wantCPU)
		}
		t.Logf("row at %v: memory %s, cpu %s = the kubelet's samples at %d and %d ms", nm.Timestamp, nm.Usage["memory"], nm.Usage["cpu"], end-window.Milliseconds(), end)
		return nil
	})
	rows := parseTop(mustKubectl(t, "top", "nodes"))
	var seen []string
	for _, r := range rows {
		seen = append(seen, r["NAME"])
		if r["NAME"] == node.name && r["CPU(cores)"] != "" {
			return
		}
	}
	t.Fatalf("kubectl top nodes has no row for %s: %v", node.name, seen)
}

// exposedSample reads an unlabelled sample "name value timestamp" from a
// text exposition.
func exposedSample(body []byte, name string) (v float64, ts int64, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == name {
			v, err1 := strconv.ParseFloat(f[1], 64)
			ts, err2 := strconv.ParseInt(f[2], 10, 64)
			return v, ts, err1 == nil && err2 == nil
		}
	}
	return 0, 0, false
}

// realHPA: a Deployment of burners on the real node, all reading their
// load from one hostPath file; the HPA sees their real CPU through
// kmetrics and scales 1 → 3 and back to 1.
func realHPA(t *testing.T, node *realNode) {
	load := filepath.Join(node.dir, "load")
	if err := os.MkdirAll(load, 0o755); err != nil {
		t.Fatal(err)
	}
	setLoad := func(m int) {
		if err := os.WriteFile(filepath.Join(load, "millicores"), []byte(strconv.Itoa(m)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setLoad(0)
	kubectlApply(t, fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: burner, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: burner}}
  template:
    metadata: {labels: {app: burner}}
    spec:
      nodeSelector: {kmetrics.dev/real-node: "true"}
      tolerations: [{key: kmetrics.dev/real-node, operator: Exists}]
      hostNetwork: true
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: 1
      volumes: [{name: load, hostPath: {path: %[2]s, type: Directory}}]
      containers:
      - name: burner
        image: kmetrics.local/workload:e2e
        imagePullPolicy: Never
        command: [/workload, burn, --millicores-file, /load/millicores]
        volumeMounts: [{name: load, mountPath: /load, readOnly: true}]
        resources: {requests: {cpu: 100m, memory: 16Mi}}
`, realNS, load))
	eventually(t, time.Minute, "the burner served", func() error {
		_, err := kubectl("-n", realNS, "top", "pod", "-l", "app=burner")
		return err
	})
	mustKubectl(t, "-n", realNS, "autoscale", "deployment", "burner", "--cpu-percent=50", "--min=1", "--max=3")
	setLoad(200) // 200% of the request: the HPA wants 4, is capped at 3
	eventually(t, 3*time.Minute, "the HPA scales up to 3", replicasOf(realNS, "burner", "3"))
	setLoad(0)
	eventually(t, 3*time.Minute, "the HPA scales down to 1", replicasOf(realNS, "burner", "1"))
	rescaledWithoutFailures(t, realNS, 3, 1)
	mustKubectl(t, "-n", realNS, "delete", "hpa", "burner")
	mustKubectl(t, "-n", realNS, "delete", "deployment", "burner")
}

// cadvisorLabels runs a kmetrics with --kubelet-cadvisor, as a user turns
// it on, and evaluates what the kubernetes-mixin's rules select: cAdvisor
// series of job="kubelet", metrics_path="/metrics/cadvisor" with image,
// container, pod, namespace, joined with kube_pod_info for the node.
func cadvisorLabels(t *testing.T) {
	k := startSecondKmetrics(t, "cadvisor", "--kubelet-cadvisor")
	sel := `job="kubelet", metrics_path="/metrics/cadvisor", namespace="` + realNS + `", pod="burn", container="burn", image!=""`
	byNode := ` * on (namespace, pod) group_left (node) topk by (namespace, pod) (1, max by (namespace, pod, node) (kube_pod_info{node!=""}))`
	var cpu, mem []promSample
	eventually(t, 2*time.Minute, "the mixin's container CPU and memory expressions answer", func() error {
		cpu = instantQuery(k.query, `sum by (namespace, pod, container) (irate(container_cpu_usage_seconds_total{`+sel+`}[1m]))`+byNode)
		mem = instantQuery(k.query, `container_memory_working_set_bytes{`+sel+`}`+byNode)
		if len(cpu) != 1 || len(mem) != 1 {
			return fmt.Errorf("cpu %v, memory %v", cpu, mem)
		}
		return nil
	})
	if cpu[0].labels["node"] != "real-node" || mem[0].labels["node"] != "real-node" {
		t.Fatalf("joined node: cpu %v, memory %v", cpu[0].labels, mem[0].labels)
	}
	if c := cpu[0].value; c < 0.2 || c > 0.4 {
		t.Fatalf("cAdvisor CPU %.3f cores, the container burns 0.3", c)
	}
	if m := mem[0].value; m < 64<<20 {
		t.Fatalf("cAdvisor working set %.0f B, the container holds 64 MiB", m)
	}
	series := instantQuery(k.query, `container_cpu_usage_seconds_total{`+sel+`}`)
	if len(series) != 1 {
		t.Fatalf("container_cpu_usage_seconds_total of the burn container: %v", series)
	}
	for _, l := range []string{"id", "name", "image", "instance", "node"} {
		if series[0].labels[l] == "" {
			t.Errorf("label %s missing: %v", l, series[0].labels)
		}
	}
	// The other families the mixin's memory panels read are kept; what
	// kube-prometheus drops (kmetrics' default deny list) is not stored.
	for _, name := range []string{"container_memory_rss", "container_memory_cache", "container_memory_usage_bytes", "container_spec_cpu_shares", "container_memory_swap"} {
		got := instantQuery(k.query, name+`{job="kubelet", metrics_path="/metrics/cadvisor", namespace="`+realNS+`", pod="burn", container="burn"}`)
		denied := strings.HasPrefix(name, "container_spec_") || name == "container_memory_swap"
		if denied != (len(got) == 0) {
			t.Errorf("%s: %d series for the burn container (denied by default: %v)", name, len(got), denied)
		}
	}
	// The node's own (root cgroup) series, the mixin's cluster totals.
	if got := instantQuery(k.query, `container_cpu_usage_seconds_total{job="kubelet", metrics_path="/metrics/cadvisor", id="/", node="real-node"}`); len(got) != 1 {
		t.Errorf("root cgroup CPU of the node: %v", got)
	}
}

// refusedWithoutNodeMetrics runs a kmetrics whose account has everything
// but nodes/metrics: the real kubelet (webhook authorization) refuses it,
// kwok (no authorization) does not; kmetrics says so for that node only.
func refusedWithoutNodeMetrics(t *testing.T, node *realNode) {
	const sa = "kmetrics-no-node-metrics"
	mustKubectl(t, "-n", realNS, "create", "serviceaccount", sa)
	role := mustKubectl(t, "get", "clusterrole", "system:kmetrics", "-o", "json")
	var cr map[string]any
	if err := json.Unmarshal([]byte(role), &cr); err != nil {
		t.Fatal(err)
	}
	var rules []any
	for _, r := range cr["rules"].([]any) {
		if !strings.Contains(fmt.Sprint(r.(map[string]any)["resources"]), "nodes/metrics") {
			rules = append(rules, r)
		}
	}
	limited, _ := json.Marshal(map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
		"metadata": map[string]any{"name": "e2e:kmetrics-without-node-metrics"}, "rules": rules})
	kubectlApply(t, string(limited))
	subject := "--serviceaccount=" + realNS + ":" + sa
	mustKubectl(t, "create", "clusterrolebinding", "e2e:kmetrics-without-node-metrics", "--clusterrole=e2e:kmetrics-without-node-metrics", subject)
	mustKubectl(t, "create", "clusterrolebinding", "e2e:kmetrics-without-node-metrics:auth-delegator", "--clusterrole=system:auth-delegator", subject)
	mustKubectl(t, "-n", "kube-system", "create", "rolebinding", "e2e:kmetrics-without-node-metrics", "--role=extension-apiserver-authentication-reader", subject)
	t.Cleanup(func() {
		_, _ = kubectl("delete", "clusterrolebinding", "e2e:kmetrics-without-node-metrics", "e2e:kmetrics-without-node-metrics:auth-delegator")
		_, _ = kubectl("delete", "clusterrole", "e2e:kmetrics-without-node-metrics")
		_, _ = kubectl("-n", "kube-system", "delete", "rolebinding", "e2e:kmetrics-without-node-metrics")
	})
	if can := strings.TrimSpace(mustKubectlNoFail("auth", "can-i", "get", "nodes", "--subresource=metrics", "--as=system:serviceaccount:"+realNS+":"+sa)); can != "no" {
		t.Fatalf("the limited account can get nodes/metrics: %q", can)
	}
	token := strings.TrimSpace(mustKubectl(t, "-n", realNS, "create", "token", sa, "--duration", "1h"))
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	for _, args := range [][]string{
		{"config", "set-cluster", "local", "--server=https://127.0.0.1:" + apiserverPort, "--certificate-authority=" + filepath.Join(state, "certs", "ca.crt"), "--embed-certs=true"},
		{"config", "set-credentials", sa, "--token=" + token},
		{"config", "set-context", "local", "--cluster=local", "--user=" + sa},
		{"config", "use-context", "local"},
	} {
		mustKubectl(t, append(args, "--kubeconfig="+kubeconfig)...)
	}
	k := startSecondKmetrics(t, "no-node-metrics", "--kubeconfig", kubeconfig)
	log := filepath.Join(state, "logs", "kmetrics-no-node-metrics.log")
	eventually(t, time.Minute, "the real node refused, the kwok nodes served", func() error {
		metrics, err := k.raw("/metrics")
		if err != nil {
			return err
		}
		if n := sumMetric(string(metrics), "kmetrics_kubelet_scrape_errors_total", `node="`+node.name+`"`); n == 0 {
			return fmt.Errorf("no scrape error counted for %s", node.name)
		}
		if n := sumMetric(string(metrics), "kmetrics_kubelet_scrape_errors_total", `node="kwok-node-1"`); n != 0 {
			return fmt.Errorf("%v scrape errors for kwok-node-1", n)
		}
		nodes, err := k.raw("/apis/metrics.k8s.io/v1beta1/nodes")
		if err != nil {
			return err
		}
		if !strings.Contains(string(nodes), `"kwok-node-1"`) || strings.Contains(string(nodes), `"`+node.name+`"`) {
			return fmt.Errorf("want kwok-node-1 served and %s not: %.300s", node.name, nodes)
		}
		return logHas(log, `node="`+node.name+`"`, "403")
	})
}

// wrongCA restarts the kubelet serving a certificate from a CA nobody
// trusts: the suite's kmetrics fails that node with a TLS error and keeps
// serving every other; the kubelet back on the cluster CA is served again.
func wrongCA(t *testing.T, node *realNode) {
	if _, err := realNodeScript("restart-kubelet", "stranger"); err != nil {
		t.Fatal(err)
	}
	restored := false
	defer func() {
		if !restored {
			_, _ = realNodeScript("restart-kubelet", "cluster")
		}
	}()
	admin := adminCert(t)
	eventually(t, time.Minute, "the node fails with a TLS error, the others are served", func() error {
		if err := logHas(km.log, `node="`+node.name+`"`, "x509: certificate signed by unknown authority"); err != nil {
			return err
		}
		code, metrics := direct(t, "/metrics", "", &admin)
		if code != 200 {
			return fmt.Errorf("/metrics: %d", code)
		}
		before := sumMetric(metrics, "kmetrics_kubelet_scrape_errors_total", `node="`+node.name+`"`)
		if before == 0 {
			return fmt.Errorf("no scrape error counted for %s", node.name)
		}
		return othersFresh(node.name)
	})
	if _, err := realNodeScript("restart-kubelet", "cluster"); err != nil {
		t.Fatal(err)
	}
	restored = true
	back := time.Now()
	eventually(t, time.Minute, "the node served again", func() error {
		ts, err := nodeTimestamps()
		if err != nil {
			return err
		}
		if !ts[node.name].After(back) {
			return fmt.Errorf("%s's newest row is from %v, before the kubelet came back", node.name, ts[node.name])
		}
		return nil
	})
}

// nodeTimestamps is the timestamp of every node's row of metrics.k8s.io.
func nodeTimestamps() (map[string]time.Time, error) {
	out, err := kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes")
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []struct {
			Metadata  struct{ Name string }
			Timestamp time.Time
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, err
	}
	ts := map[string]time.Time{}
	for _, it := range list.Items {
		ts[it.Metadata.Name] = it.Timestamp
	}
	return ts, nil
}

// othersFresh checks that every kwok node's row is recent.
func othersFresh(except string) error {
	ts, err := nodeTimestamps()
	if err != nil {
		return err
	}
	for i := 1; i <= nodeCount; i++ {
		name := fmt.Sprintf("kwok-node-%d", i)
		if name == except {
			continue
		}
		if age := time.Since(ts[name]); age > 4*resolution {
			return fmt.Errorf("node %s: row %v old", name, age.Round(time.Second))
		}
	}
	return nil
}

// logHas checks that one line of a log holds every part.
func logHas(path string, parts ...string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(b), "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("no line of %s holds all of %q", filepath.Base(path), parts)
}
