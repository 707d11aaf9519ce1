package storage

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

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
