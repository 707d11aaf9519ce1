package promoperator

import (
	"context"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/scrape"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// fakeObjects serves Secrets and ConfigMaps from maps: "ns/name" → data.
type fakeObjects struct{ secrets, configMaps map[string]map[string]string }

func (f fakeObjects) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	d, ok := f.secrets[ns+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
	}
	s := &corev1.Secret{Data: map[string][]byte{}}
	for k, v := range d {
		s.Data[k] = []byte(v)
	}
	return s, nil
}

func (f fakeObjects) ConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	d, ok := f.configMaps[ns+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
	}
	return &corev1.ConfigMap{Data: d}, nil
}

var testDefaults = Defaults{Interval: 15 * time.Second, Timeout: 10 * time.Second, NativeHistograms: true}

func testResolver(tokenNS ...string) resolver {
	r := resolver{ctx: context.Background(), tokenNamespaces: map[string]bool{}, objects: fakeObjects{
		secrets: map[string]map[string]string{
			"shop/scrape-token": {"token": "s3cret"},
			"shop/scrape-tls":   {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
			"shop/basic":        {"user": "u", "pass": "p"},
		},
	}}
	for _, ns := range tokenNS {
		r.tokenNamespaces[ns] = true
	}
	return r
}

// endpointTarget is what Prometheus' endpoints role discovers for one pod
// port behind a Service.
func endpointTarget(ns, svc, pod, portName, container string, svcLabels, podLabels map[string]string) (model.LabelSet, model.LabelSet) {
	group := model.LabelSet{
		"__meta_kubernetes_namespace":      model.LabelValue(ns),
		"__meta_kubernetes_endpoints_name": model.LabelValue(svc),
		"__meta_kubernetes_service_name":   model.LabelValue(svc),
	}
	for k, v := range svcLabels {
		group[model.LabelName("__meta_kubernetes_service_label_"+sanitize(k))] = model.LabelValue(v)
		group[model.LabelName("__meta_kubernetes_service_labelpresent_"+sanitize(k))] = "true"
	}
	target := model.LabelSet{
		"__address__":                                    "10.0.0.7:8443",
		"__meta_kubernetes_endpoint_port_name":           model.LabelValue(portName),
		"__meta_kubernetes_endpoint_address_target_kind": "Pod",
		"__meta_kubernetes_endpoint_address_target_name": model.LabelValue(pod),
		"__meta_kubernetes_pod_name":                     model.LabelValue(pod),
		"__meta_kubernetes_pod_container_name":           model.LabelValue(container),
		"__meta_kubernetes_pod_container_port_name":      model.LabelValue(portName),
		"__meta_kubernetes_pod_container_port_number":    "8443",
		"__meta_kubernetes_pod_phase":                    "Running",
	}
	for k, v := range podLabels {
		target[model.LabelName("__meta_kubernetes_pod_label_"+sanitize(k))] = model.LabelValue(v)
		target[model.LabelName("__meta_kubernetes_pod_labelpresent_"+sanitize(k))] = "true"
	}
	return target, group
}

// targetLabels runs a job's relabeling on one discovered target, as the
// scrape manager does; "" when the target is dropped.
func targetLabels(t *testing.T, sc *config.ScrapeConfig, target, group model.LabelSet) string {
	t.Helper()
	ls, err := scrape.PopulateLabels(labels.NewBuilder(labels.EmptyLabels()), sc, target, group)
	if err != nil {
		t.Fatal(err)
	}
	if ls.IsEmpty() {
		return ""
	}
	// The labels stored series get, and the address scraped.
	b := labels.NewBuilder(ls)
	ls.Range(func(l labels.Label) {
		if strings.HasPrefix(l.Name, "__") && l.Name != model.AddressLabel {
			b.Del(l.Name)
		}
	})
	return b.Labels().String()
}

func kubePrometheusServiceMonitor() *monitoringv1.ServiceMonitor {
	return &monitoringv1.ServiceMonitor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"},
		Spec: monitoringv1.ServiceMonitorSpec{
			JobLabel:        "app.kubernetes.io/name",
			TargetLabels:    []string{"team"},
			PodTargetLabels: []string{"version"},
			Selector:        metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "cart"}},
			Endpoints: []monitoringv1.Endpoint{{
				Port:     "https-metrics",
				Interval: "30s",
				Scheme:   ptr.To(monitoringv1.Scheme("HTTPS")),
				HTTPConfigWithProxyAndTLSFiles: monitoringv1.HTTPConfigWithProxyAndTLSFiles{HTTPConfigWithTLSFiles: monitoringv1.HTTPConfigWithTLSFiles{
					HTTPConfigWithoutTLS: monitoringv1.HTTPConfigWithoutTLS{
						BearerTokenSecret: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "scrape-token"}, Key: "token"},
					},
					TLSConfig: &monitoringv1.TLSConfig{SafeTLSConfig: monitoringv1.SafeTLSConfig{
						CA:         monitoringv1.SecretOrConfigMap{Secret: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "scrape-tls"}, Key: "ca.crt"}},
						ServerName: ptr.To("cart.shop.svc"),
					}},
				}},
				RelabelConfigs: []monitoringv1.RelabelConfig{{
					SourceLabels: []monitoringv1.LabelName{"__meta_kubernetes_pod_node_name"}, TargetLabel: "node_name", Action: "Replace",
				}},
				MetricRelabelConfigs: []monitoringv1.RelabelConfig{{
					SourceLabels: []monitoringv1.LabelName{"__name__"}, Regex: "go_gc_.*", Action: "Drop",
				}},
			}},
		},
	}
}

