package appscrape

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

type point struct {
	t int64
	v float64
}

func samples(t testing.TB, db *storage.DB, ms ...*labels.Matcher) map[string][]point {
	t.Helper()
	q, err := db.Querier(0, time.Now().Add(time.Hour).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string][]point{}
	set := q.Select(context.Background(), false, nil, ms...)
	var it chunkenc.Iterator
	for set.Next() {
		s := set.At()
		it = s.Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			out[s.Labels().String()] = append(out[s.Labels().String()], point{ts, v})
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func eq(name, v string) *labels.Matcher { return labels.MustNewMatcher(labels.MatchEqual, name, v) }

func lastOf(m map[string][]point) (point, bool) {
	for _, pts := range m {
		return pts[len(pts)-1], true
	}
	return point{}, false
}

func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type testApp struct {
	host, port string
}

func serveApp(t *testing.T, h http.HandlerFunc) testApp {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return testApp{host, port}
}

func (a testApp) pod(ns, name string, lbls map[string]string) *corev1.Pod {
	p := appPod(name, a.host, corev1.PodRunning, lbls, map[string]string{annScrape: "true", annPort: a.port})
	p.Namespace = ns
	return p
}

func runScraper(t *testing.T, c Config, d Deps) *Scraper {
	t.Helper()
	c.updateEvery = 100 * time.Millisecond
	s, err := New(c, d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func openDB(t *testing.T) *storage.DB {
	db, err := storage.Open(storage.Options{Path: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// An annotated pod is scraped through Prometheus' scrape manager into the
// TSDB: its series carry the target labels (a spoofed pod label is
// exported_pod), its metadata is recorded, a failing target is up 0 with
// its series ended, a pod that goes away has its series ended, and a
// future timestamp is stored at scrape time (honor_timestamps: false).
func TestScrapeAnnotatedPod(t *testing.T) {
	db := openDB(t)
	var broken atomic.Bool
	app := serveApp(t, func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\",pod=\"spoofed\"} 42\nevil_metric 1 %d\n",
			time.Now().Add(2*time.Hour).UnixMilli())
	})
	inf, client := startInformers(t, app.pod("shop", "web-1", map[string]string{"app": "web"}))
	meta := storage.NewMetadata()
	runScraper(t, Config{Builtin: true, Interval: 200 * time.Millisecond, Timeout: 150 * time.Millisecond, MaxBodyBytes: 1 << 20, PodLabels: []string{"app"}},
		Deps{Informers: inf, Storage: storage.NewGuard(db, 0), Metadata: meta})

	series := eq("__name__", "http_requests_total")
	waitUntil(t, "a scrape", func() bool { return len(samples(t, db, series)) == 1 })
	for lset := range samples(t, db, series) {
		want := `{__name__="http_requests_total", app="web", code="200", exported_pod="spoofed", instance="` + app.host + ":" + app.port + `", job="kubernetes-pods", namespace="shop", node="n1", pod="web-1"}`
		if lset != want {
			t.Errorf("series %s\nwant   %s", lset, want)
		}
	}
	waitUntil(t, "metadata recorded", func() bool { return len(meta.List()) > 0 })
	if list := meta.List(); list[0].Family != "http_requests_total" || list[0].Type != "counter" {
		t.Errorf("metadata %+v, want http_requests_total as a counter", list)
	}
	evil, _ := lastOf(samples(t, db, eq("__name__", "evil_metric")))
	if ahead := time.UnixMilli(evil.t).Sub(time.Now()); ahead > time.Second {
		t.Errorf("evil_metric stored %v ahead", ahead)
	}
	lastUp := func() float64 {
		p, ok := lastOf(samples(t, db, eq("__name__", "up"), eq("pod", "web-1")))
		if !ok {
			return -1
		}
		return p.v
	}
	if lastUp() != 1 {
		t.Errorf("up = %v after a good scrape", lastUp())
	}
	broken.Store(true)
	waitUntil(t, "up=0 after the target fails", func() bool { return lastUp() == 0 })
	if p, _ := lastOf(samples(t, db, series)); !value.IsStaleNaN(p.v) {
		t.Error("a failing target's series must end (staleness marker)")
	}
	broken.Store(false)
	waitUntil(t, "up=1 again", func() bool { return lastUp() == 1 })
	if err := client.CoreV1().Pods("shop").Delete(context.Background(), "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "series ended after the pod went away", func() bool {
		p, _ := lastOf(samples(t, db, series))
		return value.IsStaleNaN(p.v)
	})
}

// An operator's prometheus.yml: its jobs run beside the built-in ones, a
// job of a built-in's name replaces it, jobs without a body_size_limit get
// kmetrics' cap, and an invalid file is refused naming file and line.
func TestOperatorConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "prometheus.yml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`
global: {scrape_interval: 30s}
scrape_configs:
- job_name: kubernetes-pods
  static_configs: [{targets: ["a:1"]}]
- job_name: own
  body_size_limit: 1KB
  sample_limit: 10
  static_configs: [{targets: ["b:2"]}]
`)
	cfg, err := load(Config{File: file, Builtin: true, Interval: 15 * time.Second, Timeout: 10 * time.Second, MaxBodyBytes: 1 << 20}, &Informers{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	jobs, _ := cfg.GetScrapeConfigs()
	var names []string
	for _, j := range jobs {
		names = append(names, fmt.Sprintf("%s interval=%v body=%d samples=%d", j.JobName, j.ScrapeInterval, j.BodySizeLimit, j.SampleLimit))
	}
	want := "kubernetes-service-endpoints interval=15s body=1048576 samples=0, kubernetes-pods interval=30s body=1048576 samples=0, own interval=30s body=1024 samples=10"
	if got := strings.Join(names, ", "); got != want {
		t.Errorf("jobs: %s\nwant:  %s", got, want)
	}

	write("scrape_configs:\n- job_name: x\n  scrape_intervall: 1m\n")
	_, err = load(Config{File: file, Builtin: true, Interval: 15 * time.Second, Timeout: 10 * time.Second, MaxBodyBytes: 1 << 20}, &Informers{}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("invalid file: %v, want an error naming %s and line 3", err, file)
	}
}

// SIGHUP rereads --scrape.config: a new job starts; an invalid file is
// refused and the running jobs go on.
func TestReload(t *testing.T) {
	db := openDB(t)
	app := serveApp(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "reloaded_metric 1\n") })
	file := filepath.Join(t.TempDir(), "prometheus.yml")
	job := func(name string) string {
		return fmt.Sprintf("- job_name: %s\n  scrape_interval: 200ms\n  scrape_timeout: 100ms\n  static_configs: [{targets: [%q]}]\n", name, app.host+":"+app.port)
	}
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("scrape_configs:\n" + job("first"))
	s := runScraper(t, Config{File: file, Interval: time.Second, Timeout: time.Second, MaxBodyBytes: 1 << 20}, Deps{Storage: storage.NewGuard(db, 0)})
	stored := func(job string) func() bool {
		return func() bool { return len(samples(t, db, eq("__name__", "reloaded_metric"), eq("job", job))) == 1 }
	}
	waitUntil(t, "the first job scraped", stored("first"))

	write("scrape_configs:\n" + job("first") + job("second"))
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the second job scraped after the reload", stored("second"))

	write("scrape_configs:\n- job_name: third\n  sample_limit: many\n")
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("invalid file reloaded: %v", err)
	}
	if jobs := s.TargetsActive(); len(jobs["first"]) != 1 || len(jobs["second"]) != 1 {
		t.Errorf("after a refused reload the jobs are %v, want first and second still", jobs)
	}
}
