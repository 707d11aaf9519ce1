package scraper

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kmetrics/kmetrics/pkg/provider"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

// served reports whether the resource metrics API serves a node.
func served(t *testing.T, index *storage.Index, node string) bool {
	t.Helper()
	nm, err := provider.NewResourceProvider(index, 15*time.Second).GetNodeMetrics(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}})
	if err != nil {
		t.Fatal(err)
	}
	return len(nm) == 1
}

// A kubelet whose clock runs two hours fast is refused alone: the other
// node is served and stored, and nothing of the fast one reaches the head
// (whose window it would otherwise move past every honest sample).
func TestKubeletClockAheadIsRefusedAlone(t *testing.T) {
	clk := newClock()
	good := newFakeKubelet(t, clk.body("", 2, nil))
	fast := newFakeKubelet(t, func(w http.ResponseWriter, r *http.Request) {
		ts := clk.ts.Load() + (2 * time.Hour).Milliseconds()
		serveBody(kubeletBody("f-", 2, 1, ts, steadyCPU(ts)))(w, r)
	})
	env := newTestEnv(t, good, 1<<20)
	env.manager.db = storage.NewGuard(env.db.TSDB(), 5*time.Minute)
	env.manager.maxAhead = 5 * time.Minute
	for name, k := range map[string]*fakeKubelet{"good": good, "fast": fast} {
		if err := env.nodes.Add(kubeletNode(name, k)); err != nil {
			t.Fatal(err)
		}
	}
	targets := map[string]*target{}
	for round := 0; round < 3; round++ {
		for _, name := range []string{"fast", "good"} {
			targets[name] = env.manager.scrapeNode(context.Background(), name, targets[name])
		}
		clk.tick()
	}
	if !served(t, env.index, "good") {
		t.Error("the honest node is not served")
	}
	if served(t, env.index, "fast") {
		t.Error("the node whose clock is 2h fast is served")
	}
	if got := targets["fast"].gen; got != 1 {
		t.Errorf("the fast node's scrapes were taken (generation %d)", got)
	}
	if stored := env.samples(t, eq("__name__", "container_cpu_usage_seconds_total"), eq("node", "fast")); len(stored) != 0 {
		t.Errorf("the fast node stored %d series", len(stored))
	}
	stored := env.samples(t, eq("__name__", "container_cpu_usage_seconds_total"), eq("node", "good"))
	for lset, pts := range stored {
		if len(pts) != 3 {
			t.Errorf("%s: %d of 3 honest samples stored", lset, len(pts))
		}
	}
	if len(stored) == 0 {
		t.Error("the honest node stored nothing")
	}
}

// The critical path does not depend on the TSDB: a scrape the TSDB refuses
// (every append failing, or the commit) is still served by the index.
func TestIndexServesWhatTheTSDBRefuses(t *testing.T) {
	for _, mode := range []string{"append", "commit"} {
		t.Run(mode, func(t *testing.T) {
			clk := newClock()
			k := newFakeKubelet(t, clk.body("", 2, nil))
			env := newTestEnv(t, k, 1<<20)
			faulty := &failingDB{db: env.db.TSDB(), mode: mode}
			env.manager.db = faulty
			if err := env.nodes.Add(kubeletNode("n", k)); err != nil {
				t.Fatal(err)
			}
			var tg *target
			for round := 0; round < 2; round++ {
				tg = env.manager.scrapeNode(context.Background(), "n", tg)
				clk.tick()
			}
			if !served(t, env.index, "n") {
				t.Fatal("a node whose samples the TSDB refused is not served")
			}
			if faulty.calls.Load() == 0 {
				t.Fatal("the TSDB was never asked: the test tests nothing")
			}
			if stored := env.samples(t, eq("__name__", "container_cpu_usage_seconds_total")); len(stored) != 0 {
				t.Fatalf("stored %d series through a failing TSDB", len(stored))
			}
		})
	}
}

// failingDB fails every append (mode "append") or every commit ("commit").
type failingDB struct {
	db    promstorage.Appendable
	mode  string
	calls atomic.Int64
}

var errDiskFull = errors.New("write /var/lib/kmetrics/wal/00000001: no space left on device")

func (f *failingDB) Appender(ctx context.Context) promstorage.Appender {
	return &failingAppender{Appender: f.db.Appender(ctx), f: f}
}

type failingAppender struct {
	promstorage.Appender
	f *failingDB
}

func (a *failingAppender) Append(ref promstorage.SeriesRef, l labels.Labels, t int64, v float64) (promstorage.SeriesRef, error) {
	a.f.calls.Add(1)
	if a.f.mode == "append" {
		return 0, errDiskFull
	}
	return a.Appender.Append(ref, l, t, v)
}

func (a *failingAppender) Commit() error {
	if a.f.mode == "commit" {
		_ = a.Appender.Rollback()
		return errDiskFull
	}
	return a.Appender.Commit()
}

// hostileApp is an application endpoint for the in-process tenant tests.
func hostileApp(t *testing.T, h http.HandlerFunc) (host, port string, hits *atomic.Int64) {
	hits = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	host, port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return host, port, hits
}

func textBody(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(body))
	}
}

