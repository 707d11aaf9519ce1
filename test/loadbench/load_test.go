//go:build bench

// Package loadbench runs kmetrics' whole serving path in one process — the
// real scrape manager over 1,000 TLS kubelets × 30 pods, 50 application
// targets, the guard, budgets, TSDB and index, the generic API server with
// metrics.k8s.io, custom metrics and the query API — while clients issue
// kubectl top-style lists, the HPA's PodMetrics and custom metrics requests
// and a dashboard's range query concurrently. Three phases: steady, with a
// pod exposing 200,000 new series every scrape, and after it left.
//
//	make bench-load      (LOAD_PHASE=60s LOAD_NODES=1000 by default)
package loadbench

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/kmetrics/kmetrics/pkg/apiserver"
	"github.com/kmetrics/kmetrics/pkg/appscrape"
	"github.com/kmetrics/kmetrics/pkg/provider"
	"github.com/kmetrics/kmetrics/pkg/rules/naming"
	"github.com/kmetrics/kmetrics/pkg/scraper"
	"github.com/kmetrics/kmetrics/pkg/storage"
	"github.com/kmetrics/kmetrics/test/internal/fakekubelet"
)

const (
	podsPerNode = 30
	apps        = 50
	resolution  = 15 * time.Second
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

type harness struct {
	url      string
	client   *http.Client
	db       *storage.DB
	bomb     atomic.Bool
	bombHits atomic.Int64
}

func start(t *testing.T, ctx context.Context, nodes int) *harness {
	h := &harness{}
	begin := time.Now().Add(-time.Minute)
	kubelet := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(fakekubelet.ResourceBody(strings.TrimPrefix(r.URL.Path, "/nodes/"), time.Now().UnixMilli(), begin, podsPerNode))
	}))
	t.Cleanup(kubelet.Close)
	_, kport, _ := net.SplitHostPort(kubelet.Listener.Addr().String())
	kp, _ := strconv.Atoi(kport)

	var appRequests atomic.Int64
	appSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		if r.URL.Path == "/bomb" {
			if !h.bomb.Load() {
				_, _ = io.WriteString(w, "bomb_up 1\n")
				return
			}
			n := h.bombHits.Add(1)
			var b strings.Builder
			for i := 0; i < 200000; i++ {
				fmt.Fprintf(&b, "bomb_series{scrape=\"%d\",id=\"%d\"} 1\n", n, i)
			}
			_, _ = io.WriteString(w, b.String())
			return
		}
		n := appRequests.Add(1)
		var b strings.Builder
		b.WriteString("# TYPE http_requests_total counter\n")
		for code := 0; code < 10; code++ {
			fmt.Fprintf(&b, "http_requests_total{code=\"%d\"} %d\nqueue_depth{queue=\"q%d\"} %d\n", 200+code, n*int64(code+1), code, code)
		}
		_, _ = io.WriteString(w, b.String())
	}))
	t.Cleanup(appSrv.Close)
	ahost, aport, _ := net.SplitHostPort(appSrv.Listener.Addr().String())

	// The cluster, as informers would hold it.
	var objs []k8sruntime.Object
	nodeIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	podMeta := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for i := 0; i < nodes; i++ {
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%04d", i), Annotations: map[string]string{scraper.AnnotationResourceMetricsPath: fmt.Sprintf("/nodes/node-%04d", i)}},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
				DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(kp)}}},
		}
		objs = append(objs, n)
		_ = nodeIdx.Add(n)
		for p := 0; p < podsPerNode; p++ {
			_ = podMeta.Add(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns-%d", p%10),
				Name: fmt.Sprintf("%s-pod-%d", n.Name, p), Labels: map[string]string{"app": fmt.Sprintf("app-%d", i%20)}}})
		}
	}
	addApp := func(ns, name, path string) {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), Labels: map[string]string{"app": "web"},
				Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": aport, "prometheus.io/path": path}},
			Spec:   corev1.PodSpec{NodeName: "node-0000", Containers: []corev1.Container{{Name: "main"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ahost},
		}
		objs = append(objs, p)
		_ = podMeta.Add(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: p.Labels}})
	}
	for i := 0; i < apps; i++ {
		addApp(fmt.Sprintf("apps-%d", i%5), fmt.Sprintf("web-%d", i), fmt.Sprintf("/app/%d", i))
	}
	addApp("evil", "bomb", "/bomb")

	dir := t.TempDir()
	db, err := storage.Open(storage.Options{Path: dir}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	h.db = db
	guard := storage.NewGuard(db, storage.DefaultFutureTolerance)
	budget := storage.NewSeriesBudget(storage.DefaultNamespaceSeriesLimit, storage.DefaultApplicationSeriesLimit, db.HeadMinTime)
	index := storage.NewIndex()

	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	nodeInformer := factory.Core().V1().Nodes().Informer()
	appInformers := &appscrape.Informers{Pods: factory.Core().V1().Pods().Informer(), Services: factory.Core().V1().Services().Informer()}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kubelet.Certificate().Raw})
	mgr, err := scraper.NewManager(scraper.Config{
		Kubelet: scraper.KubeletConfig{Rest: &rest.Config{BearerToken: "t", TLSClientConfig: rest.TLSClientConfig{CAData: ca}, QPS: -1},
			Scheme: "https", DefaultPort: 1, UseNodeStatusPort: true, AddressTypes: []corev1.NodeAddressType{corev1.NodeInternalIP},
			Timeout: 10 * time.Second, MaxBodyBytes: 10 << 20},
		Resolution: resolution, MaxConcurrent: 50, MaxClockAhead: storage.DefaultFutureTolerance,
	}, factory.Core().V1().Nodes().Lister(), guard, index)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Run(ctx, nodeInformer) }()
	appScraper, err := appscrape.New(appscrape.Config{Builtin: true, Interval: resolution, Timeout: 10 * time.Second, MaxBodyBytes: 10 << 20},
		appscrape.Deps{Informers: appInformers, Storage: guard, Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	go appScraper.Run(ctx)

	mapper := meta.NewDefaultRESTMapper(nil)
	for _, k := range []string{"Pod", "Service"} {
		mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: k}, meta.RESTScopeNamespace)
	}
	for _, k := range []string{"Node", "Namespace"} {
		mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: k}, meta.RESTScopeRoot)
	}
	rules, _, err := naming.Load("", mapper)
	if err != nil {
		t.Fatal(err)
	}
	podLister := cache.NewGenericLister(podMeta, schema.GroupResource{Resource: "pods"})
	objects := provider.NewInformerObjects(podLister, metadatainformer.NewSharedInformerFactory(metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme()), 0), mapper, ctx.Done())
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: 2 * time.Minute, LookbackDelta: 5 * time.Minute})
	custom := provider.NewMetricsProvider(db, engine, mapper, objects, rules, 10*time.Minute).WithMaxConcurrency(10)
	go custom.RunDiscovery(ctx, 10*time.Second)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := apiserver.NewOptions()
	o.SecureServing.Listener = ln
	o.SecureServing.BindPort = ln.Addr().(*net.TCPAddr).Port
	o.SecureServing.ServerCert.CertDirectory = t.TempDir()
	o.DisableAuthForTesting = true
	cfg, err := o.Config(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := apiserver.New(cfg, apiserver.Deps{
		Resource: provider.NewResourceProvider(index, resolution),
		Pods:     podLister,
		Nodes:    corelisters.NewNodeLister(nodeIdx),
		Query: apiserver.NewQueryAPI(db, apiserver.QueryOptions{Timeout: 2 * time.Minute, MaxSamples: 10e6, MaxConcurrency: 4,
			LookbackDelta: 5 * time.Minute}, nil),
		Custom: custom, External: custom,
		QueryTimeout: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.PrepareRun().RunWithContext(ctx) }()
	h.url = "https://" + ln.Addr().String()
	// The server's certificate is self-signed for this run.
	h.client = &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 16}}
	return h
}

