package kubestate

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	corev1 "k8s.io/api/core/v1"
)

// parsed is a rendered exposition, read back with Prometheus' own parser.
type parsed struct {
	types  map[string]model.MetricType
	series map[string][]labels.Labels // by family
	values map[string]float64         // by series string
}

func render(t *testing.T, cfg Config, src Sources) parsed {
	t.Helper()
	var b bytes.Buffer
	if err := NewRenderer(cfg, src).Render(&b); err != nil {
		t.Fatal(err)
	}
	return parse(t, b.Bytes())
}

func parse(t testing.TB, body []byte) parsed {
	t.Helper()
	p := parsed{types: map[string]model.MetricType{}, series: map[string][]labels.Labels{}, values: map[string]float64{}}
	parser, err := textparse.New(body, "text/plain; version=0.0.4", labels.NewSymbolTable(), textparse.ParserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		e, err := parser.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the exposition does not parse: %v", err)
		}
		switch e {
		case textparse.EntryType:
			name, typ := parser.Type()
			if _, dup := p.types[string(name)]; dup {
				t.Fatalf("family %s written twice (its samples must be grouped)", name)
			}
			p.types[string(name)] = typ
		case textparse.EntrySeries:
			var l labels.Labels
			parser.Labels(&l)
			_, _, v := parser.Series()
			name := l.Get(model.MetricNameLabel)
			if _, ok := p.types[name]; !ok {
				t.Fatalf("%s before its TYPE", l)
			}
			if _, dup := p.values[l.String()]; dup {
				t.Fatalf("series %s written twice", l)
			}
			p.series[name] = append(p.series[name], l)
			p.values[l.String()] = v
		}
	}
	return p
}

var everyFamily = []*regexp.Regexp{regexp.MustCompile(".*")}

// The families and their labels are kube-state-metrics' own, as its docs
// list them: no family missing, none extra, no label outside the docs, and
// every family's fixed labels present on every series.
func TestFamiliesAsDocumented(t *testing.T) {
	cfg := Config{Allowlist: everyFamily, LabelsAllowlist: Allowlist{}, AnnotationsAllowlist: Allowlist{}}
	for _, r := range resourceNames {
		cfg.LabelsAllowlist[r] = []string{"*"}
		cfg.AnnotationsAllowlist[r] = []string{"*"}
	}
	got := render(t, cfg, everyResource())
	for name := range documented {
		if _, ok := got.types[name]; !ok {
			t.Errorf("documented family %s not written", name)
		}
	}
	for name, typ := range got.types {
		allowed, ok := documented[name]
		if !ok {
			t.Errorf("family %s is not one of kube-state-metrics' documented families", name)
			continue
		}
		want := model.MetricTypeGauge
		if documentedCounters[name] {
			want = model.MetricTypeCounter
		}
		if typ != want {
			t.Errorf("%s: type %s, documented %s", name, typ, want)
		}
		if len(got.series[name]) == 0 {
			t.Errorf("%s: the fixture gives it no series; the test cannot check its labels", name)
		}
		for _, l := range got.series[name] {
			l.Range(func(lb labels.Label) {
				if lb.Name == model.MetricNameLabel {
					return
				}
				if !documentedLabel(allowed, lb.Name) {
					t.Errorf("%s: label %q not in kube-state-metrics' docs %v", l, lb.Name, allowed)
				}
			})
		}
	}
}

func documentedLabel(allowed []string, name string) bool {
	for _, a := range allowed {
		if a == name || (strings.HasSuffix(a, "*") && strings.HasPrefix(name, strings.TrimSuffix(a, "*"))) {
			return true
		}
	}
	return false
}