// Hostile tenants, in-process: a cardinality bomb over its namespace's
// budget, a sample two hours ahead, a redirect to another host. Each costs
// its own target only; the honest tenant's series are stored every scrape.
func TestHostileApplications(t *testing.T) {
	db, err := storage.Open(storage.Options{Path: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	env := &testEnv{db: db}
	guard := storage.NewGuard(db.TSDB(), 5*time.Minute)
	budget := storage.NewSeriesBudget(1000, 0, db.HeadMinTime)

	var round atomic.Int64
	bombHost, bombPort, _ := hostileApp(t, func(w http.ResponseWriter, r *http.Request) {
		n := round.Add(1)
		var b strings.Builder
		b.WriteString("# TYPE bomb_series gauge\n")
		for i := 0; i < 5000; i++ {
			fmt.Fprintf(&b, "bomb_series{id=\"%d-%d\"} 1\n", n, i)
		}
		textBody(b.String())(w, r)
	})
	future := time.Now().Add(2 * time.Hour).UnixMilli()
	futureHost, futurePort, _ := hostileApp(t, textBody(fmt.Sprintf("evil_metric 1 %d\n", future)))
	victimHost, victimPort, victimHits := hostileApp(t, textBody("secret 1\n"))
	var victimURL string
	redirHost, redirPort, _ := hostileApp(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, victimURL, http.StatusFound)
	})
	goodHost, goodPort, _ := hostileApp(t, textBody("queue_messages 7\n"))
	victimURL = "http://" + net.JoinHostPort(victimHost, victimPort) + "/metrics"
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	ann := func(port string) map[string]string {
		return map[string]string{AnnotationScrape: "true", AnnotationPort: port}
	}
	for _, p := range []struct{ ns, name, host, port string }{
		{"evil", "bomb", bombHost, bombPort},
		{"evil", "future", futureHost, futurePort},
		{"evil", "redirect", redirHost, redirPort},
		{"shop", "good", goodHost, goodPort},
	} {
		pod := appPod(p.name, p.host, corev1.PodRunning, nil, ann(p.port))
		pod.Namespace = p.ns
		_ = pods.Add(pod)
	}
	meta := storage.NewMetadata()
	s := NewAppScraper(AppConfig{Interval: 30 * time.Millisecond, Timeout: time.Second, MaxBodyBytes: 1 << 20, Budget: budget, Metadata: meta},
		corelisters.NewPodLister(pods), nil, guard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitUntil(t, "the bomb scraped three times", func() bool { return round.Load() >= 3 })
	waitUntil(t, "the good tenant stored", func() bool { return len(env.samples(t, eq("__name__", "queue_messages"))) == 1 })
	if got := len(env.samples(t, eq("__name__", "bomb_series"))); got != 0 {
		t.Errorf("the bomb stored %d series", got)
	}
	for _, f := range meta.List() {
		if f.Family == "bomb_series" {
			t.Error("a refused scrape's metadata was recorded")
		}
	}
	if held := budget.Held("evil"); held > 1000 {
		t.Errorf("namespace evil holds %d series, over its budget", held)
	}
	upOf := func(pod string) float64 { return lastOf(env.samples(t, eq("__name__", "up"), eq("pod", pod))).V }
	if up := upOf("bomb"); up != 0 {
		t.Errorf("bomb up = %v, want 0", up)
	}
	evil := env.samples(t, eq("__name__", "evil_metric"))
	if len(evil) != 1 {
		t.Fatalf("the future sample was not stored at scrape time: %v", evil)
	}
	for _, pts := range evil {
		if last := pts[len(pts)-1].T; last > time.Now().UnixMilli() {
			t.Errorf("evil_metric stored at %v, in the future", time.UnixMilli(last))
		}
	}
	if up := upOf("redirect"); up != 0 {
		t.Errorf("redirect up = %v, want 0", up)
	}
	if victimHits.Load() != 0 {
		t.Errorf("the redirect was followed to another host")
	}
	if up := upOf("good"); up != 1 {
		t.Errorf("good up = %v", up)
	}
}

// Pod label keys that sanitize to one name ("app.kubernetes.io/name" and
// "app_kubernetes_io_name") are folded, the first key winning: a duplicate
// label name would make the TSDB refuse every scrape of the pod.
func TestCollidingPodLabelsAreFolded(t *testing.T) {
	s := NewAppScraper(AppConfig{PodLabels: []string{"*"}}, nil, nil, nil)
	pod := appPod("p", "10.0.0.1", corev1.PodRunning, map[string]string{"app.kubernetes.io/name": "first", "app_kubernetes_io_name": "second", "app": "x"}, nil)
	lset := s.targetLabels(pod, JobPods, "10.0.0.1:80", "")
	if err := lset.Validate(func(labels.Label) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if lset.Has("app_kubernetes_io_name") && lset.Get("app_kubernetes_io_name") != "first" {
		t.Errorf("app_kubernetes_io_name = %q, want the first key's value", lset.Get("app_kubernetes_io_name"))
	}
	names := map[string]int{}
	lset.Range(func(l labels.Label) { names[l.Name]++ })
	for name, n := range names {
		if n > 1 {
			t.Errorf("label %s appears %d times in %s", name, n, lset)
		}
	}
}
