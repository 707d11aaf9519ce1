package apiserver

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	"github.com/kmetrics/kmetrics/pkg/provider"
	"github.com/kmetrics/kmetrics/pkg/rules/naming"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

// testMapper knows the resources the tests name, as the cluster's
// discovery would.
func testMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	for _, k := range []string{"Pod", "Service"} {
		m.Add(schema.GroupVersionKind{Version: "v1", Kind: k}, meta.RESTScopeNamespace)
	}
	for _, k := range []string{"Node", "Namespace"} {
		m.Add(schema.GroupVersionKind{Version: "v1", Kind: k}, meta.RESTScopeRoot)
	}
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	return m
}

// customFixture is a TSDB holding, over the last minute at 10 s steps:
// http_requests_total of shop/web-1 rising 10/s and shop/web-2 2/s (and of
// other/x 1/s), queue_depth gauges of web-1 (jobs 7, mail 3), and node
// n1's working set. The rest of the path is real: default rules, PromQL
// engine, provider, custom-metrics-apiserver, generic API server.
type customFixture struct {
	srv  *testServer
	prov *provider.MetricsProvider
	last time.Time // the newest sample
}

func startCustomServer(t *testing.T) *customFixture {
	t.Helper()
	db, err := storage.Open(storage.Options{Path: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	last := time.Now().Add(-2 * time.Second).Truncate(time.Second)
	app := db.Appender(context.Background())
	series := []struct {
		lset  labels.Labels
		value func(step int) float64
	}{
		{labels.FromStrings("__name__", "http_requests_total", "job", "kubernetes-pods", "namespace", "shop", "pod", "web-1", "node", "n1", "service", "web"), func(s int) float64 { return float64(100 * s) }},
		{labels.FromStrings("__name__", "http_requests_total", "job", "kubernetes-pods", "namespace", "shop", "pod", "web-2", "node", "n2", "service", "web"), func(s int) float64 { return float64(20 * s) }},
		{labels.FromStrings("__name__", "http_requests_total", "job", "kubernetes-pods", "namespace", "other", "pod", "x", "node", "n2"), func(s int) float64 { return float64(10 * s) }},
		{labels.FromStrings("__name__", "queue_depth", "job", "kubernetes-pods", "namespace", "shop", "pod", "web-1", "queue", "jobs"), func(int) float64 { return 7 }},
		{labels.FromStrings("__name__", "queue_depth", "job", "kubernetes-pods", "namespace", "shop", "pod", "web-1", "queue", "mail"), func(int) float64 { return 3 }},
		{labels.FromStrings("__name__", "node_memory_working_set_bytes", "job", "kubelet", "node", "n1"), func(int) float64 { return 1 << 30 }},
	}
	for step := 0; step <= 6; step++ {
		ts := last.Add(time.Duration(step-6) * 10 * time.Second).UnixMilli()
		for _, s := range series {
			if _, err := app.Append(0, s.lset, ts, s.value(step)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}

	mapper := testMapper()
	rules, _, err := naming.Load("", mapper)
	if err != nil {
		t.Fatal(err)
	}
	meta := func(kind, ns, name string, lbls map[string]string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: kind, APIVersion: "apps/v1"},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls}}
	}
	scheme := metadatafake.NewTestScheme()
	scheme.AddKnownTypeWithName(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, &metav1.PartialObjectMetadata{})
	scheme.AddKnownTypeWithName(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DeploymentList"}, &metav1.PartialObjectMetadataList{})
	client := metadatafake.NewSimpleMetadataClient(scheme, meta("Deployment", "shop", "web", map[string]string{"tier": "front"}))
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, p := range []struct{ ns, name, app string }{{"shop", "web-1", "web"}, {"shop", "web-2", "web"}, {"shop", "db-1", "db"}, {"other", "x", "x"}} {
		_ = pods.Add(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: p.name, Labels: map[string]string{"app": p.app}}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	objects := provider.NewInformerObjects(cache.NewGenericLister(pods, schema.GroupResource{Resource: "pods"}),
		metadatainformer.NewSharedInformerFactory(client, 0), mapper, ctx.Done())
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: 10 * time.Second, LookbackDelta: 5 * time.Minute})
	p := provider.NewMetricsProvider(db.TSDB(), engine, mapper, objects, rules, 10*time.Minute)
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, storage.NewIndex(), cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}), pods, func(d *Deps) {
		d.Custom, d.External = p, p
	})
	return &customFixture{srv: srv, prov: p, last: last}
}

