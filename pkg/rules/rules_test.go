package rules

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// alertSink records what the notifier POSTs to Alertmanager's v2 API. A real
// Alertmanager is exercised in the end-to-end suite; here the test needs
// the exact payload.
type alertSink struct {
	mu     sync.Mutex
	alerts []map[string]any
}

func (s *alertSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v2/alerts" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var batch []map[string]any
	_ = json.Unmarshal(b, &batch)
	s.mu.Lock()
	s.alerts = append(s.alerts, batch...)
	s.mu.Unlock()
}

func (s *alertSink) names() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for _, a := range s.alerts {
		if l, ok := a["labels"].(map[string]any); ok {
			out[l["alertname"].(string)] = true
		}
	}
	return out
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const goodRules = `
groups:
- name: test
  interval: 100ms
  rules:
  - record: namespace:cpu:sum_rate
    expr: sum by (namespace) (rate(container_cpu_usage_seconds_total[1m]))
  - alert: PodBusy
    expr: sum by (namespace, pod) (rate(container_cpu_usage_seconds_total[1m])) > 0.2
    labels: {severity: warning}
    annotations: {summary: "{{ $labels.pod }} uses {{ $value }} cores"}
`

// testSeries is one series and its value at each time.
type testSeries struct {
	l     labels.Labels
	value func(time.Time) float64
}

// testDB is a TSDB holding every series sampled each 10 s from two minutes
// before now to a minute after.
func testDB(t *testing.T, now time.Time, series ...testSeries) *storage.DB {
	t.Helper()
	db, err := storage.Open(storage.Options{Path: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	app := db.Appender(context.Background())
	for _, s := range series {
		for ts := now.Add(-2 * time.Minute); ts.Before(now.Add(time.Minute)); ts = ts.Add(10 * time.Second) {
			if _, err := app.Append(0, s.l, ts.UnixMilli(), s.value(ts)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestRulesEvaluateAlertAndReload(t *testing.T) {
	now := time.Now()
	db := testDB(t, now, testSeries{labels.FromStrings("__name__", "container_cpu_usage_seconds_total", "namespace", "shop", "pod", "web-1", "container", "main"),
		func(ts time.Time) float64 { return float64(ts.Sub(now.Add(-2*time.Minute)).Seconds()) * 0.3 }})

	sink := &alertSink{}
	am := httptest.NewServer(sink)
	defer am.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "test.rules.yaml")
	if err := os.WriteFile(file, []byte(goodRules), 0o644); err != nil {
		t.Fatal(err)
	}
	ev, err := New(Config{Files: []string{filepath.Join(dir, "*.yaml")}, Interval: time.Second, Alertmanagers: []string{am.URL},
		ExternalURL: "https://kmetrics.example", QueryTimeout: 10 * time.Second, MaxSamples: 1e6}, db.TSDB(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ev.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "the alert to reach Alertmanager", func() bool { return sink.names()["PodBusy"] })
	waitFor(t, "the recording rule's series", func() bool {
		q, _ := db.Querier(0, time.Now().Add(time.Hour).UnixMilli())
		defer q.Close()
		set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "namespace:cpu:sum_rate"))
		for set.Next() {
			it := set.At().Iterator(nil)
			for it.Next() == chunkenc.ValFloat {
				if _, v := it.At(); v > 0.29 && v < 0.31 {
					return true
				}
			}
		}
		return false
	})

	// An invalid file is refused and the rules in force stay.
	if err := os.WriteFile(file, []byte("groups:\n- name: broken\n  rules:\n  - record: x\n    expr: sum(\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ev.Reload()
	waitFor(t, "the invalid file to be refused", func() bool { return ev.LastError() != nil })
	t.Logf("refused: %v", ev.LastError())
	if !strings.Contains(ev.LastError().Error(), "test.rules.yaml") {
		t.Errorf("error does not name the file: %v", ev.LastError())
	}
	if g := ev.RuleGroups(); len(g) != 1 || g[0].Name() != "test" {
		t.Fatalf("rules in force after an invalid reload: %v", g)
	}

	// A valid change applies without a restart.
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(goodRules, "name: test", "name: changed")), 0o644); err != nil {
		t.Fatal(err)
	}
	ev.Reload()
	waitFor(t, "the changed rules", func() bool {
		g := ev.RuleGroups()
		return ev.LastError() == nil && len(g) == 1 && g[0].Name() == "changed"
	})
}

// The shipped rule files must load.
func TestShippedRulesAreValid(t *testing.T) {
	files, _ := filepath.Glob("../../deploy/base/rules/*.yaml")
	if len(files) == 0 {
		t.Fatal("no shipped rule files found")
	}
	db, err := storage.Open(storage.Options{Path: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ev, err := New(Config{Files: files, Interval: time.Minute, QueryTimeout: time.Second, MaxSamples: 1000}, db.TSDB(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.reload(); err != nil {
		t.Fatal(err)
	}
	if n := len(ev.RuleGroups()); n == 0 {
		t.Fatal("no groups loaded")
	}
}
