//go:build bench

// Package rwbench measures what remote write costs kmetrics: the real
// kubelet scrape path (scrape manager, parser, guard, index, TSDB) over
// 1,000 TLS kubelets × 30 pods, run twice back to back in fresh processes —
// without remote write, then with Prometheus' remote write sending the WAL
// to VictoriaMetrics — and the samples per second the queues sustain when
// the TSDB is written as fast as it can be.
//
//	make bench-remote-write      (RWBENCH_NODES=1000, RWBENCH_CYCLES=6 by default)
//	make bench-sizing            (the "without" child alone at several cluster
//	                              sizes: the chart's memory sizing rule)
package rwbench

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/kmetrics/kmetrics/pkg/remotewrite"
	"github.com/kmetrics/kmetrics/pkg/scraper"
	"github.com/kmetrics/kmetrics/pkg/storage"
	"github.com/kmetrics/kmetrics/test/internal/fakekubelet"
	"github.com/kmetrics/kmetrics/test/internal/promserver"
)

// resolution is kmetrics' default scrape interval. The pods per node are
// RWBENCH_PODS (30 by default; make bench-sizing varies them).
const resolution = 15 * time.Second

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// result is what a child process reports.
type result struct {
	Mode          string  `json:"mode"`
	Nodes         int     `json:"nodes"`
	Pods          int     `json:"pods_per_node"`
	Seconds       float64 `json:"seconds"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	RSSMiB        float64 `json:"rss_mib"`
	HeapMiB       float64 `json:"heap_mib"`
	Appended      float64 `json:"appended_samples"`
	Sent          float64 `json:"sent_samples"`
	Failed        float64 `json:"failed_samples"`
	PendingAtEnd  float64 `json:"pending_at_end"`
	LagAtEndSecs  float64 `json:"lag_at_end_seconds"`
	HeadSeries    uint64  `json:"head_series"`
	ScrapedCycles int     `json:"cycles"`
}

// TestRemoteWriteCost runs the three children one after another and
// prints their figures side by side.
func TestRemoteWriteCost(t *testing.T) {
	bin := os.Getenv("VICTORIAMETRICS_BIN")
	if bin == "" {
		t.Fatal("VICTORIAMETRICS_BIN is not set: run make bench-remote-write")
	}
	vm, err := promserver.StartVictoriaMetrics(filepath.Join(t.TempDir(), "vm"), "29193", bin)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Stop()
	results := map[string]result{}
	for _, mode := range []string{"without", "with", "burst"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRemoteWriteChild$", "-test.v", "-test.timeout=30m")
		cmd.Env = append(os.Environ(), "RWBENCH_MODE="+mode, "RWBENCH_URL="+vm.URL+"/api/v1/write")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", mode, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
				var r result
				if err := json.Unmarshal([]byte(rest), &r); err != nil {
					t.Fatal(err)
				}
				results[mode] = r
				t.Logf("%s: %s", mode, rest)
			}
		}
	}
	wo, w, b := results["without"], results["with"], results["burst"]
	perNode := func(r result) float64 { return r.CPUSeconds / r.Seconds / float64(r.Nodes) * 1000 } // millicores per node
	t.Logf("CPU: %.3f vs %.3f millicores per node (×%.2f); RSS %.0f vs %.0f MiB (%.1f vs %.1f KiB per node); heap %.0f vs %.0f MiB",
		perNode(wo), perNode(w), perNode(w)/perNode(wo), wo.RSSMiB, w.RSSMiB, wo.RSSMiB*1024/float64(wo.Nodes), w.RSSMiB*1024/float64(w.Nodes), wo.HeapMiB, w.HeapMiB)
	t.Logf("with remote write at the scrape rate: %.0f samples/s appended, %.0f/s sent, %.0f failed, %.0f pending, %.1fs behind at the end",
		w.Appended/w.Seconds, w.Sent/w.Seconds, w.Failed, w.PendingAtEnd, w.LagAtEndSecs)
	t.Logf("burst (the TSDB written as fast as it goes): %.0f samples/s appended, %.0f/s sent, %.0f failed, %.0f pending, %.1fs behind at the end",
		b.Appended/b.Seconds, b.Sent/b.Seconds, b.Failed, b.PendingAtEnd, b.LagAtEndSecs)
}

// TestRemoteWriteChild is one measured process (run by TestRemoteWriteCost).
func TestRemoteWriteChild(t *testing.T) {
	mode := os.Getenv("RWBENCH_MODE")
	if mode == "" {
		t.Skip("run by TestRemoteWriteCost")
	}
	nodes, cycles := envInt("RWBENCH_NODES", 1000), envInt("RWBENCH_CYCLES", 6)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	db, err := storage.Open(storage.Options{Path: dir}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var appendable promstorage.Appendable = db
	if mode != "without" {
		cfg := filepath.Join(dir, "remote-write.yml")
		if err := os.WriteFile(cfg, []byte("remote_write:\n- url: "+os.Getenv("RWBENCH_URL")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		w, err := remotewrite.New(cfg, dir, reg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		db.TSDB().SetWriteNotified(w)
		go w.Run(ctx, nil)
		appendable = w.Tee(db)
	}
	r := result{Mode: mode, Nodes: nodes, Pods: envInt("RWBENCH_PODS", 30)}
	if mode == "burst" {
		r = burst(t, ctx, appendable, nodes, reg, r)
	} else {
		r = scrapeCycles(t, ctx, appendable, nodes, cycles, reg, r)
	}
	r.HeadSeries = db.TSDB().Head().NumSeries()
	b, _ := json.Marshal(r)
	fmt.Println("RESULT " + string(b))
}

// scrapeCycles runs the real kubelet scrape path at the real resolution:
// two cycles to create the series, then cycles measured.
func scrapeCycles(t *testing.T, ctx context.Context, app promstorage.Appendable, nodes, cycles int, reg *prometheus.Registry, r result) result {
	begin := time.Now().Add(-time.Minute)
	kubelet := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(fakekubelet.ResourceBody(strings.TrimPrefix(req.URL.Path, "/nodes/"), time.Now().UnixMilli(), begin, r.Pods))
	}))
	defer kubelet.Close()
	_, kport, _ := net.SplitHostPort(kubelet.Listener.Addr().String())
	kp, _ := strconv.Atoi(kport)
	var objs []k8sruntime.Object
	for i := 0; i < nodes; i++ {
		objs = append(objs, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%04d", i), Annotations: map[string]string{scraper.AnnotationResourceMetricsPath: fmt.Sprintf("/nodes/node-%04d", i)}},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
				DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(kp)}}},
		})
	}
	factory := informers.NewSharedInformerFactory(fake.NewClientset(objs...), 0)
	nodeInformer := factory.Core().V1().Nodes().Informer()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kubelet.Certificate().Raw})
	mgr, err := scraper.NewManager(scraper.Config{
		Kubelet: scraper.KubeletConfig{Rest: &rest.Config{BearerToken: "t", TLSClientConfig: rest.TLSClientConfig{CAData: ca}, QPS: -1},
			Scheme: "https", DefaultPort: 1, UseNodeStatusPort: true, AddressTypes: []corev1.NodeAddressType{corev1.NodeInternalIP},
			Timeout: 10 * time.Second, MaxBodyBytes: 10 << 20},
		Resolution: resolution, MaxConcurrent: 50, MaxClockAhead: storage.DefaultFutureTolerance,
	}, factory.Core().V1().Nodes().Lister(), storage.NewGuard(app, storage.DefaultFutureTolerance), storage.NewIndex())
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Run(ctx, nodeInformer) }()
	time.Sleep(2 * resolution)
	cpu0, sent0, appended0 := cpuSeconds(), counter(reg, "prometheus_remote_storage_samples_total"), appended(reg)
	t0 := time.Now()
	time.Sleep(time.Duration(cycles) * resolution)
	r.Seconds = time.Since(t0).Seconds()
	r.CPUSeconds = cpuSeconds() - cpu0
	r.Appended = appended(reg) - appended0
	r.Sent = counter(reg, "prometheus_remote_storage_samples_total") - sent0
	r.ScrapedCycles = cycles
	return finish(r, reg)
}

// burst appends 1,000 nodes' kubelet series (cached refs) as fast as the
// TSDB takes them, each round 15 s later than the last, for a minute.
func burst(t *testing.T, ctx context.Context, app promstorage.Appendable, nodes int, reg *prometheus.Registry, r result) result {
	var series []labels.Labels
	for n := 0; n < nodes; n++ {
		for p := 0; p < r.Pods*5; p++ {
			series = append(series, labels.FromStrings("__name__", "container_cpu_usage_seconds_total", "node", fmt.Sprintf("node-%04d", n), "pod", fmt.Sprintf("pod-%d", p)))
		}
	}
	refs := make([]promstorage.SeriesRef, len(series))
	ts := time.Now().Add(-time.Hour).UnixMilli()
	cpu0, sent0 := cpuSeconds(), counter(reg, "prometheus_remote_storage_samples_total")
	t0 := time.Now()
	for time.Since(t0) < time.Minute {
		a := app.Appender(ctx)
		for i, l := range series {
			ref, err := a.Append(refs[i], l, ts, float64(ts))
			if err != nil {
				t.Fatal(err)
			}
			refs[i] = ref
		}
		if err := a.Commit(); err != nil {
			t.Fatal(err)
		}
		r.Appended += float64(len(series))
		ts += resolution.Milliseconds()
	}
	r.Seconds = time.Since(t0).Seconds()
	r.CPUSeconds = cpuSeconds() - cpu0
	r.Sent = counter(reg, "prometheus_remote_storage_samples_total") - sent0
	return finish(r, reg)
}

func finish(r result, reg *prometheus.Registry) result {
	r.Failed = counter(reg, "prometheus_remote_storage_samples_failed_total")
	r.PendingAtEnd = counter(reg, "prometheus_remote_storage_samples_pending")
	if hi := counter(reg, "prometheus_remote_storage_highest_timestamp_in_seconds"); hi > 0 {
		r.LagAtEndSecs = hi - counter(reg, "prometheus_remote_storage_queue_highest_sent_timestamp_seconds")
	}
	r.RSSMiB = float64(rss()) / (1 << 20)
	r.HeapMiB = heapInuse() / (1 << 20)
	return r
}

// appended counts the samples the TSDB's head took.
func appended(reg *prometheus.Registry) float64 {
	return counter(reg, "prometheus_tsdb_head_samples_appended_total")
}

// counter sums a metric's samples over its series (0 when absent).
func counter(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += value(m)
		}
	}
	return sum
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func rss() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func heapInuse() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse)
}
