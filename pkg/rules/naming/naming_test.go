package naming

import (
	"os"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func mapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Service"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Node"}, meta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	return m
}

func compileOne(t *testing.T, yaml string) *Namer {
	t.Helper()
	c, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Compile(c, mapper())
	if err != nil {
		t.Fatal(err)
	}
	return r.Custom[0]
}

// The examples of prometheus-adapter's docs/config.md and its walkthrough.
func TestNamingAdapterExamples(t *testing.T) {
	tests := []struct {
		name, rule string
		series     map[string]string // series name → metric ("" rejected)
	}{
		{"rate of a counter, per second", `rules:
- seriesQuery: '{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}'
  seriesFilters: []
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^container_(.*)_seconds_total$"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[5m])) by (<<.GroupBy>>)'`,
			map[string]string{"container_cpu_usage_seconds_total": "cpu_usage", "container_memory_usage_bytes": ""}},
		{"as with a suffix", `rules:
- seriesQuery: 'http_requests_total{kubernetes_namespace!="",kubernetes_pod_name!=""}'
  resources: {overrides: {kubernetes_namespace: {resource: namespace}, kubernetes_pod_name: {resource: pod}}}
  name: {matches: "^(.*)_total", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'`,
			map[string]string{"http_requests_total": "http_requests_per_second"}},
		{"filters: is and isNot", `rules:
- seriesQuery: '{__name__=~"^container_.*_total",container!="POD",namespace!="",pod!=""}'
  seriesFilters: [{is: "^container_.*_total$"}, {isNot: "^container_.*_seconds_total$"}]
  resources: {template: "<<.Resource>>"}
  name: {matches: "^container_(.*)_total$"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[5m])) by (<<.GroupBy>>)'`,
			map[string]string{"container_network_receive_bytes_total": "network_receive_bytes", "container_cpu_usage_seconds_total": ""}},
		{"no name mapping keeps the name", `rules:
- seriesQuery: '{__name__="queue_depth"}'
  resources: {template: "<<.Resource>>"}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'`,
			map[string]string{"queue_depth": "queue_depth"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := compileOne(t, tt.rule)
			for series, want := range tt.series {
				got, ok := n.MetricName(series)
				if want == "" && ok || want != "" && got != want {
					t.Errorf("%s → %q (%v), want %q", series, got, ok, want)
				}
			}
		})
	}
}

func TestResourcesOverridesAndTemplate(t *testing.T) {
	n := compileOne(t, `rules:
- seriesQuery: '{__name__="x"}'
  resources: {overrides: {kubernetes_pod_name: {resource: pod}, ns: {resource: namespace}}}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'`)
	for label, want := range map[string]string{"kubernetes_pod_name": "pods", "ns": "namespaces", "pod": "", "instance": ""} {
		gr, ok := n.ResourceFor(label)
		if want == "" && ok || want != "" && gr.String() != want {
			t.Errorf("override %s → %v (%v), want %q", label, gr, ok, want)
		}
	}
	if l, err := n.LabelFor(schema.GroupResource{Resource: "pods"}); err != nil || l != "kubernetes_pod_name" {
		t.Errorf("label for pods: %q %v", l, err)
	}
	if _, err := n.LabelFor(schema.GroupResource{Resource: "nodes"}); err == nil {
		t.Error("a resource with no label mapping must be an error")
	}

	tpl := compileOne(t, `rules:
- seriesQuery: '{__name__="x"}'
  resources: {template: "kube_<<.Group>>_<<.Resource>>"}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'`)
	if gr, ok := tpl.ResourceFor("kube_apps_deployment"); !ok || gr != (schema.GroupResource{Group: "apps", Resource: "deployments"}) {
		t.Errorf("template: kube_apps_deployment → %v %v", gr, ok)
	}
	if l, err := tpl.LabelFor(schema.GroupResource{Group: "apps", Resource: "deployments"}); err != nil || l != "kube_apps_deployment" {
		t.Errorf("template label for deployments.apps: %q %v", l, err)
	}
	if _, ok := tpl.ResourceFor("kube_apps_nothing"); ok {
		t.Error("a label naming an unknown resource must not map")
	}
}

func TestMetricsQueryRender(t *testing.T) {
	n := compileOne(t, `rules:
- seriesQuery: '{__name__="http_requests_total"}'
  resources: {template: "<<.Resource>>"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>) / on(<<index .GroupBySlice 0>>) group_left count(x) by (<<.GroupBy>>)'`)
	q, err := n.Query("http_requests_total", []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, "namespace", "default"),
		labels.MustNewMatcher(labels.MatchRegexp, "code", "2..|3.."),
	}, []string{"pod"})
	if err != nil {
		t.Fatal(err)
	}
	want := `sum(rate(http_requests_total{namespace="default",code=~"2..|3.."}[2m])) by (pod) / on(pod) group_left count(x) by (pod)`
	if q != want {
		t.Errorf("got  %s\nwant %s", q, want)
	}
}

func TestInvalidConfigs(t *testing.T) {
	for name, tt := range map[string]struct{ yaml, errHas string }{
		"unknown field":        {"rules:\n- seriesQuery: '{a=\"b\"}'\n  metricQuery: x\n", `unknown field "metricQuery"`},
		"missing seriesQuery":  {"rules:\n- metricsQuery: 'x'\n", "rules[0]: seriesQuery is required"},
		"bad series selector":  {"rules:\n- seriesQuery: '{a=}'\n  metricsQuery: 'x'\n", "seriesQuery"},
		"bad name regexp":      {"rules:\n- seriesQuery: '{a=\"b\"}'\n  name: {matches: '(('}\n  metricsQuery: 'x'\n", "name.matches"},
		"two groups, no as":    {"rules:\n- seriesQuery: '{a=\"b\"}'\n  name: {matches: '(a)(b)'}\n  metricsQuery: 'x'\n", "name.as is required"},
		"template not PromQL":  {"rules:\n- seriesQuery: '{a=\"b\"}'\n  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}'\n", "renders invalid PromQL"},
		"template syntax":      {"externalRules:\n- seriesQuery: '{a=\"b\"}'\n  metricsQuery: 'sum(<<.Series>>'\n", "externalRules[0]: metricsQuery"},
		"override no resource": {"rules:\n- seriesQuery: '{a=\"b\"}'\n  resources: {overrides: {pod: {group: x}}}\n  metricsQuery: 'x'\n", "resource is required"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if err == nil {
				_, err = Compile(c, mapper())
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("error %v, want one containing %q", err, tt.errHas)
			}
		})
	}
}

// The defaults compile, and a prometheus-adapter config with
// resourceRules (served by kmetrics itself) is accepted unchanged.
func TestDefaultsAndAdapterConfig(t *testing.T) {
	if _, _, err := Load("", mapper()); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	// deploy/ ships the defaults as its ConfigMap: they must not drift.
	if shipped, err := os.ReadFile("../../../deploy/base/metrics/config.yaml"); err != nil || string(shipped) != string(DefaultConfig) {
		t.Errorf("deploy/base/metrics/config.yaml differs from default-config.yaml (%v)", err)
	}
	r, _, err := Load("testdata/adapter-config.yaml", mapper())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Custom) != 3 || len(r.External) != 1 {
		t.Fatalf("rules %d/%d, want 3/1", len(r.Custom), len(r.External))
	}
	if _, _, err := Load("testdata/missing.yaml", mapper()); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}
