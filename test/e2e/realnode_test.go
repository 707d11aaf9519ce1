//go:build e2e

package e2e

import (
	"crypto/tls"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
func realNodeScript(args ...string) (string, error) { return hackScript("real-node.sh", args...) }

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
// containers in real cgroups: what kubectl top sees is what the
// cgroups account; the node row is the kubelet's own; cAdvisor series carry
// the labels the kubernetes-mixin selects on; a kmetrics without
// nodes/metrics is refused by the kubelet, and a node serving a certificate
// from the wrong CA fails alone; the kubernetes-mixin's kubelet alerts fire
// and resolve as the node fails (its certificates, its runtime, its room,
// its memory, the kubelet itself).
//
// The node joins the shared cluster for this test only (tainted, so only
// this test's pods land on it) and is removed after. Parallel: it runs
// with the other parallel tests, after the serial ones (the in-cluster
// install, the node's other user, is one), and those count only the kwok
// nodes, so this node joining, failing and leaving is not theirs to see.
// Its CPU figures are the cgroups' own, measured beside whatever else runs.
func TestRealKubelet(t *testing.T) {
	t.Parallel()
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
		// A window in which the burn got under 200m (the machine busy with
		// every other test starting) tells nothing: the next one is read.
		var cgroupMillicores, top float64
		for window := 1; ; window++ {
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
			cgroupMillicores = (u1 - u0) / t1.Sub(t0).Seconds() * 1000
			top = median(tops)
			t.Logf("window %d: cgroup %.0fm over %v; kubectl top median %.0fm of %v", window, cgroupMillicores, t1.Sub(t0).Round(time.Second), top, tops)
			if cgroupMillicores >= 200 {
				break
			}
			if window == 3 {
				t.Fatalf("the container used %.0fm, not the 300m it burns, in 3 windows: the test cannot tell anything", cgroupMillicores)
			}
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
	// kmetrics as a user turns on cAdvisor and the kubelet's own metrics,
	// with the kubernetes-mixin's rules (without their "for:").
	cadvisor := startSecondKmetrics(t, "cadvisor", "--kubelet-cadvisor", "--kubelet-metrics",
		"--rules.file", immediateMixinRules(t), "--rules.evaluation-interval=5s")
	// The kubelet's own failures whose alerts read five minutes of history:
	// caused first, checked resolved at the end, the other parts between.
	var renewed, thawed time.Time
	t.Run("certificates near their end, renewal refused then approved: the mixin's certificate alerts", func(t *testing.T) {
		renewed = expiringCertificates(t, node, cadvisor)
	})
	t.Run("a runtime that hangs: KubeletPlegDurationHigh", func(t *testing.T) { thawed = hangingRuntime(t, node, cadvisor) })
	t.Run("cAdvisor series carry the kubernetes-mixin labels", func(t *testing.T) { cadvisorLabels(t, cadvisor) })
	t.Run("without nodes/metrics the kubelet refuses, per node", func(t *testing.T) { refusedWithoutNodeMetrics(t, node) })
	t.Run("a node serving from the wrong CA fails alone", func(t *testing.T) { wrongCA(t, node) })
	// The two longest parts wait on the clock (alerts' 5-minute windows, the
	// VPA's 3 minutes of burn), each in its own namespace with its own
	// kmetrics: side by side, the test is 4 to 5 minutes shorter.
	t.Run("side by side", func(t *testing.T) {
		t.Run("dotdc's community dashboards have data; the mixin's node alerts fire", func(t *testing.T) {
			t.Parallel()
			communityDashboards(t, node, cadvisor)
		})
		t.Run("the VPA's recommender on live usage and on kmetrics' history", func(t *testing.T) {
			t.Parallel()
			vpaOnRealNode(t, node)
		})
	})
	t.Run("a full node, memory pressure, a stopped kubelet: the mixin's node alerts fire and resolve", func(t *testing.T) {
		brokenNode(t, node, cadvisor)
	})
	t.Run("the certificate renewal and PLEG alerts resolved, five minutes on", func(t *testing.T) {
		if renewed.IsZero() || thawed.IsZero() {
			t.Skip("their parts did not run to the end")
		}
		onNode := map[string]string{"node": node.name}
		resolvedAfterWindow(t, cadvisor, onNode, renewed, "KubeletClientCertificateRenewalErrors", "KubeletServerCertificateRenewalErrors")
		resolvedAfterWindow(t, cadvisor, onNode, thawed, "KubeletPlegDurationHigh")
	})
}

// realNodePlacement is the part of a pod spec (at indent) that puts a test
// pod on the real node: selected, tolerated, in the node's network (the
// node's pods reach nothing else), no token, quick to delete.
func realNodePlacement(indent string) string {
	lines := []string{
		`nodeSelector: {kmetrics.dev/real-node: "true"}`,
		`tolerations: [{key: kmetrics.dev/real-node, operator: Exists}]`,
		`hostNetwork: true`,
		`automountServiceAccountToken: false`,
		`enableServiceLinks: false`,
		`terminationGracePeriodSeconds: 1`,
	}
	return indent + strings.Join(lines, "\n"+indent)
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

// loadBurner applies a Deployment name (container "burner") of burners on
// the real node in ns, all burning the millicores written in one hostPath
// file, and returns the setter of that load (set to initial first).
func loadBurner(t *testing.T, node *realNode, ns, name string, initial int) func(millicores int) {
	t.Helper()
	load := filepath.Join(node.dir, name+"-load")
	if err := os.MkdirAll(load, 0o755); err != nil {
		t.Fatal(err)
	}
	setLoad := func(m int) {
		if err := os.WriteFile(filepath.Join(load, "millicores"), []byte(strconv.Itoa(m)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setLoad(initial)
	kubectlApply(t, fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[4]s, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[4]s}}
  template:
    metadata: {labels: {app: %[4]s}}
    spec:
%[3]s
      volumes: [{name: load, hostPath: {path: %[2]s, type: Directory}}]
      containers:
      - name: burner
        image: kmetrics.local/workload:e2e
        imagePullPolicy: Never
        command: [/workload, burn, --millicores-file, /load/millicores]
        volumeMounts: [{name: load, mountPath: /load, readOnly: true}]
        resources: {requests: {cpu: 100m, memory: 16Mi}}
`, ns, load, realNodePlacement("      "), name))
	return setLoad
}

// realHPA: a Deployment of burners on the real node in namespace realNS, all
// reading their load from one hostPath file; the HPA sees their real CPU
// through kmetrics and scales 1 → 3 and back to 1 (TestInstalledInCluster
// runs it against the kmetrics pod).
func realHPA(t *testing.T, node *realNode, realNS string) {
	setLoad := loadBurner(t, node, realNS, "burner", 0)
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

// cadvisorLabels evaluates, on k (a kmetrics with --kubelet-cadvisor and
// --kubelet-metrics), what the kubernetes-mixin's rules select: cAdvisor
// series of job="kubelet", metrics_path="/metrics/cadvisor" with image,
// container, pod, namespace, joined with kube_pod_info for the node.
func cadvisorLabels(t *testing.T, k *secondKmetrics) {
	sel := `job="kubelet", metrics_path="/metrics/cadvisor", namespace="` + realNS + `", pod="burn", container="burn", image!=""`
	byNode := ` * on (namespace, pod) group_left (node) topk by (namespace, pod) (1, max by (namespace, pod, node) (kube_pod_info{node!=""}))`
	var cpu, mem []promSample
	// irate reads the last two of cAdvisor's samples: one interval on a
	// busy machine (the runtime was frozen just before) may miss the burn's
	// 0.3, the next ones do not.
	eventually(t, 2*time.Minute, "the mixin's container CPU and memory expressions answer", func() error {
		cpu = instantQuery(k.query, `sum by (namespace, pod, container) (irate(container_cpu_usage_seconds_total{`+sel+`}[1m]))`+byNode)
		mem = instantQuery(k.query, `container_memory_working_set_bytes{`+sel+`}`+byNode)
		if len(cpu) != 1 || len(mem) != 1 {
			return fmt.Errorf("cpu %v, memory %v", cpu, mem)
		}
		if c := cpu[0].value; c < 0.2 || c > 0.4 {
			return fmt.Errorf("cAdvisor CPU %.3f cores, the container burns 0.3", c)
		}
		return nil
	})
	if cpu[0].labels["node"] != "real-node" || mem[0].labels["node"] != "real-node" {
		t.Fatalf("joined node: cpu %v, memory %v", cpu[0].labels, mem[0].labels)
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
	// Lens' and Headlamp's queries filter on neither job nor metrics_path:
	// the container is counted once (cAdvisor's copy is the one stored).
	unfiltered := `{namespace="` + realNS + `", pod="burn", container="burn"}`
	for _, name := range []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_start_time_seconds"} {
		if got := instantQuery(k.query, name+unfiltered); len(got) != 1 || got[0].labels["metrics_path"] != "/metrics/cadvisor" {
			t.Errorf("%s without a job or path filter: %v, want cAdvisor's series alone", name, got)
		}
	}
	if got := instantQuery(k.query, `sum(irate(container_cpu_usage_seconds_total`+unfiltered+`[1m]))`); len(got) != 1 || got[0].value > 0.4 {
		t.Errorf("Lens' CPU query: %v cores, the container burns 0.3", got)
	}
	// The kubelet's own metrics (--kubelet-metrics), under kube-prometheus'
	// kubelet job labels.
	if got := instantQuery(k.query, `kubelet_running_pods{job="kubelet", metrics_path="/metrics", node="real-node"}`); len(got) != 1 || got[0].value < 1 {
		t.Errorf("kubelet_running_pods of the real node: %v", got)
	}
	// The node's own (root cgroup) series, the mixin's cluster totals.
	if got := instantQuery(k.query, `container_cpu_usage_seconds_total{job="kubelet", metrics_path="/metrics/cadvisor", id="/", node="real-node"}`); len(got) != 1 {
		t.Errorf("root cgroup CPU of the node: %v", got)
	}
}