// Semantics the dashboards and alerts depend on, value by value.
func TestFamilyValues(t *testing.T) {
	got := render(t, Config{Allowlist: everyFamily, LabelsAllowlist: Allowlist{"pods": {"app.kubernetes.io/name"}}}, everyResource())
	tests := []struct {
		name   string
		series string
		want   float64
	}{
		{"cpu request in cores", `kube_pod_container_resource_requests{container="main", namespace="shop", node="n1", pod="web-1", resource="cpu", uid="uid-web-1", unit="core"}`, 0.25},
		{"memory request in bytes", `kube_pod_container_resource_requests{container="main", namespace="shop", node="n1", pod="web-1", resource="memory", uid="uid-web-1", unit="byte"}`, 64 << 20},
		{"extended resource", `kube_pod_container_resource_limits{container="main", namespace="shop", node="n1", pod="web-1", resource="nvidia_com_gpu", uid="uid-web-1", unit="integer"}`, 1},
		{"restarts", `kube_pod_container_status_restarts_total{container="side", namespace="shop", pod="web-1", uid="uid-web-1"}`, 7},
		{"crash loop", `kube_pod_container_status_waiting_reason{container="side", namespace="shop", pod="web-1", reason="CrashLoopBackOff", uid="uid-web-1"}`, 1},
		{"last terminated OOM", `kube_pod_container_status_last_terminated_reason{container="main", namespace="shop", pod="web-1", reason="OOMKilled", uid="uid-web-1"}`, 1},
		{"exit code", `kube_pod_container_status_last_terminated_exitcode{container="main", namespace="shop", pod="web-1", uid="uid-web-1"}`, 137},
		{"phase", `kube_pod_status_phase{namespace="shop", phase="Running", pod="web-1", uid="uid-web-1"}`, 1},
		{"other phase", `kube_pod_status_phase{namespace="shop", phase="Pending", pod="web-1", uid="uid-web-1"}`, 0},
		{"ready false series", `kube_pod_status_ready{condition="false", namespace="shop", pod="web-1", uid="uid-web-1"}`, 0},
		{"evicted", `kube_pod_status_reason{namespace="shop", pod="evicted-1", reason="Evicted", uid="uid-evicted-1"}`, 1},
		{"qos", `kube_pod_status_qos_class{namespace="shop", pod="web-1", qos_class="Burstable", uid="uid-web-1"}`, 1},
		{"pod labels, allowlisted key only", `kube_pod_labels{label_app_kubernetes_io_name="web-1", namespace="shop", pod="web-1", uid="uid-web-1"}`, 1},
		{"pod owner", `kube_pod_owner{namespace="shop", owner_is_controller="true", owner_kind="ReplicaSet", owner_name="web-7d", pod="web-1", uid="uid-web-1"}`, 1},
		{"no owner", `kube_pod_owner{namespace="shop", owner_is_controller="<none>", owner_kind="<none>", owner_name="<none>", pod="evicted-1", uid="uid-evicted-1"}`, 1},
		{"node ready", `kube_node_status_condition{condition="Ready", node="n1", status="true"}`, 1},
		{"node taint", `kube_node_spec_taint{effect="NoSchedule", key="dedicated", node="n1", value="gpu"}`, 1},
		{"node role", `kube_node_role{node="n1", role="control-plane"}`, 1},
		{"node allocatable cpu", `kube_node_status_allocatable{node="n1", resource="cpu", unit="core"}`, 3.9},
		{"node unschedulable", `kube_node_spec_unschedulable{node="n1"}`, 1},
		{"deployment unknown reason", `kube_deployment_status_condition{condition="Progressing", deployment="web", namespace="shop", reason="unknown", status="true"}`, 1},
		{"deployment available", `kube_deployment_status_replicas_available{deployment="web", namespace="shop"}`, 2},
		{"statefulset update revision", `kube_statefulset_status_update_revision{namespace="shop", revision="db-2", statefulset="db"}`, 1},
		{"daemonset desired", `kube_daemonset_status_desired_number_scheduled{daemonset="agent", namespace="kube-system"}`, 3},
		{"replicaset owner", `kube_replicaset_owner{namespace="shop", owner_is_controller="true", owner_kind="Deployment", owner_name="web", replicaset="web-7d"}`, 1},
		{"job failed by reason", `kube_job_status_failed{job_name="report-1", namespace="shop", reason="BackoffLimitExceeded"}`, 1},
		{"job failed no failures", `kube_job_status_failed{job_name="report-0", namespace="shop"}`, 0},
		{"job failed condition", `kube_job_failed{condition="true", job_name="report-1", namespace="shop"}`, 1},
		{"job complete", `kube_job_complete{condition="true", job_name="report-0", namespace="shop"}`, 1},
		{"cronjob active", `kube_cronjob_status_active{cronjob="report", namespace="shop"}`, 1},
		{"hpa max", `kube_horizontalpodautoscaler_spec_max_replicas{horizontalpodautoscaler="web", namespace="shop"}`, 5},
		{"hpa min default", `kube_horizontalpodautoscaler_spec_min_replicas{horizontalpodautoscaler="web", namespace="shop"}`, 1},
		{"pvc access mode", `kube_persistentvolumeclaim_access_mode{access_mode="ReadWriteOnce", namespace="shop", persistentvolumeclaim="data-web"}`, 1},
		{"pvc bytes", `kube_persistentvolumeclaim_resource_requests_storage_bytes{namespace="shop", persistentvolumeclaim="data-web"}`, 1 << 30},
		{"pv bound", `kube_persistentvolume_status_phase{persistentvolume="pv-1", phase="Bound"}`, 1},
		{"quota used", `kube_resourcequota{namespace="shop", resource="requests.cpu", resourcequota="compute", type="used"}`, 1.5},
		{"pdb", `kube_poddisruptionbudget_status_expected_pods{namespace="shop", poddisruptionbudget="web"}`, 3},
		{"ingress class", `kube_ingress_info{ingress="web", ingressclass="nginx", namespace="shop"}`, 1},
		{"configmap", `kube_configmap_info{configmap="settings", namespace="shop"}`, 1},
		{"created", `kube_namespace_created{namespace="shop"}`, 1_700_000_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := parseSeries(tc.series)
			if err != nil {
				t.Fatal(err)
			}
			v, ok := got.values[want.String()]
			if !ok {
				t.Fatalf("no series %s; %s has %v", want, want.Get("__name__"), got.series[want.Get("__name__")])
			}
			if v != tc.want {
				t.Errorf("%s = %v, want %v", want, v, tc.want)
			}
		})
	}
}

