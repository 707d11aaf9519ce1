//go:build e2e

package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The release TestInstalledInCluster installs, and the namespace of the
// workloads it drives (apart, so that uninstalling can be checked to leave
// nothing but the PVC in the release's namespace).
const (
	icRelease = "kmetrics-incluster"
	icNS      = "e2e-incluster"
	icAppNS   = "e2e-incluster-apps"
	icPort    = "4443"
	icRepo    = "ghcr.io/kmetrics/kmetrics"
)

// inCluster is kmetrics installed by its chart, running as a pod on the
// real node.
type inCluster struct {
	node   *realNode
	helm   string
	chart  string
	values string // the install's values file
	pvDir  string // the local PersistentVolume's directory on the node
	client *http.Client
	// reader queries the PromQL API with a kmetrics:query-reader token.
	reader func(string) ([]byte, error)
}

// TestInstalledInCluster installs kmetrics as its users do — helm install
// of the image make image built, imported into the real node's containerd
// under the chart's repository — and runs everything through that pod:
// the APIServices through Service → endpoints → pod (host network, port
// 4443 beside the kubelet's 10250), kubectl top, an HPA on real CPU and one
// on a custom metric, the PromQL API and /metrics at the node's address,
// the pod's own identity read from the node (uid 65534, read-only root,
// the PVC, the projected token); then day two (upgrade to a rebuilt image,
// a deleted pod, rollback, uninstall) and metrics-server's own e2e suite.
//
// Not parallel: the chart's pod takes over the APIServices, and the
// kmetrics the other tests share is stopped meanwhile, so that no answer
// can come from it.
func TestInstalledInCluster(t *testing.T) {
	image := os.Getenv("KMETRICS_IMAGE")
	if image == "" {
		t.Fatal("KMETRICS_IMAGE is not set: run through make e2e (make image builds it)")
	}
	helm := peerBinary(t, "HELM_BIN", "hack/build-helm.sh")
	node := startRealNode(t)
	ic := &inCluster{node: node, helm: helm, chart: filepath.Join(root, "deploy", "helm", "kmetrics"),
		pvDir: filepath.Join(node.dir, "incluster-pv")}
	if _, err := realNodeScript("import-image", image, icRepo+":e2e-1"); err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, "create", "namespace", icNS)
	mustKubectl(t, "create", "namespace", icAppNS)
	t.Cleanup(func() {
		// The readers' bindings (promQL) serve every later subtest.
		_, _ = kubectl("delete", "clusterrolebinding", "e2e-incluster-grafana", "e2e-incluster-prometheus", "--ignore-not-found")
		_, _ = kubectl("delete", "namespace", icAppNS, "--wait=false")
		_, _ = kubectl("delete", "namespace", icNS, "--wait=false")
	})
	ic.storage(t)

	// The shared kmetrics steps aside: its APIServices are removed (the
	// release registers its own) and it stops, so every answer below is the
	// pod's. Afterwards both come back.
	km.stop(os.Interrupt)
	mustKubectl(t, "delete", "apiservice", "v1.metrics.k8s.io", "v1beta1.metrics.k8s.io",
		"v1beta2.custom.metrics.k8s.io", "v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io")
	t.Cleanup(func() {
		if !ic.uninstalled() {
			_, _ = exec.Command(helm, "uninstall", icRelease, "-n", icNS, "--wait").CombinedOutput()
		}
		if err := cluster("register"); err != nil {
			t.Errorf("registering the shared kmetrics again: %v", err)
		}
		var err error
		if km, err = startKmetrics(); err != nil {
			t.Errorf("restarting the shared kmetrics: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			ic.diagnose(t)
		}
	})

	ic.install(t)
	t.Run("the pod runs as the chart says, seen from the node", ic.podAsDeclared)
	t.Run("the APIServices are served by the pod through its Service", ic.apiServicesThroughService)
	t.Run("kubectl top nodes and pods", ic.top)
	t.Run("the PromQL API and /metrics at the node's address", ic.promQL)
	t.Run("its PVC's usage from the kubelet's /metrics", ic.volumeStats)
	// These wait on the HPA's and the kubelet's clocks, each on its own
	// Deployment or pods: side by side.
	t.Run("side by side", func(t *testing.T) {
		t.Run("an HPA on CPU scales a real Deployment", func(t *testing.T) { t.Parallel(); realHPA(t, node, icAppNS) })
		t.Run("an HPA on a custom metric", func(t *testing.T) { t.Parallel(); webRequestsHPA(t, icAppNS) })
		t.Run("every container of init, sidecar and native sidecar pods measured", func(t *testing.T) {
			t.Parallel()
			ic.everyContainerMeasured(t)
		})
	})
	t.Run("metrics-server's e2e suite", ic.metricsServerSuite)
	t.Run("day two: upgrade, a deleted pod, rollback, uninstall", ic.dayTwo)
}

