package scraper

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// headSeries reads every series of the head with its samples.
func headSeries(t *testing.T, head *tsdb.Head) map[string][]float64 {
	t.Helper()
	q, err := tsdb.NewBlockQuerier(head, head.MinTime(), head.MaxTime())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string][]float64{}
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
	for ss.Next() {
		var vs []float64
		it := ss.At().Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			_, v := it.At()
			vs = append(vs, v)
		}
		out[ss.At().Labels().String()] = vs
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// When the head lets a series go (garbage-collected after a gap longer than
// its range), the cached reference names nothing: the next scrape stores
// the series again under the same labels, escapes and the exported_ rename
// included.
func TestSeriesStoredAgainAfterTheHeadDroppedThem(t *testing.T) {
	for _, format := range []struct{ contentType, end string }{
		{"text/plain; version=0.0.4", ""},
		{"application/openmetrics-text; version=1.0.0", "# EOF\n"},
	} {
		t.Run(format.contentType, func(t *testing.T) { testStoredAgain(t, format.contentType, format.end) })
	}
}

// testHead is a TSDB head of its own, which a test can truncate.
func testHead(t *testing.T) *tsdb.Head {
	t.Helper()
	opts := tsdb.DefaultHeadOptions()
	opts.ChunkDirRoot = t.TempDir()
	head, err := tsdb.NewHead(nil, nil, nil, nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = head.Close() })
	return head
}

func testStoredAgain(t *testing.T, contentType, end string) {
	head := testHead(t)
	tgt := newTargetWithLabels(labels.FromStrings("job", "kube-state-metrics", "instance", "kmetrics"))
	body := []byte("# TYPE kube_pod_labels gauge\n" +
		`kube_pod_labels{namespace="a",pod="p",label_note="say \"hi\"\\n",job="x"} 1` + "\n" +
		`{"kube.pod.dotted",namespace="a"} 2` + "\n" + end)
	want := map[string]bool{
		`{__name__="kube_pod_labels", exported_job="x", instance="kmetrics", job="kube-state-metrics", label_note="say \"hi\"\\n", namespace="a", pod="p"}`: true,
		`{__name__="kube.pod.dotted", instance="kmetrics", job="kube-state-metrics", namespace="a"}`:                                                        true,
	}
	store := func(at time.Time) {
		t.Helper()
		app := head.Appender(context.Background())
		if _, err := tgt.appendBody(app, body, contentType, at); err != nil {
			t.Fatal(err)
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.UnixMilli(10 * time.Hour.Milliseconds())
	store(t0)
	store(t0.Add(15 * time.Second))
	got := headSeries(t, head)
	for s := range want {
		if len(got[s]) != 2 {
			t.Errorf("%s: %v stored, want 2 samples (have %v)", s, got[s], got)
		}
	}

	// Three hours later the head truncates and garbage-collects both series.
	if err := head.Truncate(t0.Add(3 * time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if n := head.NumSeries(); n != 0 {
		t.Fatalf("%d series left after truncation, want 0", n)
	}
	store(t0.Add(3*time.Hour + time.Minute))
	got = headSeries(t, head)
	if len(got) != len(want) {
		t.Errorf("stored %v, want %v", got, want)
	}
	for s := range want {
		if len(got[s]) != 1 {
			t.Errorf("%s: %v after the head dropped it, want its new sample", s, got[s])
		}
	}
}

// A series the target drops (its metric filter) is never stored: its cache
// entry holds no labels, only what the next scrape needs to skip it.
func TestDroppedSeriesHoldNoLabels(t *testing.T) {
	tgt := newTargetWithLabels(labels.FromStrings("job", "kubelet"))
	tgt.keep = func(name string) bool { return name == "kept" }
	app := testHead(t).Appender(context.Background())
	if _, err := tgt.appendBody(app, []byte("kept{a=\"1\"} 1\ndropped{a=\"1\"} 1\n"), "text/plain; version=0.0.4", time.Now()); err != nil {
		t.Fatal(err)
	}
	for raw, stored := range map[string]bool{`kept{a="1"}`: true, `dropped{a="1"}`: false} {
		e, _ := tgt.cache.get([]byte(raw))
		if e == nil || stored == e.lset.IsEmpty() {
			t.Errorf("%s: entry %+v", raw, e)
		}
	}
}