func parseSeries(s string) (labels.Labels, error) {
	p := parse(&testing.T{}, []byte("# TYPE "+s[:strings.IndexByte(s, '{')]+" gauge\n"+s+" 1\n"))
	for _, ls := range p.series {
		return ls[0], nil
	}
	return labels.EmptyLabels(), errors.New("no series")
}

// Rendering is deterministic (the scrape path caches series by their text)
// and a denied family or a disabled resource writes nothing.
func TestDenylistAndResources(t *testing.T) {
	deny, err := ParseFamilyList("kube_pod_container_status_.*, kube_node_info")
	if err != nil {
		t.Fatal(err)
	}
	src := everyResource()
	src.Deployments = nil // a resource not enabled is not in Sources
	got := render(t, Config{Allowlist: everyFamily, Denylist: deny}, src)
	for name := range got.types {
		if strings.HasPrefix(name, "kube_pod_container_status_") || name == "kube_node_info" || strings.HasPrefix(name, "kube_deployment_") {
			t.Errorf("%s written", name)
		}
	}
	if _, ok := got.types["kube_pod_container_info"]; !ok {
		t.Error("the denylist matched more than the families it names (patterns are anchored)")
	}
	var a, b bytes.Buffer
	r := NewRenderer(Config{}, everyResource())
	_ = r.Render(&a)
	_ = r.Render(&b)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two renders of the same caches differ")
	}
	if _, err := ParseFamilyList("kube_(pod"); err == nil {
		t.Error("an invalid pattern was accepted")
	}
}

func TestEnabledResources(t *testing.T) {
	on, err := Config{}.Enabled()
	if err != nil {
		t.Fatal(err)
	}
	if on["secrets"] || !on["pods"] || !on["configmaps"] || on["cronjobs"] {
		t.Errorf("defaults: %v; want every resource with a default family, but secrets", on)
	}
	if on, _ := (Config{Allowlist: everyFamily}).Enabled(); !on["cronjobs"] {
		t.Error("cronjobs not watched when all families are allowed")
	}
	if _, err := (Config{Resources: []string{"pods", "podz"}}).Enabled(); err == nil || !strings.Contains(err.Error(), "podz") {
		t.Errorf("an unknown resource: %v", err)
	}
	on, _ = Config{Resources: []string{"secrets"}}.Enabled()
	if !on["secrets"] || on["pods"] {
		t.Errorf("named resources: %v", on)
	}
	if !slices.Contains(Resources(), "secrets") {
		t.Error("Resources() must list secrets (enabled by name)")
	}
}

// The default families are real families, and only they are written.
func TestDefaultFamilies(t *testing.T) {
	known := map[string]bool{}
	for _, names := range familiesOf {
		for _, n := range names {
			known[n] = true
		}
	}
	for _, n := range defaultFamilies {
		if !known[n] {
			t.Errorf("default family %s is not a family kmetrics writes", n)
		}
	}
	got := render(t, Config{}, everyResource())
	for name := range got.types {
		if !slices.Contains(defaultFamilies, name) {
			t.Errorf("%s written by default", name)
		}
	}
	for _, name := range defaultFamilies {
		if _, ok := got.types[name]; !ok {
			t.Errorf("default family %s not written", name)
		}
	}
	// An allowlist replaces the defaults; the denylist applies after it.
	allow, _ := ParseFamilyList("kube_cronjob_.*,kube_pod_info")
	deny, _ := ParseFamilyList("kube_cronjob_created")
	got = render(t, Config{Allowlist: allow, Denylist: deny}, everyResource())
	if _, ok := got.types["kube_cronjob_info"]; !ok || len(got.types) != 8 {
		t.Errorf("families %v, want kube_pod_info and seven kube_cronjob_*", got.types)
	}
}

// A tenant controls its objects' annotations and label values: a value
// written to look like the end of a series and the start of another stays
// one label value of one series, byte for byte.
func TestHostileValuesStayValues(t *testing.T) {
	forged := "x\"} 1\nkube_node_info{node=\"forged\"} 1\n# TYPE evil gauge\\"
	src := everyResource()
	pods, _ := src.Pods.List(nil)
	p := pods[0].DeepCopy()
	p.Annotations = map[string]string{"note": forged, "a\"b\nc": "key"}
	src.Pods = list[*corev1.Pod]{p}
	src.Nodes = nil
	got := render(t, Config{AnnotationsAllowlist: Allowlist{"pods": {"*"}}, Allowlist: everyFamily}, src)
	if _, ok := got.types["evil"]; ok {
		t.Fatal("an annotation declared a family")
	}
	if n := len(got.series["kube_node_info"]); n != 0 {
		t.Fatalf("an annotation wrote %d kube_node_info series", n)
	}
	series := got.series["kube_pod_annotations"]
	if len(series) != 1 {
		t.Fatalf("%d kube_pod_annotations series, want 1: %v", len(series), series)
	}
	if v := series[0].Get("annotation_note"); v != forged {
		t.Errorf("annotation_note = %q, want %q", v, forged)
	}
	if v := series[0].Get("annotation_a_b_c"); v != "key" {
		t.Errorf("a key with quotes and a newline: %v", series[0])
	}
}
