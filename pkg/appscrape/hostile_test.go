package appscrape

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// Hostile tenants, in-process, through Prometheus' scrape manager: a
// cardinality bomb over its namespace's budget, a sample two hours ahead,
// a redirect to another host. Each costs its own target only; the honest
// tenant's series are stored every scrape.
func TestHostileApplications(t *testing.T) {
	db := openDB(t)
	guard := storage.NewGuard(db.TSDB(), 5*time.Minute)
	budget := storage.NewSeriesBudget(1000, 0, db.HeadMinTime)

	var round atomic.Int64
	bomb := serveApp(t, func(w http.ResponseWriter, r *http.Request) {
		n := round.Add(1)
		var b strings.Builder
		b.WriteString("# TYPE bomb_series gauge\n")
		for i := 0; i < 5000; i++ {
			fmt.Fprintf(&b, "bomb_series{id=\"%d-%d\"} 1\n", n, i)
		}
		_, _ = w.Write([]byte(b.String()))
	})
	future := serveApp(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "evil_metric 1 %d\n", time.Now().Add(2*time.Hour).UnixMilli())
	})
	var victimHits atomic.Int64
	victim := serveApp(t, func(w http.ResponseWriter, r *http.Request) {
		victimHits.Add(1)
		fmt.Fprint(w, "secret 1\n")
	})
	redirect := serveApp(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+victim.host+":"+victim.port+"/metrics", http.StatusFound)
	})
	good := serveApp(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# TYPE queue_messages gauge\nqueue_messages 7\n")
	})
	inf, _ := startInformers(t, bomb.pod("evil", "bomb", nil), future.pod("evil", "future", nil),
		redirect.pod("evil", "redirect", nil), good.pod("shop", "good", nil))
	meta := storage.NewMetadata()
	runScraper(t, Config{Builtin: true, Interval: 200 * time.Millisecond, Timeout: 150 * time.Millisecond, MaxBodyBytes: 1 << 20},
		Deps{Informers: inf, Storage: guard, Budget: budget, Metadata: meta})

	waitUntil(t, "the bomb scraped three times", func() bool { return round.Load() >= 3 })
	waitUntil(t, "the good tenant stored", func() bool { return len(samples(t, db, eq("__name__", "queue_messages"))) == 1 })
	// Refused whole before any series is created: not even a staleness
	// marker, and the neighbours in its namespace keep their budget.
	if got := len(samples(t, db, eq("__name__", "bomb_series"))); got != 0 {
		t.Errorf("the bomb created %d series", got)
	}
	for _, f := range meta.List() {
		if f.Family == "bomb_series" {
			t.Error("a refused scrape's metadata was recorded")
		}
	}
	if held := budget.Held("evil"); held != 1 {
		t.Errorf("namespace evil holds %d series, want 1 (evil_metric)", held)
	}
	if held := budget.Held("shop"); held != 1 {
		t.Errorf("namespace shop holds %d series, want 1 (queue_messages; report series are not charged)", held)
	}
	upOf := func(pod string) float64 {
		p, ok := lastOf(samples(t, db, eq("__name__", "up"), eq("pod", pod)))
		if !ok {
			return -1
		}
		return p.v
	}
	if up := upOf("bomb"); up != 0 {
		t.Errorf("bomb up = %v, want 0", up)
	}
	evil := samples(t, db, eq("__name__", "evil_metric"))
	if len(evil) != 1 {
		t.Fatalf("the future sample was not stored at scrape time: %v", evil)
	}
	for _, pts := range evil {
		if last := pts[len(pts)-1].t; last > time.Now().UnixMilli() {
			t.Errorf("evil_metric stored at %v, in the future", time.UnixMilli(last))
		}
	}
	waitUntil(t, "the redirect target scraped", func() bool { return upOf("redirect") >= 0 })
	if up := upOf("redirect"); up != 0 {
		t.Errorf("redirect up = %v, want 0", up)
	}
	if victimHits.Load() != 0 {
		t.Errorf("the redirect was followed")
	}
	if up := upOf("good"); up != 1 {
		t.Errorf("good up = %v", up)
	}
}

// A target cannot pick another tenant's budget: the tenant is the namespace
// it was discovered in, whatever labels it exposes (honor_labels) or
// relabeling gives it.
func TestTenantIsTheDiscoveredNamespace(t *testing.T) {
	db := openDB(t)
	app := serveApp(t, func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 5; i++ {
			fmt.Fprintf(w, "spoofed{namespace=\"victim\",id=\"%d\"} 1\n", i)
		}
	})
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets.json")
	if err := os.WriteFile(targets, []byte(fmt.Sprintf(`[{"targets": [%q], "labels": {"__meta_kubernetes_namespace": "attacker", "namespace": "victim"}}]`,
		app.host+":"+app.port)), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`scrape_configs:
- job_name: spoof
  honor_labels: true
  scrape_interval: 200ms
  scrape_timeout: 100ms
  file_sd_configs: [{files: [%q]}]
`, targets)), 0o600); err != nil {
		t.Fatal(err)
	}
	budget := storage.NewSeriesBudget(1000, 0, nil)
	runScraper(t, Config{File: file, Interval: time.Second, Timeout: time.Second, MaxBodyBytes: 1 << 20},
		Deps{Storage: storage.NewGuard(db, 0), Budget: budget})
	waitUntil(t, "the spoofed series stored", func() bool { return len(samples(t, db, eq("__name__", "spoofed"))) == 5 })
	if held := budget.Held("attacker"); held != 5 {
		t.Errorf("attacker holds %d series, want its 5", held)
	}
	if held := budget.Held("victim"); held != 0 {
		t.Errorf("victim was charged %d series it never exposed", held)
	}
}