// storage: a StorageClass without a provisioner and a local
// PersistentVolume on the real node, the simplest storage an operator of a
// bare cluster gives a StatefulSet.
func (ic *inCluster) storage(t *testing.T) {
	if err := os.MkdirAll(ic.pvDir, 0o755); err != nil {
		t.Fatal(err)
	}
	kubectlApply(t, fmt.Sprintf(`
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: kmetrics-local}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: kmetrics-incluster}
spec:
  capacity: {storage: 2Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: kmetrics-local
  local: {path: %s}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [%s]}]
`, ic.pvDir, ic.node.name))
	t.Cleanup(func() {
		_, _ = kubectl("delete", "pv", "kmetrics-incluster", "--wait=false")
		_, _ = kubectl("delete", "storageclass", "kmetrics-local")
	})
}

// install: helm install with what an operator of a cluster whose control
// plane cannot reach pod IPs sets (metrics-server's chart's names).
func (ic *inCluster) install(t *testing.T) {
	// The ServiceMonitor (on here, as kube-prometheus users turn it on)
	// needs the operator's CRD.
	mustKubectl(t, "apply", "--server-side", "-f", filepath.Join(root, "deploy", "crds", "monitoring.coreos.com_servicemonitors.yaml"))
	ic.values = filepath.Join(t.TempDir(), "values.yaml")
	values := fmt.Sprintf(`
image: {repository: %s, tag: e2e-1, pullPolicy: IfNotPresent}
containerPort: %s
hostNetwork: true
dnsPolicy: ClusterFirstWithHostNet
metricResolution: 15s
storage: {size: 1Gi, retentionSize: 512MiB, storageClassName: kmetrics-local}
nodeSelector: {kmetrics.dev/real-node: "true"}
tolerations: [{key: kmetrics.dev/real-node, operator: Exists, effect: NoSchedule}]
resources:
  requests: {cpu: 100m, memory: 200Mi}
  limits: {memory: 1Gi}
serviceMonitor: {enabled: true}
args: [--custom-metrics.discovery-interval=5s, --kubelet-metrics]
# This control plane has no kube-proxy: the kubernetes Service's ClusterIP
# leads nowhere, so the in-cluster config is pointed at the API server
# itself (what clusters without kube-proxy tell their host-network pods).
env:
- {name: KUBERNETES_SERVICE_HOST, value: 127.0.0.1}
- {name: KUBERNETES_SERVICE_PORT, value: "%s"}
`, icRepo, icPort, apiserverPort)
	if err := os.WriteFile(ic.values, []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	runCmd(t, nil, ic.helm, "install", icRelease, ic.chart, "-n", icNS, "-f", ic.values, "--wait", "--timeout", "5m")
	mustKubectl(t, "wait", "--for=condition=Available", "--timeout=120s", "apiservice/v1.metrics.k8s.io", "apiservice/v1beta1.metrics.k8s.io",
		"apiservice/v1beta2.custom.metrics.k8s.io", "apiservice/v1beta1.custom.metrics.k8s.io", "apiservice/v1beta1.external.metrics.k8s.io")
	ic.client = ic.httpClient(t)
}

// podAsDeclared reads the kmetrics process from the node: uid and gid
// 65534, a read-only root, the TSDB on the local volume (files there
// written by it, group from fsGroup), the projected service-account token.
func (ic *inCluster) podAsDeclared(t *testing.T) {
	pid := kmetricsPodPID(t)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") && strings.Join(f[1:], " ") != "65534 65534 65534 65534" {
			t.Errorf("kmetrics runs with %s", l)
		}
	}
	mounts := mountInfo(t, pid)
	if root, ok := mounts["/"]; !ok || !hasOption(root.options, "ro") {
		t.Errorf("root mount %+v: not read-only", root)
	}
	data, ok := mounts["/var/lib/kmetrics"]
	if !ok || !strings.HasSuffix(data.root, "/incluster-pv") || hasOption(data.options, "ro") {
		t.Errorf("/var/lib/kmetrics is %+v, want the local volume %s, writable", data, ic.pvDir)
	}
	if _, ok := mounts["/var/run/secrets/kubernetes.io/serviceaccount"]; !ok {
		t.Error("no projected service-account token mounted")
	}
	eventually(t, time.Minute, "the TSDB written to the volume by uid 65534", func() error {
		fi, err := os.Stat(filepath.Join(ic.pvDir, "wal"))
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
			return fmt.Errorf("wal owned by %d:%d", st.Uid, st.Gid)
		}
		return nil
	})
}

