package scraper

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// fleet is one in-process TLS kubelet serving many nodes, each at its own
// path (announced with the resource-metrics-path annotation, which both
// kmetrics and metrics-server honour), 30 one-container pods per node.
type fleet struct {
	k     *fakeKubelet
	nodes cache.Indexer
	cycle atomic.Int64
	n     int
}

func newFleet(b *testing.B, n int) *fleet {
	f := &fleet{n: n, nodes: cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})}
	f.k = newFakeKubelet(b, func(w http.ResponseWriter, r *http.Request) {
		node := strings.TrimPrefix(r.URL.Path, "/nodes/")
		ts := time.Now().Add(-time.Hour).UnixMilli() + f.cycle.Load()*15000
		serveBody(kubeletBody(node+"-", 30, 1, ts, steadyCPU(ts)))(w, r)
	})
	for i := 0; i < n; i++ {
		node := kubeletNode(fmt.Sprintf("node-%d", i), f.k)
		node.Annotations = map[string]string{AnnotationResourceMetricsPath: "/nodes/" + node.Name}
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		_ = f.nodes.Add(node)
	}
	return f
}

func (f *fleet) restConfig() *rest.Config {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.k.srv.Certificate().Raw})
	return &rest.Config{BearerToken: testToken, TLSClientConfig: rest.TLSClientConfig{CAData: ca}, QPS: -1}
}

// cycler runs one full scrape of the fleet.
type cycler interface{ cycle(ctx context.Context) }

type kmetricsCycler struct {
	m       *Manager
	names   []string
	targets []*target
}

func (c *kmetricsCycler) cycle(ctx context.Context) {
	var wg sync.WaitGroup
	for i, name := range c.names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.targets[i] = c.m.scrapeNode(ctx, name, c.targets[i])
		}()
	}
	wg.Wait()
}

// fetchOnly fetches every body and throws it away: the fleet's and TLS's own
// cost, subtracted from both to compare what each implementation adds.
type fetchOnly struct {
	client *http.Client
	urls   []string
}

func (c *fetchOnly) cycle(ctx context.Context) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for _, u := range c.urls {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			resp, err := c.client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// writeRetainedHeapProfile writes what the cycles retain, while they still
// do, to $SCRAPE_CYCLE_HEAP_PROFILE-<nodes>-<impl> when that is set: -memprofile
// is written after every sub-benchmark has released its TSDB and cache.
func writeRetainedHeapProfile(b *testing.B, n int, impl string) {
	prefix := os.Getenv("SCRAPE_CYCLE_HEAP_PROFILE")
	if prefix == "" {
		return
	}
	f, err := os.Create(fmt.Sprintf("%s-%d-%s", prefix, n, impl))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkScrapeCycle: one full scrape cycle of N nodes × 30 pods. Reports
// process CPU per node per cycle (fleet included; see impl=fetch-only) and
// the live heap kmetrics retains per node. metrics-server is no longer
// compared in-process: the approved release (v0.8.0) does not compile
// against the Prometheus libraries kmetrics embeds, so it is measured as
// its own process (docs/benchmarks.md).
// Run: go test -run='^$' -bench=ScrapeCycle -benchtime=3x ./pkg/scraper
func BenchmarkScrapeCycle(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		for _, impl := range []string{"fetch-only", "kmetrics"} {
			b.Run(fmt.Sprintf("nodes=%d/impl=%s", n, impl), func(b *testing.B) {
				f := newFleet(b, n)
				ctx := context.Background()
				heap0 := liveHeap()
				var c cycler
				switch impl {
				case "kmetrics":
					db, err := storage.Open(storage.Options{Path: b.TempDir()}, nil, nil)
					if err != nil {
						b.Fatal(err)
					}
					defer db.Close()
					m, err := NewManager(Config{
						Kubelet: KubeletConfig{Rest: f.restConfig(), Scheme: "https", UseNodeStatusPort: true,
							AddressTypes: []corev1.NodeAddressType{corev1.NodeInternalIP}, Timeout: 30 * time.Second, MaxBodyBytes: 10 << 20},
						Resolution: 15 * time.Second, MaxConcurrent: 50,
					}, corelisters.NewNodeLister(f.nodes), db, storage.NewIndex())
					if err != nil {
						b.Fatal(err)
					}
					kc := &kmetricsCycler{m: m, targets: make([]*target, n)}
					for _, o := range f.nodes.List() {
						kc.names = append(kc.names, o.(*corev1.Node).Name)
					}
					c = kc
				default:
					rt, err := rest.TransportFor(f.restConfig())
					if err != nil {
						b.Fatal(err)
					}
					fo := &fetchOnly{client: &http.Client{Transport: rt}}
					for _, o := range f.nodes.List() {
						fo.urls = append(fo.urls, f.k.srv.URL+"/nodes/"+o.(*corev1.Node).Name)
					}
					c = fo
				}
				// Two warm-up cycles: series created, two points per container.
				for i := 0; i < 2; i++ {
					c.cycle(ctx)
					f.cycle.Add(1)
				}
				b.ResetTimer()
				cpu0 := cpuTime()
				for i := 0; i < b.N; i++ {
					c.cycle(ctx)
					f.cycle.Add(1)
				}
				cpu := cpuTime() - cpu0
				b.StopTimer()
				b.ReportMetric(cpu.Seconds()*1000/float64(b.N)/float64(n), "cpu-ms/node")
				b.ReportMetric(float64(liveHeap()-min(heap0, liveHeap()))/1024/float64(n), "heap-KiB/node")
				writeRetainedHeapProfile(b, n, impl)
				runtime.KeepAlive(c)
			})
		}
	}
}
