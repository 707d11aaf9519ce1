//go:build bench

package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/restmapper"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	cmhelpers "sigs.k8s.io/custom-metrics-apiserver/pkg/provider/helpers"

	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/kmetrics/kmetrics/pkg/apiserver"
	"github.com/kmetrics/kmetrics/pkg/provider"
	"github.com/kmetrics/kmetrics/pkg/rules/naming"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

// selectors of the two Deployment sizes.
var sizes = []struct {
	pods     int
	selector string
}{{100, "app=web,in100=true"}, {1000, "app=web"}}

var podsInfo = cmprovider.CustomMetricInfo{GroupResource: schema.GroupResource{Resource: "pods"}, Namespaced: true, Metric: "http_requests"}

type kmetricsSide struct {
	provider *provider.MetricsProvider
	url      string
	client   *http.Client
}

var (
	kmOnce sync.Once
	km     *kmetricsSide
	kmErr  error
)

// kmetricsServer runs kmetrics' API server in-process against the bench
// cluster: the running-pod metadata informer, discovery REST mapper,
// default rules and the TSDB holding the bench data, as cmd/kmetrics wires
// them. Authentication is off on both sides of the comparison.
func kmetricsServer(b *testing.B) *kmetricsSide {
	kmOnce.Do(func() { km, kmErr = startKmetrics() })
	if kmErr != nil {
		b.Fatal(kmErr)
	}
	return km
}