// metricList decodes both custom metrics versions and external metrics.
type metricList struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Message    string `json:"message"`
	Items      []struct {
		DescribedObject struct {
			Kind, Name, Namespace, APIVersion string
		} `json:"describedObject"`
		Metric        struct{ Name string } `json:"metric"`
		MetricName    string                `json:"metricName"`
		MetricLabels  map[string]string     `json:"metricLabels"`
		Timestamp     time.Time             `json:"timestamp"`
		WindowSeconds *int64                `json:"windowSeconds"`
		Window        *int64                `json:"window"`
		Value         string                `json:"value"`
	} `json:"items"`
}

func TestCustomMetricsAPI(t *testing.T) {
	f := startCustomServer(t)
	const cm, em = "/apis/custom.metrics.k8s.io/", "/apis/external.metrics.k8s.io/v1beta1"
	q := url.QueryEscape
	tests := []struct {
		name, path string
		code       int
		objects    []string // described objects (or metric labels' queue), in order
		values     []string
		window     int64 // 0: not checked, -1: none expected
		errorHas   string
	}{
		// The HPA's Pods metric, both versions.
		{name: "pods by selector v1beta2", path: cm + "v1beta2/namespaces/shop/pods/*/http_requests?labelSelector=" + q("app=web"),
			code: 200, objects: []string{"web-1", "web-2"}, values: []string{"10", "2"}, window: 60},
		{name: "pods by selector v1beta1", path: cm + "v1beta1/namespaces/shop/pods/*/http_requests?labelSelector=" + q("app=web"),
			code: 200, objects: []string{"web-1", "web-2"}, values: []string{"10", "2"}, window: 60},
		{name: "selector narrows to existing pods", path: cm + "v1beta2/namespaces/shop/pods/*/http_requests?labelSelector=" + q("app in (web,db)"),
			code: 200, objects: []string{"web-1", "web-2"}},
		{name: "one pod", path: cm + "v1beta2/namespaces/shop/pods/web-2/http_requests", code: 200, objects: []string{"web-2"}, values: []string{"2"}},
		{name: "service object", path: cm + "v1beta2/namespaces/shop/services/web/http_requests", code: 200, objects: []string{"web"}, values: []string{"12"}, window: 60},
		{name: "namespace object", path: cm + "v1beta2/namespaces/shop/metrics/http_requests", code: 200, objects: []string{"shop"}, values: []string{"12"}},
		{name: "node (root-scoped)", path: cm + "v1beta2/nodes/n1/node_memory_working_set_bytes", code: 200, objects: []string{"n1"}, values: []string{"1073741824"}, window: -1},
		{name: "nodes by selector", path: cm + "v1beta1/nodes/n2/http_requests", code: 200, objects: []string{"n2"}, values: []string{"3"}},
		{name: "gauge with metricLabelSelector", path: cm + "v1beta2/namespaces/shop/pods/web-1/queue_depth?metricLabelSelector=" + q("queue=jobs"),
			code: 200, objects: []string{"web-1"}, values: []string{"7"}, window: -1},
		{name: "metricLabelSelector set", path: cm + "v1beta2/namespaces/shop/pods/*/queue_depth?labelSelector=" + q("app=web") + "&metricLabelSelector=" + q("queue in (jobs,mail)"),
			code: 200, objects: []string{"web-1"}, values: []string{"10"}},
		// The nearest names first: a typo's fix leads.
		{name: "unknown metric", path: cm + "v1beta2/namespaces/shop/pods/*/queue_deph?labelSelector=" + q("app=web"), code: 404,
			errorHas: "metric queue_deph is not served for pods; metrics for pods: queue_depth, http_requests"},
		{name: "misspelt metric", path: cm + "v1beta2/namespaces/shop/pods/*/http_request?labelSelector=" + q("app=web"), code: 404,
			errorHas: "metric http_request is not served for pods; metrics for pods: http_requests, queue_depth"},
		{name: "selector matches no pod", path: cm + "v1beta2/namespaces/shop/pods/*/http_requests?labelSelector=" + q("app=none"), code: 404,
			errorHas: `no pods match the selector "app=none" in namespace shop`},
		{name: "pods without the series", path: cm + "v1beta2/namespaces/shop/pods/*/http_requests?labelSelector=" + q("app=db"), code: 404,
			errorHas: `metric http_requests has no current value for any of the 1 pods matching the selector "app=db" in namespace shop`},
		{name: "object without the series", path: cm + "v1beta2/namespaces/shop/pods/db-1/http_requests", code: 404,
			errorHas: "metric http_requests has no current value for pods db-1 in namespace shop"},
		{name: "metricLabelSelector matches nothing", path: cm + "v1beta2/namespaces/shop/pods/web-1/queue_depth?metricLabelSelector=" + q("queue=none"), code: 404,
			errorHas: `with metricLabelSelector "queue=none"`},
		{name: "deployment by selector, no series label", path: cm + "v1beta2/namespaces/shop/deployments.apps/*/http_requests?labelSelector=" + q("tier=front"), code: 404,
			errorHas: "metric http_requests is not served for deployments.apps"},
		{name: "bad labelSelector", path: cm + "v1beta2/namespaces/shop/pods/*/http_requests?labelSelector=" + q("app in"), code: 400, errorHas: "invalid labelSelector"},
		{name: "bad metricLabelSelector", path: cm + "v1beta2/namespaces/shop/pods/web-1/queue_depth?metricLabelSelector=" + q("queue in jobs"), code: 400, errorHas: "invalid metricLabelSelector"},
		{name: "unsupported operator", path: cm + "v1beta2/namespaces/shop/pods/web-1/queue_depth?metricLabelSelector=" + q("queue>3"), code: 400, errorHas: "not supported"},

		{name: "external with selector", path: em + "/namespaces/shop/queue_depth?labelSelector=" + q("queue=jobs"), code: 200, objects: []string{"jobs"}, values: []string{"7"}, window: -1},
		{name: "external set selector, one item per value", path: em + "/namespaces/shop/queue_depth?labelSelector=" + q("queue in (jobs,mail)"),
			code: 200, objects: []string{"jobs", "mail"}, values: []string{"7", "3"}},
		{name: "external rate summed over the namespace", path: em + "/namespaces/shop/http_requests", code: 200, objects: []string{""}, values: []string{"12"}, window: 60},
		{name: "external other namespace", path: em + "/namespaces/other/http_requests", code: 200, values: []string{"1"}},
		{name: "external unknown", path: em + "/namespaces/shop/nope", code: 404, errorHas: "external metric nope is not served"},
		{name: "external nothing in namespace", path: em + "/namespaces/empty/queue_depth", code: 404, errorHas: "external metric queue_depth has no current value in namespace empty"},
		{name: "external bad selector", path: em + "/namespaces/shop/queue_depth?labelSelector=" + q("queue in"), code: 400, errorHas: "invalid labelSelector"},
		// A Kubernetes key that cannot be a series label: it would render
		// "by (queue-name)" into the external rule's query.
		{name: "external selector key not a label name", path: em + "/namespaces/shop/queue_depth?labelSelector=" + q("queue-name=jobs"), code: 400, errorHas: "not a series label name"},
		{name: "custom selector key not a label name", path: cm + "v1beta2/namespaces/shop/pods/web-1/queue_depth?metricLabelSelector=" + q("app.kubernetes.io/name=x"), code: 400, errorHas: "not a series label name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.srv.get(t, tt.path, "")
			if code != tt.code {
				t.Fatalf("GET %s: %d, want %d: %s", tt.path, code, tt.code, body)
			}
			var l metricList
			if err := json.Unmarshal(body, &l); err != nil {
				t.Fatalf("decoding %s: %v", body, err)
			}
			if tt.code != 200 {
				if !strings.Contains(l.Message, tt.errorHas) {
					t.Fatalf("message %q does not contain %q", l.Message, tt.errorHas)
				}
				return
			}
			external := strings.HasPrefix(tt.path, em)
			var objects, values []string
			for _, it := range l.Items {
				if external {
					objects = append(objects, it.MetricLabels["queue"])
				} else {
					objects = append(objects, it.DescribedObject.Name)
					if it.DescribedObject.APIVersion != "v1" {
						t.Errorf("describedObject.apiVersion %q, want v1", it.DescribedObject.APIVersion)
					}
				}
				values = append(values, it.Value)
				if !it.Timestamp.Equal(f.last) {
					t.Errorf("timestamp %v, want the newest sample's %v", it.Timestamp, f.last)
				}
				window := it.WindowSeconds
				if strings.Contains(tt.path, "/v1beta1/") {
					window = it.Window
				}
				switch {
				case tt.window == 0:
				case tt.window == -1 && window != nil:
					t.Errorf("window %d for an instant value", *window)
				case tt.window > 0 && (window == nil || *window != tt.window):
					t.Errorf("window %v, want %d", window, tt.window)
				}
			}
			if tt.objects != nil && strings.Join(objects, ",") != strings.Join(tt.objects, ",") {
				t.Errorf("objects %v, want %v", objects, tt.objects)
			}
			if tt.values != nil && strings.Join(values, ",") != strings.Join(tt.values, ",") {
				t.Errorf("values %v, want %v", values, tt.values)
			}
		})
	}
}

