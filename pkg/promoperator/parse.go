package promoperator

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/prometheus/config"
	"sigs.k8s.io/yaml"
)

// Defaults are the global settings monitors' jobs start from.
type Defaults struct {
	Interval, Timeout time.Duration
	// NativeHistograms scrapes native histograms (negotiating Prometheus'
	// protobuf format first) unless a monitor says otherwise.
	NativeHistograms bool
}

// parse loads generated jobs as Prometheus loads its configuration: every
// default applied, every field checked, and a job Prometheus would refuse
// refused with Prometheus' error.
func parse(d Defaults, jobs []job, logger *slog.Logger) ([]*config.ScrapeConfig, string, error) {
	doc := map[string]any{
		"global": map[string]any{
			"scrape_interval":          d.Interval.String(),
			"scrape_timeout":           min(d.Timeout, d.Interval).String(),
			"scrape_native_histograms": d.NativeHistograms,
		},
		"scrape_configs": jobs,
	}
	text, err := yaml.Marshal(doc)
	if err != nil {
		return nil, "", err
	}
	cfg, err := config.Load(string(text), logger)
	if err != nil {
		return nil, "", fmt.Errorf("invalid scrape configuration: %w", err)
	}
	return cfg.ScrapeConfigs, string(text), nil
}
