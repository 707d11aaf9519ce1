package remotewrite

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	reloadSuccessful = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kmetrics_remote_write_config_last_reload_successful",
		Help: "Whether the last load of --remote-write.config succeeded: 0 means a change was refused and the queues in force keep sending.",
	})
	reloadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kmetrics_remote_write_config_last_reload_success_timestamp_seconds",
		Help: "When --remote-write.config was last loaded successfully.",
	})
	backfilledSamples = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kmetrics_remote_write_backfilled_samples_total",
		Help: "Samples stored before a restart but not sent then, sent from the TSDB after it (Prometheus' WAL watcher would skip them).",
	})
)

func registerMetrics(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	for _, c := range []prometheus.Collector{reloadSuccessful, reloadTime, backfilledSamples} {
		if err := reg.Register(c); err != nil {
			if _, ok := err.(prometheus.AlreadyRegisteredError); !ok {
				panic(err)
			}
		}
	}
}
