package naming

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/klog/v2"
)

// Load reads and compiles the config at path, or the defaults when path is
// empty.
func Load(path string, mapper meta.RESTMapper) (*Rules, []byte, error) {
	data := DefaultConfig
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, nil, fmt.Errorf("reading metrics config: %w", err)
		}
	}
	c, err := Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", describe(path), err)
	}
	r, err := Compile(c, mapper)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", describe(path), err)
	}
	return r, data, nil
}

func describe(path string) string {
	if path == "" {
		return "default metrics config"
	}
	return path
}

var (
	reloadSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kmetrics_custom_metrics_config_last_reload_successful",
		Help: "Whether the last load of the custom/external metrics config succeeded (0: the previous config is in force).",
	})
	reloadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kmetrics_custom_metrics_config_last_reload_success_timestamp_seconds",
		Help: "When the custom/external metrics config was last loaded.",
	})
)

// RegisterMetrics registers the reload metrics.
func RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(reloadSuccess, reloadTime)
}

// Watch reloads the config at path when its content changes (checked every
// interval) or when reload fires (SIGHUP), and hands the compiled rules to
// apply. An invalid config is logged and counted; the rules in force stay.
// loaded is the content already applied.
func Watch(ctx context.Context, path string, mapper meta.RESTMapper, loaded []byte, interval time.Duration, reload <-chan struct{}, apply func(*Rules) error) {
	if path == "" {
		return
	}
	reloadSuccess.Set(1)
	reloadTime.SetToCurrentTime()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-reload:
			force = true
		}
		data, err := os.ReadFile(path)
		if err == nil && !force && bytes.Equal(data, loaded) {
			continue
		}
		var r *Rules
		if err == nil {
			r, _, err = Load(path, mapper)
		}
		if err == nil {
			err = apply(r)
		}
		if err != nil {
			klog.ErrorS(err, "Reloading the metrics config: keeping the config in force", "path", path)
			reloadSuccess.Set(0)
			loaded = data // do not log the same broken file every interval
			continue
		}
		loaded = data
		reloadSuccess.Set(1)
		reloadTime.SetToCurrentTime()
		klog.InfoS("Reloaded the metrics config", "path", path, "rules", len(r.Custom), "externalRules", len(r.External))
	}
}
