package scraper

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Per-node series are deleted when the node leaves, so they do not pile up
// the way metrics-server's do.
var (
	scrapeDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: "kmetrics", Subsystem: "kubelet", Name: "scrape_duration_seconds",
		Help:    "Duration of one kubelet scrape, fetch to commit, by node.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"node"})
	scrapeErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "kmetrics", Subsystem: "kubelet", Name: "scrape_errors_total",
		Help: "Failed kubelet scrapes by node.",
	}, []string{"node"})
	scrapeFailures = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "kmetrics", Subsystem: "kubelet", Name: "scrape_failures_total",
		Help: "Failed kubelet scrapes by reason: address, fetch, too_large, body, clock_ahead, storage (stored nothing, still served).",
	}, []string{"reason"})
	samplesRejected = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "kmetrics", Subsystem: "scrape", Name: "samples_rejected_total",
		Help: "Scraped samples not stored or not indexed, by reason: out_of_order, duplicate, skipped_series (a resource series missing a label or with an invalid value).",
	}, []string{"reason"})
	clockAhead = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "kmetrics", Subsystem: "kubelet", Name: "clock_ahead_seconds",
		Help: "How far the newest sample timestamp of a node's last scrape was ahead of kmetrics' clock; past --storage.future-tolerance the node's scrapes are refused.",
	}, []string{"node"})
	activeTargets = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "kmetrics", Subsystem: "scrape", Name: "targets",
		Help: "Nodes currently scraped.",
	})
)

var registerOnce sync.Once

// RegisterMetrics registers the scraper's self-metrics with the registry
// served on /metrics.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(scrapeDuration, scrapeErrors, scrapeFailures, samplesRejected, activeTargets, clockAhead)
	})
}

func forgetNodeMetrics(node string) {
	scrapeDuration.Delete(map[string]string{"node": node})
	scrapeErrors.Delete(map[string]string{"node": node})
	clockAhead.Delete(map[string]string{"node": node})
}