// A kube-prometheus-style ServiceMonitor gives the labels Prometheus under
// the operator gives: job from jobLabel, instance, namespace, service,
// pod, container, endpoint, the target labels; its Secrets inlined.
func TestServiceMonitorLabels(t *testing.T) {
	generated, err := serviceMonitorJobs(kubePrometheusServiceMonitor(), testResolver())
	if err != nil {
		t.Fatal(err)
	}
	jobs, _, err := parse(testDefaults, generated, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 {
		t.Fatalf("%d jobs, want 1", len(jobs))
	}
	sc := jobs[0]
	if sc.JobName != "serviceMonitor/shop/cart/0" || sc.Scheme != "https" || time.Duration(sc.ScrapeInterval) != 30*time.Second {
		t.Errorf("job %s scheme %s interval %v", sc.JobName, sc.Scheme, sc.ScrapeInterval)
	}
	if got := string(sc.HTTPClientConfig.BearerToken); got != "s3cret" && (sc.HTTPClientConfig.Authorization == nil || string(sc.HTTPClientConfig.Authorization.Credentials) != "s3cret") {
		t.Errorf("bearer token %q, want the Secret's", got)
	}
	if !strings.Contains(sc.HTTPClientConfig.TLSConfig.CA, "BEGIN CERTIFICATE") || sc.HTTPClientConfig.TLSConfig.ServerName != "cart.shop.svc" {
		t.Errorf("tls config %+v", sc.HTTPClientConfig.TLSConfig)
	}
	if len(sc.MetricRelabelConfigs) != 1 || sc.MetricRelabelConfigs[0].Action != "drop" {
		t.Errorf("metric relabelings %+v", sc.MetricRelabelConfigs)
	}
	if sc.ScrapeNativeHistograms == nil || !*sc.ScrapeNativeHistograms || sc.ScrapeProtocols[0] != config.PrometheusProto {
		t.Errorf("native histograms %v protocols %v, want on, protobuf first", sc.ScrapeNativeHistograms, sc.ScrapeProtocols)
	}

	svcLabels := map[string]string{"app.kubernetes.io/name": "cart", "team": "payments"}
	podLabels := map[string]string{"version": "v2"}
	for _, tc := range []struct {
		name          string
		target, group model.LabelSet
		want          string
	}{
		{name: "selected", want: `{__address__="10.0.0.7:8443", container="app", endpoint="https-metrics", instance="10.0.0.7:8443", job="cart", namespace="shop", pod="cart-1", service="cart", team="payments", version="v2"}`},
		{name: "another port", want: ""},
		{name: "another service's labels", want: ""},
		{name: "a finished pod", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, sl := "https-metrics", svcLabels
			switch tc.name {
			case "another port":
				port = "http"
			case "another service's labels":
				sl = map[string]string{"app.kubernetes.io/name": "orders"}
			}
			target, group := endpointTarget("shop", "cart", "cart-1", port, "app", sl, podLabels)
			if tc.name == "a finished pod" {
				target["__meta_kubernetes_pod_phase"] = "Succeeded"
			}
			got := targetLabels(t, sc, target, group)
			if got != tc.want {
				t.Errorf("labels\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// Without jobLabel the job is the Service's name; with targetPort the
// endpoint label is the port.
func TestServiceMonitorDefaults(t *testing.T) {
	m := &monitoringv1.ServiceMonitor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "plain"},
		Spec: monitoringv1.ServiceMonitorSpec{
			Selector:  metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"web", "api"}}}},
			Endpoints: []monitoringv1.Endpoint{{TargetPort: ptr.To(intstr.FromString("metrics"))}},
		},
	}
	generated, err := serviceMonitorJobs(m, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	jobs, _, err := parse(testDefaults, generated, nil)
	if err != nil {
		t.Fatal(err)
	}
	target, group := endpointTarget("shop", "web", "web-1", "whatever", "app", map[string]string{"tier": "web"}, nil)
	target["__meta_kubernetes_pod_container_port_name"] = "metrics"
	want := `{__address__="10.0.0.7:8443", container="app", endpoint="metrics", instance="10.0.0.7:8443", job="web", namespace="shop", pod="web-1", service="web"}`
	if got := targetLabels(t, jobs[0], target, group); got != want {
		t.Errorf("labels\n got %s\nwant %s", got, want)
	}
	if time.Duration(jobs[0].ScrapeInterval) != testDefaults.Interval {
		t.Errorf("interval %v, want kmetrics' resolution", jobs[0].ScrapeInterval)
	}
}

func TestPodMonitorLabels(t *testing.T) {
	m := &monitoringv1.PodMonitor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "workers"},
		Spec: monitoringv1.PodMonitorSpec{
			PodTargetLabels:     []string{"app"},
			NamespaceSelector:   monitoringv1.NamespaceSelector{MatchNames: []string{"shop", "batch"}},
			Selector:            metav1.LabelSelector{MatchLabels: map[string]string{"app": "worker"}},
			PodMetricsEndpoints: []monitoringv1.PodMetricsEndpoint{{Port: ptr.To("metrics"), Path: "/stats"}},
			SampleLimit:         ptr.To[int64](500),
		},
	}
	generated, err := podMonitorJobs(m, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	jobs, text, err := parse(testDefaults, generated, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := jobs[0]
	if sc.JobName != "podMonitor/shop/workers/0" || sc.MetricsPath != "/stats" || sc.SampleLimit != 500 {
		t.Errorf("job %s path %s sample limit %d", sc.JobName, sc.MetricsPath, sc.SampleLimit)
	}
	if !strings.Contains(text, "- batch") || !strings.Contains(text, "role: pod") {
		t.Errorf("discovery not the pod role over shop and batch:\n%s", text)
	}
	target := model.LabelSet{
		"__address__":                               "10.0.0.9:9000",
		"__meta_kubernetes_pod_container_name":      "worker",
		"__meta_kubernetes_pod_container_port_name": "metrics",
		"__meta_kubernetes_pod_phase":               "Running",
	}
	group := model.LabelSet{
		"__meta_kubernetes_namespace":            "batch",
		"__meta_kubernetes_pod_name":             "worker-1",
		"__meta_kubernetes_pod_label_app":        "worker",
		"__meta_kubernetes_pod_labelpresent_app": "true",
	}
	want := `{__address__="10.0.0.9:9000", app="worker", container="worker", endpoint="metrics", instance="10.0.0.9:9000", job="shop/workers", namespace="batch", pod="worker-1"}`
	if got := targetLabels(t, sc, target, group); got != want {
		t.Errorf("labels\n got %s\nwant %s", got, want)
	}
}

// What a careless or hostile monitor asks for is refused with a reason;
// kmetrics' own files and token are never sent by default.
func TestMonitorRefusals(t *testing.T) {
	ep := func(mut func(*monitoringv1.Endpoint)) *monitoringv1.ServiceMonitor {
		m := &monitoringv1.ServiceMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "m"},
			Spec: monitoringv1.ServiceMonitorSpec{Endpoints: []monitoringv1.Endpoint{{Port: "web"}}}}
		mut(&m.Spec.Endpoints[0])
		return m
	}
	for _, tc := range []struct {
		name    string
		m       *monitoringv1.ServiceMonitor
		trusted []string
		want    string // "" accepted
	}{
		{"service-account token, untrusted namespace", ep(func(e *monitoringv1.Endpoint) {
			e.BearerTokenFile = serviceAccountToken //nolint:staticcheck
		}), nil, "--operator.token-namespaces"},
		{"service-account token, trusted namespace", ep(func(e *monitoringv1.Endpoint) {
			e.BearerTokenFile = serviceAccountToken //nolint:staticcheck
		}), []string{"shop"}, ""},
		{"another file as a token", ep(func(e *monitoringv1.Endpoint) {
			e.BearerTokenFile = "/etc/kmetrics/tls.key" //nolint:staticcheck
		}), []string{"shop"}, "only " + serviceAccountToken},
		{"a key file", ep(func(e *monitoringv1.Endpoint) {
			e.TLSConfig = &monitoringv1.TLSConfig{TLSFilesConfig: monitoringv1.TLSFilesConfig{CertFile: "/etc/kmetrics/tls.crt", KeyFile: "/etc/kmetrics/tls.key"}}
		}), []string{"shop"}, "certFile/keyFile"},
		{"the service-account CA", ep(func(e *monitoringv1.Endpoint) {
			e.TLSConfig = &monitoringv1.TLSConfig{TLSFilesConfig: monitoringv1.TLSFilesConfig{CAFile: serviceAccountCA}}
		}), nil, ""},
		{"a missing Secret", ep(func(e *monitoringv1.Endpoint) {
			e.BearerTokenSecret = &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "token"} //nolint:staticcheck
		}), nil, `secret shop/nope: secrets "nope" not found`},
		{"a missing key", ep(func(e *monitoringv1.Endpoint) {
			e.BasicAuth = &monitoringv1.BasicAuth{
				Username: corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "basic"}, Key: "user"},
				Password: corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "basic"}, Key: "password"},
			}
		}), nil, `has no key "password"`},
		{"an invalid regex", ep(func(e *monitoringv1.Endpoint) {
			e.RelabelConfigs = []monitoringv1.RelabelConfig{{SourceLabels: []monitoringv1.LabelName{"a"}, Regex: "(", Action: "keep"}}
		}), nil, "invalid scrape configuration"},
		{"a timeout over the interval", ep(func(e *monitoringv1.Endpoint) {
			e.Interval, e.ScrapeTimeout = "5s", "30s"
		}), nil, "invalid scrape configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			generated, err := serviceMonitorJobs(tc.m, testResolver(tc.trusted...))
			if err == nil {
				_, _, err = parse(testDefaults, generated, nil)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestRuleFileNamespace(t *testing.T) {
	for _, tc := range []struct {
		dir, file, ns string
		ok            bool
	}{
		{"/data/rules", "/data/rules/team-a_alerts.yaml", "team-a", true},
		{"/data/rules/", "/data/rules/team-a_x_y.yaml", "team-a", true},
		{"/data/rules", "/etc/kmetrics/team-a_alerts.yaml", "", false},
		{"/data/rules", "/data/rules/sub/team-a_alerts.yaml", "", false},
		{"/data/rules", "/data/rules/noseparator.yaml", "", false},
		{"/data/rules", "/data/rules/_x.yaml", "", false},
		{"", "team-a_alerts.yaml", "", false},
	} {
		if ns, ok := RuleFileNamespace(tc.dir, tc.file); ns != tc.ns || ok != tc.ok {
			t.Errorf("RuleFileNamespace(%q, %q) = %q, %v; want %q, %v", tc.dir, tc.file, ns, ok, tc.ns, tc.ok)
		}
	}
}

func TestRuleFile(t *testing.T) {
	pr := func(expr string) *monitoringv1.PrometheusRule {
		r := &monitoringv1.PrometheusRule{Spec: monitoringv1.PrometheusRuleSpec{Groups: []monitoringv1.RuleGroup{{
			Name: "g", PartialResponseStrategy: "warn",
			Rules: []monitoringv1.Rule{
				{Record: "job:up:sum", Expr: intstr.FromString(expr)},
				// A rule naming another namespace still writes into its own.
				{Record: "job:up:copy", Expr: intstr.FromString("up"), Labels: map[string]string{"namespace": "victim", "team": "a"}},
			},
		}}}}
		r.Namespace = "team-a"
		return r
	}
	b, err := ruleFile(pr("sum by (job) (up)"), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "partial_response") || !strings.Contains(string(b), "job:up:sum") {
		t.Errorf("rule file:\n%s", b)
	}
	if n := strings.Count(string(b), "namespace: team-a"); n != 2 || strings.Contains(string(b), "victim") || !strings.Contains(string(b), "team: a") {
		t.Errorf("every rule must write into team-a (%d do):\n%s", n, b)
	}
	if _, err := ruleFile(pr("sum by (job) (up"), true, nil); err == nil {
		t.Error("an invalid expression was accepted")
	} else if !strings.Contains(err.Error(), "unclosed left parenthesis") {
		t.Errorf("refused as %v, want the parse error", err)
	}
}