func startKmetrics() (*kmetricsSide, error) {
	ctx := context.Background()
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	mc, err := metadata.NewForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	running := metadatainformer.NewFilteredSharedInformerFactory(mc, 0, "", func(o *metav1.ListOptions) { o.FieldSelector = "status.phase=Running" })
	pods := running.ForResource(schema.GroupVersionResource{Version: "v1", Resource: "pods"})
	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := factory.Core().V1().Nodes()
	nodes.Informer()
	running.Start(ctx.Done())
	factory.Start(ctx.Done())
	running.WaitForCacheSync(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))
	rules, _, err := naming.Load("", mapper)
	if err != nil {
		return nil, err
	}
	objects := provider.NewInformerObjects(pods.Lister(), metadatainformer.NewSharedInformerFactory(mc, 0), mapper, ctx.Done())
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 50e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	p := provider.NewMetricsProvider(db.TSDB(), engine, mapper, objects, rules, 10*time.Minute)
	if err := p.Refresh(ctx); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	o := apiserver.NewOptions()
	o.SecureServing.Listener = ln
	o.SecureServing.BindPort = ln.Addr().(*net.TCPAddr).Port
	certs, err := os.MkdirTemp("", "kmetrics-bench-certs")
	if err != nil {
		return nil, err
	}
	o.SecureServing.ServerCert.CertDirectory = certs
	o.DisableAuthForTesting = true
	cfg, err := o.Config(nil)
	if err != nil {
		return nil, err
	}
	srv, err := apiserver.New(cfg, apiserver.Deps{
		Resource: provider.NewResourceProvider(storage.NewIndex(), 15*time.Second),
		Pods:     pods.Lister(), Nodes: nodes.Lister(), Custom: p, External: p,
	})
	if err != nil {
		return nil, err
	}
	go func() { _ = srv.PrepareRun().RunWithContext(ctx) }()
	side := &kmetricsSide{provider: p, url: "https://" + ln.Addr().String(),
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
	for i := 0; ; i++ {
		if n, err := side.get("/readyz"); err == nil && n > 0 {
			return side, nil
		}
		if i > 300 {
			return nil, fmt.Errorf("kmetrics server not ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (k *kmetricsSide) get(path string) (int, error) {
	resp, err := k.client.Get(k.url + path)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return len(body), err
}

// adapterSide is prometheus-adapter's path for the same requests.
type adapterSide struct {
	mapper *restmapper.DeferredDiscoveryRESTMapper
	dyn    dynamic.Interface
	prom   promv1.API
	rules  *naming.Rules
}

func newAdapterSide(b *testing.B) *adapterSide {
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		b.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(restConfig)
	if err != nil {
		b.Fatal(err)
	}
	pc, err := promapi.NewClient(promapi.Config{Address: "http://127.0.0.1:" + prometheusPort})
	if err != nil {
		b.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))
	rules, _, err := naming.Load("", mapper)
	if err != nil {
		b.Fatal(err)
	}
	return &adapterSide{mapper: mapper, dyn: dyn, prom: promv1.NewAPI(pc), rules: rules}
}

// podsRequest is prometheus-adapter's GetMetricBySelector: LIST the
// matching pods from the API server (its own helper), query Prometheus with
// their names in a regexp, build the items.
func (a *adapterSide) podsRequest(ctx context.Context, selector k8slabels.Selector) (int, error) {
	names, err := cmhelpers.ListObjectNames(a.mapper, a.dyn, namespace, selector, podsInfo)
	if err != nil {
		return 0, err
	}
	query := fmt.Sprintf(`sum(rate(http_requests_total{namespace=%q,pod=~%q}[1m])) by (pod)`, namespace, strings.Join(names, "|"))
	res, _, _, err := a.prom.Query(ctx, query, time.Now())
	if err != nil {
		return 0, err
	}
	vec, ok := res.(model.Vector)
	if !ok {
		return 0, fmt.Errorf("query returned %s", res.Type())
	}
	var items []custom_metrics.MetricValue
	for _, s := range vec {
		ref, err := cmhelpers.ReferenceFor(a.mapper, types.NamespacedName{Namespace: namespace, Name: string(s.Metric["pod"])}, podsInfo)
		if err != nil {
			return 0, err
		}
		items = append(items, custom_metrics.MetricValue{DescribedObject: ref, Metric: custom_metrics.MetricIdentifier{Name: podsInfo.Metric},
			Timestamp: metav1.NewTime(s.Timestamp.Time()), Value: *resource.NewMilliQuantity(int64(float64(s.Value)*1000), resource.DecimalSI)})
	}
	return len(items), nil
}

// relist is prometheus-adapter's discovery refresh: /api/v1/series for
// each rule's seriesQuery, then naming every series.
func (a *adapterSide) relist(ctx context.Context) (int, error) {
	metrics := map[string]bool{}
	now := time.Now()
	for _, n := range a.rules.Custom {
		sel := matchersString(n.Matchers())
		series, _, _, err := a.prom.Series(ctx, []string{sel}, now.Add(-10*time.Minute), now)
		if err != nil {
			return 0, err
		}
		for _, s := range series {
			metric, ok := n.MetricName(string(s[model.MetricNameLabel]))
			if !ok {
				continue
			}
			for label := range s {
				if gr, ok := n.ResourceFor(string(label)); ok {
					metrics[gr.String()+"/"+metric] = true
				}
			}
		}
	}
	return len(metrics), nil
}

func matchersString(ms []*labels.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// BenchmarkPodsRequest: one HPA Pods request (GET …/pods/*/http_requests
// ?labelSelector=…) for a 100- and a 1,000-pod Deployment.
func BenchmarkPodsRequest(b *testing.B) {
	k := kmetricsServer(b)
	a := newAdapterSide(b)
	ctx := context.Background()
	for _, size := range sizes {
		sel, _ := k8slabels.Parse(size.selector)
		path := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + namespace + "/pods/*/http_requests?labelSelector=" + url.QueryEscape(size.selector)
		b.Run(fmt.Sprintf("kmetrics-https/pods=%d", size.pods), func(b *testing.B) {
			for b.Loop() {
				if _, err := k.get(path); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("kmetrics-provider/pods=%d", size.pods), func(b *testing.B) {
			for b.Loop() {
				l, err := k.provider.GetMetricBySelector(ctx, namespace, sel, podsInfo, k8slabels.Everything())
				if err != nil || len(l.Items) != size.pods {
					b.Fatalf("%v items, %v", l, err)
				}
			}
		})
		b.Run(fmt.Sprintf("adapter-path/pods=%d", size.pods), func(b *testing.B) {
			for b.Loop() {
				n, err := a.podsRequest(ctx, sel)
				if err != nil || n != size.pods {
					b.Fatalf("%d items, %v", n, err)
				}
			}
		})
	}
}

// BenchmarkDiscovery: rebuilding the metric list from 10,000 series
// (kmetrics' catalog vs the adapter's relist), and serving the list.
func BenchmarkDiscovery(b *testing.B) {
	k := kmetricsServer(b)
	a := newAdapterSide(b)
	ctx := context.Background()
	b.Run("kmetrics-refresh/series=10000", func(b *testing.B) {
		for b.Loop() {
			if err := k.provider.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("adapter-relist/series=10000", func(b *testing.B) {
		for b.Loop() {
			if n, err := a.relist(ctx); err != nil || n == 0 {
				b.Fatal(n, err)
			}
		}
	})
	b.Run("kmetrics-https-list", func(b *testing.B) {
		for b.Loop() {
			if _, err := k.get("/apis/custom.metrics.k8s.io/v1beta2"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
