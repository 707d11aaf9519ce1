//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

const dotdcNS = "e2e-dotdc"

// communityDashboards: every panel query and query variable of dotdc's four
// k8s-views dashboards (KMETRICS_FIXTURES/community-dashboards, kept outside
// the repository with their licence), Grafana's variables set as a user
// viewing the real node and the test's namespace sets them, answers with
// data from k — a kmetrics with cAdvisor and the kubelet's /metrics on —
// with node_exporter (built from the Go proxy) running as an annotated pod on
// the node. A panel may stay empty only if README's "Community dashboards"
// list names it and says why.
func communityDashboards(t *testing.T, node *realNode, k *secondKmetrics) {
	fixtures := os.Getenv("KMETRICS_FIXTURES")
	if fixtures == "" {
		t.Fatal("KMETRICS_FIXTURES not set (make e2e sets it to ../shared/fixtures)")
	}
	exporter := peerBinary(t, "NODE_EXPORTER", "hack/build-node-exporter.sh")
	nodeExporterImage(t, exporter)
	// The PersistentVolume is a small tmpfs: the mixin's volume alerts
	// need one that can be filled.
	pvDir := filepath.Join(node.dir, "dotdc-pv")
	if err := os.MkdirAll(pvDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,nr_inodes=%d", pvBytes, pvInodes), "tmpfs", pvDir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", pvDir).Run() })
	mustKubectl(t, "create", "namespace", dotdcNS)
	t.Cleanup(func() {
		_, _ = kubectl("delete", "namespace", dotdcNS, "--wait=false")
		_, _ = kubectl("delete", "pv", "e2e-dotdc", "priorityclass", "e2e-dotdc", "--wait=false")
	})
	kubectlApply(t, dotdcObjects(node, pvDir))

	// What a user opening the dashboards sees after a few minutes: the
	// exporter scraped, the web pod running, the pod over its memory limit
	// killed and restarted at least once.
	eventually(t, 3*time.Minute, "node_exporter scraped, web running, oom restarted", func() error {
		if got := instantQuery(k.query, `up{namespace="`+dotdcNS+`", pod="node-exporter"} == 1`); len(got) != 1 {
			return fmt.Errorf("node_exporter not scraped: %v", got)
		}
		if got := instantQuery(k.query, `kube_pod_status_phase{namespace="`+dotdcNS+`", phase="Running"} == 1`); len(got) < 2 {
			return fmt.Errorf("running pods: %v", got)
		}
		if got := instantQuery(k.query, `kube_pod_container_status_restarts_total{namespace="`+dotdcNS+`", pod="oom"} > 0`); len(got) != 1 {
			return fmt.Errorf("the oom pod has not restarted: %v", got)
		}
		return nil
	})

	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"cluster": "", "__rate_interval": "1m", "__interval": "30s", "resolution": "30s",
		"namespace": dotdcNS, "created_by": ".*", "pod": ".*", "node": node.name,
	}
	for _, d := range []string{"global", "namespaces", "nodes", "pods"} {
		path := filepath.Join(fixtures, "community-dashboards", "k8s-views-"+d+".json")
		t.Run(d, func(t *testing.T) {
			dash := readCommunityDashboard(t, path)
			// The variables first, in their order: a later one's query
			// names an earlier one; the first value each returns is the
			// one a user lands on.
			for _, v := range dash.variables {
				sel, label := v.selector, v.label
				if v.name == "instance" {
					// node_exporter's nodename is the host's name; on this bench the node
					// is named real-node (README: the instance variable).
					sel = strings.ReplaceAll(sel, "$node", regexp.QuoteMeta(host))
				}
				sel = grafanaSubstitute(sel, vars)
				values := seriesLabelValues(t, k, sel, label)
				switch {
				case v.name == "cluster":
					// One cluster, no cluster label: the variable is empty
					// and cluster="" selects every series, as dotdc intends.
					if len(values) != 0 {
						t.Errorf("cluster variable: %v, want none (no cluster label)", values)
					}
				case len(values) == 0:
					t.Errorf("variable %s: no values for label_values(%s, %s)", v.name, sel, label)
				case v.name == "job" || v.name == "instance":
					vars[v.name] = values[0]
				case !slices.Contains(values, vars[v.name]) && vars[v.name] != ".*":
					t.Errorf("variable %s: %v does not offer %q", v.name, values, vars[v.name])
				}
			}
			t.Logf("variables: %v", vars)
			empty := map[string][]string{}
			for _, p := range dash.panels {
				empty[p.title] = append(empty[p.title], grafanaSubstitute(p.expr, vars))
			}
			allowed := readmeEmptyPanels(t)[d]
			// Range queries over the last ten minutes, as Grafana asks:
			// an increase that happened in them shows.
			deadline := time.Now().Add(4 * time.Minute)
			for {
				for title, exprs := range empty {
					exprs = slices.DeleteFunc(exprs, func(e string) bool { return rangeHasData(t, k, e) })
					if len(exprs) == 0 {
						delete(empty, title)
					} else {
						empty[title] = exprs
					}
				}
				unexplained := 0
				for title := range empty {
					if _, ok := allowed[title]; !ok {
						unexplained++
					}
				}
				if unexplained == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Second)
			}
			titles := make([]string, 0, len(empty))
			for title := range empty {
				titles = append(titles, title)
			}
			sort.Strings(titles)
			for _, title := range titles {
				if why, ok := allowed[title]; ok {
					t.Logf("empty, as README says (%s): %s", why, title)
					continue
				}
				t.Errorf("panel %q has no data and README does not say why: %q", title, empty[title])
			}
			for title := range allowed {
				if _, ok := empty[title]; !ok && dash.hasPanel(title) {
					t.Logf("README lists %q as empty; here it has data", title)
				} else if !dash.hasPanel(title) {
					t.Errorf("README lists %q, which the dashboard does not have", title)
				}
			}
		})
	}
	t.Run("the kubernetes-mixin's alerts of the node's pods and volumes fire, then resolve", func(t *testing.T) {
		realNodeMixinAlerts(t, k, pvDir)
	})
}

