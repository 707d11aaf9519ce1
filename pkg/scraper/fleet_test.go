package scraper

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// kubeletBody renders (pods named <prefix>pod-N) a /metrics/resource body as a kubelet ≥1.30 writes it:
// families in order, explicit millisecond timestamps, start times and swap.
// Container c of pod p has used cpuSeconds(p, c) core-seconds.
func kubeletBody(prefix string, pods, containers int, ts int64, cpuSeconds func(p, c int) float64) []byte {
	var b bytes.Buffer
	series := func(name, help, typ string, value func(p, c int) float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for p := 0; p < pods; p++ {
			for c := 0; c < containers; c++ {
				fmt.Fprintf(&b, "%s{container=\"c%d\",namespace=\"ns%d\",pod=\"%spod-%d\"} %s %d\n",
					name, c, p%5, prefix, p, strconv.FormatFloat(value(p, c), 'g', -1, 64), ts)
			}
		}
	}
	series("container_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the container in core-seconds", "counter", cpuSeconds)
	series("container_memory_working_set_bytes", "[STABLE] Current working set of the container in bytes", "gauge",
		func(p, c int) float64 { return float64((p+1)*(c+1)) * (1 << 20) })
	series("container_start_time_seconds", "[STABLE] Start time of the container since unix epoch in seconds", "gauge",
		func(p, c int) float64 { return testStartTime })
	series("container_swap_usage_bytes", "[ALPHA] Current amount of the container swap usage in bytes.", "gauge",
		func(p, c int) float64 { return 0 })
	fmt.Fprintf(&b, "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total %g %d\n", float64(ts)/1000/4, ts)
	fmt.Fprintf(&b, "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n# TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes 4.294967296e+09 %d\n", ts)
	b.WriteString("# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds\n# TYPE pod_cpu_usage_seconds_total counter\n")
	for p := 0; p < pods; p++ {
		fmt.Fprintf(&b, "pod_cpu_usage_seconds_total{namespace=\"ns%d\",pod=\"%spod-%d\"} %g %d\n", p%5, prefix, p, cpuSeconds(p, 0)*float64(containers), ts)
	}
	b.WriteString("# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 0\n")
	return b.Bytes()
}

// testStartTime is when every test container started (seconds).
const testStartTime = 1.7e9

// fakeKubelet is an HTTPS kubelet whose answers a test controls. A real
// kubelet (or kwok) cannot hang, lie or check a token on demand.
type fakeKubelet struct {
	srv      *httptest.Server
	requests atomic.Int64
	// handler answers /metrics/resource after the token was checked.
	handler atomic.Pointer[http.HandlerFunc]
}

const testToken = "test-token"

func newFakeKubelet(t testing.TB, h http.HandlerFunc) *fakeKubelet {
	k := &fakeKubelet{}
	k.set(h)
	k.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.requests.Add(1)
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		(*k.handler.Load())(w, r)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *fakeKubelet) set(h http.HandlerFunc) { k.handler.Store(&h) }

func (k *fakeKubelet) port() int32 {
	_, p, _ := net.SplitHostPort(k.srv.Listener.Addr().String())
	n, _ := strconv.Atoi(p)
	return int32(n)
}

// serveBody answers with a fixed body as the kubelet does.
func serveBody(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(body)
	}
}

// kubeletNode is a node whose kubelet is k (reached at 127.0.0.1 on the
// port in its status).
func kubeletNode(name string, k *fakeKubelet) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"pool": "a"}},
		Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: k.port()}},
		},
	}
}

type testEnv struct {
	db      *storage.DB
	index   *storage.Index
	nodes   cache.Indexer
	manager *Manager
	dir     string
}

// newTestEnv opens a real TSDB and index and a manager whose kubelet client
// trusts the fake kubelets' certificate and sends testToken.
func newTestEnv(t testing.TB, k *fakeKubelet, maxBody int64) *testEnv {
	t.Helper()
	dir := t.TempDir()
	return newTestEnvAt(t, dir, k, maxBody)
}

func newTestEnvAt(t testing.TB, dir string, k *fakeKubelet, maxBody int64) *testEnv {
	t.Helper()
	db, err := storage.Open(storage.Options{Path: dir}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.srv.Certificate().Raw})
	nodes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	index := storage.NewIndex()
	m, err := NewManager(Config{
		Kubelet: KubeletConfig{
			Rest:              &rest.Config{BearerToken: testToken, TLSClientConfig: rest.TLSClientConfig{CAData: ca}},
			Scheme:            "https",
			DefaultPort:       1, // never used: every node announces its port
			UseNodeStatusPort: true,
			AddressTypes:      []corev1.NodeAddressType{corev1.NodeInternalIP},
			Timeout:           500 * time.Millisecond,
			MaxBodyBytes:      maxBody,
		},
		Resolution:    15 * time.Second,
		MaxConcurrent: 4,
	}, corelisters.NewNodeLister(nodes), db, index)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{db: db, index: index, nodes: nodes, manager: m, dir: dir}
}

// samples reads every float sample of the series matching ms.
func (e *testEnv) samples(t testing.TB, ms ...*labels.Matcher) map[string][]storage.Point {
	t.Helper()
	q, err := e.db.Querier(0, time.Now().Add(time.Hour).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string][]storage.Point{}
	set := q.Select(context.Background(), false, nil, ms...)
	var it chunkenc.Iterator
	for set.Next() {
		s := set.At()
		it = s.Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			out[s.Labels().String()] = append(out[s.Labels().String()], storage.Point{T: ts, V: v})
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func isStale(p storage.Point) bool { return value.IsStaleNaN(p.V) }

func eq(name, value string) *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchEqual, name, value)
}
