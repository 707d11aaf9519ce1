package appscrape

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	applicationRefused = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "kmetrics", Subsystem: "scrape", Name: "application_refused_total",
		Help: "Application scrapes refused whole for what they held, by namespace, pod and reason: series_budget.",
	}, []string{"namespace", "pod", "reason"})
	applicationTargets = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "kmetrics", Subsystem: "scrape", Name: "application_targets",
		Help: "Application targets scraped, by job (scrape pool).",
	}, []string{"job"})
	configReloadSuccessful = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "kmetrics", Subsystem: "scrape", Name: "config_last_reload_successful",
		Help: "Whether the last load of the scrape configuration (--scrape.config) succeeded: 0 means a reload was refused and the previous jobs run.",
	})
	configReloadTime = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "kmetrics", Subsystem: "scrape", Name: "config_last_reload_success_timestamp_seconds",
		Help: "When the scrape configuration was last loaded successfully.",
	})
)

var registerOnce sync.Once

// RegisterMetrics registers the application scraper's self-metrics with the
// registry served on /metrics.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(applicationRefused, applicationTargets, configReloadSuccessful, configReloadTime)
	})
}
