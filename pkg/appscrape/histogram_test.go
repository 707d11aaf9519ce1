package appscrape

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// An application's native histogram (client_golang, Prometheus' protobuf
// format negotiated) is stored as a native histogram through the
// namespace budget's hold-back, histogram_quantile answers over it, and
// its exemplars are stored.
func TestNativeHistogramsAndExemplars(t *testing.T) {
	db, err := storage.Open(storage.Options{Path: t.TempDir(), MaxExemplars: 1000}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })

	reg := prometheus.NewRegistry()
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "request_duration_seconds", Help: "Request latency.",
		NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: 100,
	})
	reg.MustRegister(latency)
	// 95 requests at 100 ms, 5 at 2 s: the 95th percentile is about 100 ms.
	for i := 0; i < 95; i++ {
		latency.Observe(0.1)
	}
	for i := 0; i < 5; i++ {
		latency.(prometheus.ExemplarObserver).ObserveWithExemplar(2, prometheus.Labels{"trace_id": "4bf92f3577b34da6"})
	}
	handler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	var protobuf atomic.Bool
	app := serveApp(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Accept"), "application/vnd.google.protobuf") {
			protobuf.Store(true)
		}
		handler.ServeHTTP(w, r)
	})
	inf, _ := startInformers(t, app.pod("shop", "api-1", map[string]string{"app": "api"}))
	runScraper(t, Config{Builtin: true, Interval: time.Second, Timeout: 500 * time.Millisecond, MaxBodyBytes: 1 << 20, NativeHistograms: true},
		Deps{Informers: inf, Storage: storage.NewGuard(db, 0), Budget: storage.NewSeriesBudget(1000, 0, nil)})

	waitUntil(t, "a native histogram sample", func() bool { return histogramSamples(t, db) > 0 })
	if !protobuf.Load() {
		t.Error("the scrape did not negotiate the protobuf format")
	}

	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	q, err := engine.NewInstantQuery(context.Background(), db, nil, `histogram_quantile(0.95, request_duration_seconds{namespace="shop"})`, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res := q.Exec(context.Background())
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	vec, err := res.Vector()
	if err != nil || len(vec) != 1 {
		t.Fatalf("histogram_quantile: %v %v", vec, err)
	}
	if p95 := vec[0].F; p95 < 0.09 || p95 > 0.11 {
		t.Errorf("p95 = %v, want about 0.1 (one bucket of factor 1.1)", p95)
	}

	eq, err := db.ExemplarQuerier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ex, err := eq.Select(0, time.Now().Add(time.Minute).UnixMilli(), []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "request_duration_seconds")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 1 || len(ex[0].Exemplars) == 0 || ex[0].Exemplars[0].Labels.Get("trace_id") != "4bf92f3577b34da6" {
		t.Errorf("exemplars: %+v", ex)
	}
}

func histogramSamples(t *testing.T, db *storage.DB) int {
	q, err := db.Querier(0, time.Now().Add(time.Hour).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	n := 0
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "request_duration_seconds"))
	var it chunkenc.Iterator
	for set.Next() {
		it = set.At().Iterator(it)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt == chunkenc.ValHistogram || vt == chunkenc.ValFloatHistogram {
				n++
			}
		}
	}
	return n
}