// apiServicesThroughService: every APIService names the release's Service,
// whose endpoints (made by the EndpointSlice controller from the pod) are
// the pod at the node's address and port 4443.
func (ic *inCluster) apiServicesThroughService(t *testing.T) {
	for _, name := range []string{"v1.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io"} {
		svc := mustKubectl(t, "get", "apiservice", name, "-o", "jsonpath={.spec.service.namespace}/{.spec.service.name}:{.spec.service.port}")
		if svc != icNS+"/"+icRelease+":443" {
			t.Errorf("APIService %s points at %s", name, svc)
		}
		if ca := mustKubectl(t, "get", "apiservice", name, "-o", "jsonpath={.spec.caBundle}"); ca == "" {
			t.Errorf("APIService %s: no caBundle injected", name)
		}
	}
	eps := mustKubectl(t, "-n", icNS, "get", "endpointslices", "-l", "kubernetes.io/service-name="+icRelease,
		"-o", "jsonpath={range .items[*]}{.endpoints[*].addresses[0]}:{.ports[0].port}/{.endpoints[*].targetRef.name}{end}")
	if want := ic.node.ip + ":" + icPort + "/" + icRelease + "-0"; eps != want {
		t.Errorf("the Service's endpoints: %q, want %q", eps, want)
	}
}

// top: kubectl top through the pod, and the pod's own usage (the figure
// docs/benchmarks.md quotes for a small cluster).
func (ic *inCluster) top(t *testing.T) {
	// kubectl top prints a row for every Node object, <unknown> where the
	// API has no usage: every row must have figures.
	eventually(t, 90*time.Second, "kubectl top nodes measures the real node and the kwok nodes", func() error {
		out, err := kubectl("top", "nodes")
		if err != nil {
			return err
		}
		rows := parseTop(out)
		if len(rows) != nodeCount+1 || !strings.Contains(out, ic.node.name) {
			return fmt.Errorf("%d rows:\n%s", len(rows), out)
		}
		for _, r := range rows {
			if r["CPU(cores)"] == "<unknown>" || r["MEMORY(bytes)"] == "<unknown>" {
				return fmt.Errorf("%s has no usage:\n%s", r["NAME"], out)
			}
		}
		return nil
	})
	eventually(t, 90*time.Second, "kubectl top pods shows the kmetrics pod", func() error {
		out, err := kubectl("-n", icNS, "top", "pods")
		if err != nil {
			return err
		}
		rows := parseTop(out)
		if len(rows) != 1 || rows[0]["NAME"] != icRelease+"-0" {
			return fmt.Errorf("%s", out)
		}
		t.Logf("the kmetrics pod (4 nodes, its own self-measurement): CPU %s, memory %s", rows[0]["CPU(cores)"], rows[0]["MEMORY(bytes)"])
		return nil
	})
}

// promQL: the query API at the node's address with a query-reader token,
// kmetrics' certificate verified with the CA in its Secret; /metrics for a
// Prometheus allowed to read it (the ServiceMonitor's scrape), refused to
// a stranger.
func (ic *inCluster) promQL(t *testing.T) {
	reader := serviceAccountToken(t, icAppNS, "grafana")
	mustKubectl(t, "create", "clusterrolebinding", "e2e-incluster-grafana", "--clusterrole="+icRelease+":query-reader", "--serviceaccount="+icAppNS+":grafana")
	prom := serviceAccountToken(t, icAppNS, "prometheus")
	mustKubectl(t, "create", "clusterrolebinding", "e2e-incluster-prometheus", "--clusterrole=system:monitoring", "--serviceaccount="+icAppNS+":prometheus")
	stranger := serviceAccountToken(t, icAppNS, "stranger")
	ic.reader = ic.query(reader)
	eventually(t, 90*time.Second, "node CPU of every node through the query API", func() error {
		if got := instantQuery(ic.reader, "count(node_cpu_usage_seconds_total)"); len(got) != 1 || got[0].value != nodeCount+1 {
			return fmt.Errorf("count(node_cpu_usage_seconds_total): %v, want %d", got, nodeCount+1)
		}
		return nil
	})
	if body, code, err := ic.get("/metrics", prom); err != nil || code != http.StatusOK || !bytes.Contains(body, []byte("kmetrics_")) {
		t.Errorf("/metrics as a Prometheus allowed to read it: %d %v", code, err)
	}
	// kmetrics leaves its own monitor to the other Prometheus (it scrapes
	// itself; and the monitor's bearerTokenFile would be refused here).
	// Once it has applied the monitors' jobs, it has seen that one.
	eventually(t, time.Minute, "kmetrics applied the monitors' scrape jobs", func() error {
		if log := ic.podLog(); !strings.Contains(log, "Applied the monitors' scrape jobs") {
			return fmt.Errorf("not in its log yet:\n%s", lastLines(log, 5))
		}
		return nil
	})
	if log := ic.podLog(); strings.Contains(log, "Refusing a prometheus-operator object") {
		t.Errorf("kmetrics refused an object:\n%s", log)
	}
	if out := mustKubectl(t, "-n", icNS, "get", "events", "--field-selector", "reason=InvalidConfiguration", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("kmetrics refused an object of its own release: %s", out)
	}
	for _, path := range []string{"/metrics", "/prometheus/api/v1/query?query=up"} {
		if _, code, err := ic.get(path, stranger); err != nil || code != http.StatusForbidden {
			t.Errorf("%s as a stranger: %d %v, want 403", path, code, err)
		}
	}
}

