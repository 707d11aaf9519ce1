package scraper

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

func TestSelfMetricsStored(t *testing.T) {
	db, err := storage.Open(storage.Options{Path: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := prometheus.NewRegistry()
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kmetrics_kubelet_scrape_failures_total", Help: "h"}, []string{"reason"})
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kmetrics_test_seconds", Help: "h", Buckets: []float64{1}})
	reg.MustRegister(failures, lat)
	failures.WithLabelValues("fetch").Add(3)
	lat.Observe(0.5)
	s := NewSelfMetrics(reg, db)
	if err := s.writeOnce(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	env := &testEnv{db: db}
	got := env.samples(t, eq("job", JobSelf), eq("__name__", "kmetrics_kubelet_scrape_failures_total"), eq("reason", "fetch"))
	if len(got) != 1 {
		t.Fatalf("want the failure counter, got %v", got)
	}
	for _, pts := range got {
		if pts[0].V != 3 {
			t.Fatalf("value %v, want 3", pts[0].V)
		}
	}
	// Prometheus 3's parser normalises le to float form, as Prometheus stores it.
	if b := env.samples(t, eq("job", JobSelf), eq("__name__", "kmetrics_test_seconds_bucket"), eq("le", "1.0")); len(b) != 1 {
		t.Fatalf("histogram bucket not stored: %v", b)
	}
}