// The tmpfs under the PersistentVolume: 8 MiB, 64 inodes.
const pvBytes, pvInodes = 8 << 20, 64

// realNodeMixinAlerts: on k, which runs the shipped kubernetes-mixin rules
// without their "for:", the alerts that need a real kubelet fire on the
// pods dotdcObjects made and resolve when the condition ends:
// CPUThrottlingHigh (cAdvisor), KubePodCrashLooping and KubeContainerWaiting
// (the container statuses), KubePersistentVolumeFillingUp and
// KubePersistentVolumeInodesFillingUp (the kubelet's volume statistics).
func realNodeMixinAlerts(t *testing.T, k *secondKmetrics, pvDir string) {
	in := func(labels ...string) map[string]string { return alertLabels(dotdcNS, labels...) }
	fill, files := filepath.Join(pvDir, "fill"), filepath.Join(pvDir, "files")
	// All but 64 KiB of the 8 MiB, and 63 of the 64 inodes (the root, a
	// directory, 61 files).
	if err := os.WriteFile(fill, make([]byte, pvBytes-64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(files, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range pvInodes - 3 {
		if err := os.WriteFile(filepath.Join(files, strconv.Itoa(i)), nil, 0o644); err != nil {
			t.Fatalf("file %d: %v", i, err)
		}
	}
	alerts := []struct {
		name  string
		match map[string]string
	}{
		// web burns 300m under a 100m limit.
		{"CPUThrottlingHigh", in("container", "web")},
		{"KubePodCrashLooping", in("pod", "oom")},
		// Its image is not on the node and may not be pulled: ErrImageNeverPull.
		{"KubeContainerWaiting", in("pod", "absent")},
		{"KubePersistentVolumeFillingUp", in("persistentvolumeclaim", "data", "severity", "critical")},
		{"KubePersistentVolumeInodesFillingUp", in("persistentvolumeclaim", "data", "severity", "critical")},
		// The warning rules: under 15% left and, by the trend of the
		// samples before and after the fill, empty within four days.
		{"KubePersistentVolumeFillingUp", in("persistentvolumeclaim", "data", "severity", "warning")},
		{"KubePersistentVolumeInodesFillingUp", in("persistentvolumeclaim", "data", "severity", "warning")},
	}
	for _, a := range alerts {
		eventually(t, 4*time.Minute, a.name+" firing", alertFiring(k, a.name, a.match))
	}
	// Every condition ends at once: CPUThrottlingHigh and KubePodCrashLooping
	// read the last 5 minutes, so they resolve 5 minutes after it ends.
	mustKubectl(t, "-n", dotdcNS, "set", "resources", "deployment", "web", "--limits=cpu=2")
	mustKubectl(t, "-n", dotdcNS, "delete", "pod", "oom", "absent", "--wait=false")
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(files); err != nil {
		t.Fatal(err)
	}
	eventually(t, 8*time.Minute, "every alert resolved", func() error {
		for _, a := range alerts {
			if err := alertResolved(k, a.name, a.match)(); err != nil {
				return err
			}
		}
		return nil
	})
}

// dotdcObjects is what the dashboards are shown: on the real node, a web
// pod in the pods' network (its own network series) with a local
// PersistentVolume mounted, CPU and memory requests and limits, a priority
// class and a CPU limit below what it burns (throttled); a pod over its
// memory limit (OOM killed, restarting, then in CrashLoopBackOff); a pod
// whose image is not on the node and may not be pulled; the
// node_exporter pod, annotated for the built-in kubernetes-pods job, in
// the node's network as node_exporter runs; one pod nobody can schedule
// and one held by a scheduling gate;
// and one of each object the resource counters count.
func dotdcObjects(node *realNode, pvDir string) string {
	// Indented for a Deployment's pod template; a Pod's spec takes it less.
	placement := `nodeSelector: {kmetrics.dev/real-node: "true"}
      tolerations: [{key: kmetrics.dev/real-node, operator: Exists}]
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: 1`
	return fmt.Sprintf(`
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: e2e-dotdc}
value: 1000
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: e2e-dotdc}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: e2e-dotdc
  claimRef: {namespace: %[1]s, name: data}
  local: {path: %[3]s}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [%[2]s]}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: %[1]s}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: e2e-dotdc
  volumeName: e2e-dotdc
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      %[4]s
      priorityClassName: e2e-dotdc
      volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
      containers:
      - name: web
        image: kmetrics.local/workload:e2e
        imagePullPolicy: Never
        command: [/workload, burn, --millicores, "300", --memory-mib, "16"]
        volumeMounts: [{name: data, mountPath: /data}]
        resources: {requests: {cpu: 50m, memory: 32Mi}, limits: {cpu: 100m, memory: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: oom, namespace: %[1]s}
spec:
  %[5]s
  containers:
  - name: oom
    image: kmetrics.local/workload:e2e
    imagePullPolicy: Never
    command: [/workload, burn, --millicores, "10", --memory-mib, "64"]
    resources: {requests: {cpu: 10m, memory: 24Mi}, limits: {cpu: 100m, memory: 24Mi}}
---
apiVersion: v1
kind: Pod
metadata:
  name: node-exporter
  namespace: %[1]s
  annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9100"}
spec:
  %[5]s
  hostNetwork: true
  containers:
  - name: node-exporter
    image: kmetrics.local/node-exporter:e2e
    imagePullPolicy: Never
    command: [/node_exporter, --web.listen-address=%[6]s:9100]
    ports: [{containerPort: 9100}]
    resources: {requests: {cpu: 10m, memory: 16Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: absent, namespace: %[1]s}
spec:
  %[5]s
  containers:
  - name: absent
    image: kmetrics.local/absent:e2e
    imagePullPolicy: Never
---
apiVersion: v1
kind: Pod
metadata: {name: unschedulable, namespace: %[1]s}
spec:
  nodeSelector: {kmetrics.dev/no-such-node: "true"}
  containers: [{name: main, image: registry.k8s.io/pause:3.10}]
---
# Held by a scheduling gate: kube_pod_status_reason{reason="SchedulingGated"}.
apiVersion: v1
kind: Pod
metadata: {name: gated, namespace: %[1]s}
spec:
  schedulingGates: [{name: kmetrics.dev/hold}]
  containers: [{name: main, image: registry.k8s.io/pause:3.10}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: %[1]s}
spec:
  replicas: 0
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: registry.k8s.io/pause:3.10}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: %[1]s}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {kmetrics.dev/no-such-node: "true"}
      containers: [{name: agent, image: registry.k8s.io/pause:3.10}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %[1]s}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: %[1]s}
spec: {defaultBackend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: %[1]s}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: %[1]s}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 1
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 90}}}]
`, dotdcNS, node.name, pvDir, placement, strings.ReplaceAll(placement, "\n      ", "\n  "), node.ip)
}

// nodeExporterImage puts the node_exporter binary into an image (hack/image)
// and imports it into the real node's containerd.
func nodeExporterImage(t *testing.T, bin string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "node-exporter")
	cmd := exec.Command("go", "run", "-trimpath", ".", "-file", "node_exporter", "-name", "kmetrics.local/node-exporter", "-version", "e2e",
		"-out", out, "linux/"+runtime.GOARCH+"="+bin)
	cmd.Dir = filepath.Join(root, "hack", "image")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the node_exporter image: %v\n%s", err, b)
	}
	if _, err := realNodeScript("import-image", out+".tar", "kmetrics.local/node-exporter:e2e"); err != nil {
		t.Fatal(err)
	}
}

type communityDashboard struct {
	variables []struct{ name, selector, label string }
	panels    []struct{ title, expr string }
}

func (d *communityDashboard) hasPanel(title string) bool {
	return slices.ContainsFunc(d.panels, func(p struct{ title, expr string }) bool { return p.title == title })
}

var labelValuesCall = regexp.MustCompile(`^label_values\((.*),\s*(\w+)\)$`)

// readCommunityDashboard reads a dashboard's query variables (Grafana's
// label_values(selector, label)) and its panels' queries, rows' panels
// included.
func readCommunityDashboard(t *testing.T, path string) *communityDashboard {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating grafanaTemplating `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := &communityDashboard{}
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, r := range ps {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			for _, target := range p.Targets {
				if target.Expr != "" {
					out.panels = append(out.panels, struct{ title, expr string }{p.Title, target.Expr})
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		m := labelValuesCall.FindStringSubmatch(q)
		if m == nil {
			t.Fatalf("%s: variable %s: %q is not label_values(selector, label)", path, v.Name, q)
		}
		out.variables = append(out.variables, struct{ name, selector, label string }{v.Name, m[1], m[2]})
	}
	if len(out.panels) == 0 {
		t.Fatalf("%s: no panel queries", path)
	}
	return out
}

var grafanaVariable = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// grafanaSubstitute replaces $name and ${name} as Grafana does (a name it
// does not know stays).
func grafanaSubstitute(expr string, vars map[string]string) string {
	return grafanaVariable.ReplaceAllStringFunc(expr, func(m string) string {
		name := strings.Trim(m, "${}")
		if v, ok := vars[name]; ok {
			return v
		}
		return m
	})
}

// seriesLabelValues is what Grafana's label_values(selector, label) lists:
// the label's values on the series /api/v1/series returns, sorted.
func seriesLabelValues(t *testing.T, k *secondKmetrics, selector, label string) []string {
	t.Helper()
	start := strconv.FormatInt(time.Now().Add(-10*time.Minute).Unix(), 10)
	body, err := k.query("/api/v1/series?" + url.Values{"match[]": {selector}, "start": {start}}.Encode())
	if err != nil {
		t.Fatalf("series %s: %v", selector, err)
	}
	var resp struct {
		Data []map[string]string `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("series %s: %v: %.300s", selector, err, body)
	}
	var values []string
	for _, s := range resp.Data {
		if v := s[label]; v != "" && !slices.Contains(values, v) {
			values = append(values, v)
		}
	}
	sort.Strings(values)
	return values
}