// get fetches path and reports whether it answered 200 with a body.
func (h *harness) get(path string) error {
	resp, err := h.client.Get(h.url + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK || n == 0 {
		return fmt.Errorf("%s: %d", path, resp.StatusCode)
	}
	return nil
}

// client is one kind of request issued in a loop by its own goroutine.
type client struct {
	name string
	path func() string
}

type result struct {
	latencies []time.Duration
	errors    int
	lastErr   error
}

func (h *harness) phase(ctx context.Context, d time.Duration, clients []client) map[string]*result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	out := map[string]*result{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range clients {
		r := &result{}
		out[c.name] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				start := time.Now()
				err := h.get(c.path())
				mu.Lock()
				if err != nil {
					r.errors++
					r.lastErr = err
				} else {
					r.latencies = append(r.latencies, time.Since(start))
				}
				mu.Unlock()
				time.Sleep(100 * time.Millisecond) // a client, not a flood
			}
		}()
	}
	wg.Wait()
	return out
}

func pct(l []time.Duration, p float64) float64 {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(float64(len(s))*p))].Microseconds()) / 1000
}

func headSeries(db *storage.DB) uint64 { return db.TSDB().Head().NumSeries() }

func rssMB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func TestLoad(t *testing.T) {
	nodes := envInt("LOAD_NODES", 1000)
	phaseLen := envDuration("LOAD_PHASE", 60*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := start(t, ctx, nodes)

	// Warm up: every node scraped twice (CPU needs two points), discovery
	// built, the custom metric served.
	clients := []client{
		{"all PodMetrics (kubectl top pods -A)", func() string { return "/apis/metrics.k8s.io/v1beta1/pods" }},
		{"HPA PodMetrics (one Deployment)", func() string {
			return "/apis/metrics.k8s.io/v1beta1/namespaces/ns-3/pods?labelSelector=" + url.QueryEscape("app=app-7")
		}},
		{"HPA custom metric (Pods)", func() string {
			return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/apps-1/pods/*/http_requests?labelSelector=" + url.QueryEscape("app=web")
		}},
		{"dashboard range query", func() string {
			end := time.Now()
			return "/prometheus/api/v1/query_range?" + url.Values{
				"query": {`sum by (namespace) (rate(container_cpu_usage_seconds_total{job="kubelet"}[1m]))`},
				"start": {strconv.FormatInt(end.Add(-30*time.Minute).Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}, "step": {"30"},
			}.Encode()
		}},
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var failed error
		for _, c := range clients {
			if err := h.get(c.path()); err != nil && failed == nil {
				failed = fmt.Errorf("%s: %w", c.name, err)
			}
		}
		if failed == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every API answered within 3 minutes of start: %v", failed)
		}
		time.Sleep(time.Second)
	}
	time.Sleep(2 * resolution)

	type row struct {
		phase string
		res   map[string]*result
		head  uint64
		rss   float64
	}
	var rows []row
	for _, ph := range []struct {
		name string
		bomb bool
	}{{"steady", false}, {"with the 200,000-series bomb", true}, {"after it left", false}} {
		h.bomb.Store(ph.bomb)
		res := h.phase(ctx, phaseLen, clients)
		runtime.GC()
		rows = append(rows, row{ph.name, res, headSeries(h.db), rssMB()})
	}
	t.Logf("%d kubelets × %d pods, %d application targets, %v per phase, %d bomb scrapes refused", nodes, podsPerNode, apps, phaseLen, h.bombHits.Load())
	t.Logf("%-38s %-30s %8s %8s %9s %7s", "API", "phase", "p50 ms", "p99 ms", "requests", "errors")
	errors := 0
	for _, c := range clients {
		for _, r := range rows {
			res := r.res[c.name]
			t.Logf("%-38s %-30s %8.1f %8.1f %9d %7d", c.name, r.phase, pct(res.latencies, 0.5), pct(res.latencies, 0.99), len(res.latencies), res.errors)
			errors += res.errors
			if res.errors > 0 {
				t.Logf("  last error: %v", res.lastErr)
			}
		}
	}
	for _, r := range rows {
		t.Logf("after %-32s head series %d, RSS %.0f MB", r.phase+":", r.head, r.rss)
	}
	if errors > 0 {
		t.Errorf("%d requests failed", errors)
	}
	if h.bombHits.Load() == 0 {
		t.Error("the bomb was never scraped: the second phase measured nothing")
	}
}