func TestCustomMetricsDiscovery(t *testing.T) {
	f := startCustomServer(t)
	type resourceList struct {
		Resources []struct {
			Name       string `json:"name"`
			Namespaced bool   `json:"namespaced"`
		} `json:"resources"`
	}
	for _, tt := range []struct {
		path string
		want []string // name:namespaced
	}{
		{"/apis/custom.metrics.k8s.io/v1beta2", []string{
			"namespaces/http_requests:false", "namespaces/queue_depth:false",
			"nodes/http_requests:false", "nodes/node_memory_working_set_bytes:false",
			"pods/http_requests:true", "pods/queue_depth:true", "services/http_requests:true"}},
		{"/apis/custom.metrics.k8s.io/v1beta1", nil},
		{"/apis/external.metrics.k8s.io/v1beta1", []string{"http_requests:true", "queue_depth:true"}},
	} {
		code, body := f.srv.get(t, tt.path, "")
		if code != 200 {
			t.Fatalf("GET %s: %d %s", tt.path, code, body)
		}
		var l resourceList
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range l.Resources {
			got = append(got, r.Name+":"+map[bool]string{true: "true", false: "false"}[r.Namespaced])
		}
		if len(got) == 0 {
			t.Errorf("%s: empty discovery", tt.path)
		}
		if tt.want != nil && strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("%s: %v, want %v", tt.path, got, tt.want)
		}
	}
}

