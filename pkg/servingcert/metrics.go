package servingcert

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	expiry = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "kmetrics", Subsystem: "serving_certificate", Name: "expiry_timestamp_seconds",
		Help: "When the serving certificate in force expires (it is renewed after two thirds of its life).",
	})
	syncSuccessful = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "kmetrics", Subsystem: "serving_certificate", Name: "last_sync_successful",
		Help: "Whether the last check of the serving certificate Secret and the APIServices' caBundle succeeded.",
	})
)

var registerOnce sync.Once

// RegisterMetrics registers the serving certificate's self-metrics with
// the registry served on /metrics.
func RegisterMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(expiry, syncSuccessful) })
}