// rangeHasData: a query_range over the last ten minutes at a 30 s step (a
// panel's request) returns at least one sample. A query kmetrics refuses
// fails the test: a panel must never be an error.
func rangeHasData(t *testing.T, k *secondKmetrics, expr string) bool {
	t.Helper()
	now := time.Now()
	body, err := k.query("/api/v1/query_range?" + url.Values{"query": {expr}, "start": {strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)},
		"end": {strconv.FormatInt(now.Unix(), 10)}, "step": {"30"}}.Encode())
	if err != nil {
		t.Errorf("query_range %s: %v", expr, err)
		return true
	}
	var resp struct {
		Status string `json:"status"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || resp.Status != "success" {
		t.Errorf("query_range %s: %v: %.300s", expr, err, body)
		return true
	}
	return len(resp.Data.Result) > 0
}

// readmeEmptyPanels is README's list of the community dashboards' panels
// that stay empty on kmetrics' data, by dashboard: lines
// "- k8s-views-<dashboard> / <panel title>: why" under the heading
// "Community dashboards: panels without data".
func readmeEmptyPanels(t *testing.T) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^- k8s-views-(\w+) / (.+?): (.+)$`)
	out := map[string]map[string]string{}
	in := false
	s := bufio.NewScanner(f)
	for s.Scan() {
		text := s.Text()
		if strings.HasPrefix(text, "#") {
			in = strings.Contains(text, "Community dashboards: panels without data")
			continue
		}
		if m := line.FindStringSubmatch(text); in && m != nil {
			if out[m[1]] == nil {
				out[m[1]] = map[string]string{}
			}
			out[m[1]][strings.Trim(m[2], "`")] = m[3]
		}
	}
	if len(out) == 0 {
		t.Fatal(`README has no "Community dashboards: panels without data" list`)
	}
	return out
}