// volumeStats: with --kubelet-metrics, kubelet_volume_stats_* of kmetrics'
// own PVC (a local volume on the real node), under the labels the
// kubernetes-mixin's KubePersistentVolumeFillingUp and the community
// dashboards select on, and kubelet_running_pods of the node.
func (ic *inCluster) volumeStats(t *testing.T) {
	sel := `{job="kubelet", metrics_path="/metrics", namespace="` + icNS + `", persistentvolumeclaim=~".+"}`
	eventually(t, 2*time.Minute, "kubelet_volume_stats of kmetrics' PVC", func() error {
		capacity := instantQuery(ic.reader, "kubelet_volume_stats_capacity_bytes"+sel)
		used := instantQuery(ic.reader, "kubelet_volume_stats_used_bytes"+sel)
		if len(capacity) != 1 || len(used) != 1 {
			return fmt.Errorf("capacity %v, used %v", capacity, used)
		}
		if capacity[0].value <= 0 || used[0].value <= 0 || used[0].value > capacity[0].value {
			return fmt.Errorf("capacity %v B, used %v B", capacity[0].value, used[0].value)
		}
		if n := capacity[0].labels["node"]; n != ic.node.name {
			return fmt.Errorf("node label %q, want %q", n, ic.node.name)
		}
		return nil
	})
	if got := instantQuery(ic.reader, `kubelet_running_pods{job="kubelet", metrics_path="/metrics", node="`+ic.node.name+`"}`); len(got) != 1 || got[0].value < 1 {
		t.Errorf("kubelet_running_pods of the node: %v", got)
	}
	// What the default allow list leaves out (client histograms) is not stored.
	if got := instantQuery(ic.reader, `count(rest_client_request_duration_seconds_bucket{job="kubelet", metrics_path="/metrics"})`); len(got) != 0 {
		t.Errorf("a family outside --kubelet-metrics-allow stored: %v", got)
	}
}

// query returns a getter of the query API (paths below /prometheus) as
// the holder of token, for instantQuery.
func (ic *inCluster) query(token string) func(string) ([]byte, error) {
	return func(path string) ([]byte, error) {
		body, code, err := ic.get("/prometheus"+path, token)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("%s: %d: %s", path, code, body)
		}
		return body, err
	}
}

// get is a request to the pod at the node's address with a bearer token.
func (ic *inCluster) get(path, token string) ([]byte, int, error) {
	req, err := http.NewRequest(http.MethodGet, "https://"+ic.node.ip+":"+icPort+path, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := ic.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return b.Bytes(), resp.StatusCode, err
}

// httpClient verifies kmetrics' certificate as the aggregator does: the CA
// kmetrics wrote into its Secret, the Service's DNS name.
func (ic *inCluster) httpClient(t *testing.T) *http.Client {
	var ca []byte
	eventually(t, time.Minute, "kmetrics wrote its CA into its Secret", func() error {
		out, err := kubectl("-n", icNS, "get", "secret", icRelease+"-serving", "-o", `jsonpath={.data.ca\.crt}`)
		if err == nil && out == "" {
			err = fmt.Errorf("no ca.crt yet")
		}
		if err == nil {
			ca, err = base64.StdEncoding.DecodeString(out)
		}
		return err
	})
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool(ca), ServerName: icRelease + "." + icNS + ".svc"}}}
}

// diagnose logs what explains a failure: the pod, its events and the end
// of its log (read on the node: this cluster has no kubectl logs).
func (ic *inCluster) diagnose(t *testing.T) {
	out, _ := kubectl("-n", icNS, "describe", "pod", icRelease+"-0")
	t.Logf("kubectl describe pod:\n%s", lastLines(out, 40))
	t.Logf("the kmetrics container's logs:\n%s", lastLines(ic.podLog(), 30))
}

// podLog is what every kmetrics container of the release wrote, as the
// node keeps it.
func (ic *inCluster) podLog() string {
	logs, _ := filepath.Glob(filepath.Join(ic.node.dir, "pod-logs", icNS+"_"+icRelease+"-0_*", "kmetrics", "*.log"))
	var b strings.Builder
	for _, l := range logs {
		content, _ := os.ReadFile(l)
		fmt.Fprintf(&b, "%s:\n%s", l, content)
	}
	return b.String()
}

// runCmd runs a command, failing the test with both outputs.
func runCmd(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}
