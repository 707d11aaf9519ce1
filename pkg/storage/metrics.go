package storage

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Reasons of kmetrics_storage_samples_refused_total.
const refusedFuture = "future"

var (
	samplesRefused = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "kmetrics", Subsystem: "storage", Name: "samples_refused_total",
		Help: "Samples the guard in front of the TSDB refused, by reason: future (later than now + --storage.future-tolerance).",
	}, []string{"reason"})
	quarantinedBlocks = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "kmetrics", Subsystem: "storage", Name: "quarantined_blocks",
		Help: "TSDB blocks that could not be opened at start-up and were moved to <path>/corrupted.",
	})
	registerStorageOnce sync.Once
)

// RegisterMetrics exposes the guard's counters on /metrics.
func RegisterMetrics() {
	registerStorageOnce.Do(func() { legacyregistry.MustRegister(samplesRefused, quarantinedBlocks) })
}

var registerIndexOnce sync.Once

// RegisterIndexMetrics exposes the index's size on /metrics. The TSDB's own
// series and sample counters come from Prometheus's tsdb package.
func RegisterIndexMetrics(x *Index) {
	registerIndexOnce.Do(func() {
		legacyregistry.RawMustRegister(
			metrics.NewGaugeFunc(&metrics.GaugeOpts{Namespace: "kmetrics", Subsystem: "index", Name: "nodes", Help: "Nodes in the latest-value index."},
				func() float64 { n, _ := x.Size(); return float64(n) }),
			metrics.NewGaugeFunc(&metrics.GaugeOpts{Namespace: "kmetrics", Subsystem: "index", Name: "pods", Help: "Pods in the latest-value index."},
				func() float64 { _, p := x.Size(); return float64(p) }),
		)
	})
}

var budgetSeriesDesc = prometheus.NewDesc("kmetrics_storage_application_series",
	"Head series held by the application targets of a namespace (--storage.namespace-series-limit).", []string{"namespace"}, nil)

var budgetLimitDesc = prometheus.NewDesc("kmetrics_storage_namespace_series_limit",
	"The series budget of one namespace's application targets.", nil, nil)

// budgetCollector reports what each namespace holds of its budget.
type budgetCollector struct{ b *SeriesBudget }

func (c budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- budgetSeriesDesc
	ch <- budgetLimitDesc
}

func (c budgetCollector) Collect(ch chan<- prometheus.Metric) {
	for ns, n := range c.b.Namespaces() {
		ch <- prometheus.MustNewConstMetric(budgetSeriesDesc, prometheus.GaugeValue, float64(n), ns)
	}
	ch <- prometheus.MustNewConstMetric(budgetLimitDesc, prometheus.GaugeValue, float64(c.b.perNamespace))
}

// RegisterBudgetMetrics exposes a budget on /metrics.
func RegisterBudgetMetrics(b *SeriesBudget) {
	legacyregistry.RawMustRegister(budgetCollector{b})
}
