package scraper

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