// A reloaded config changes what is served at once; an invalid one is
// refused by Load and changes nothing.
func TestCustomMetricsReload(t *testing.T) {
	f := startCustomServer(t)
	path := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/web-1/"
	if code, body := f.srv.get(t, path+"http_requests_per_minute", ""); code != 404 {
		t.Fatalf("before reload: %d %s", code, body)
	}
	cfg := []byte(`rules:
- seriesQuery: '{__name__="http_requests_total",namespace!="",pod!=""}'
  resources: {template: "<<.Resource>>"}
  name: {matches: "^(.*)_total$", as: "${1}_per_minute"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m]) * 60) by (<<.GroupBy>>)'
`)
	c, err := naming.Parse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := naming.Compile(c, testMapper())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.prov.SetRules(context.Background(), rules); err != nil {
		t.Fatal(err)
	}
	code, body := f.srv.get(t, path+"http_requests_per_minute", "")
	var l metricList
	_ = json.Unmarshal(body, &l)
	if code != 200 || len(l.Items) != 1 || l.Items[0].Value != "600" {
		t.Fatalf("after reload: %d %s", code, body)
	}
	if code, _ := f.srv.get(t, path+"http_requests", ""); code != 404 {
		t.Fatalf("the replaced rule still serves http_requests: %d", code)
	}
}
