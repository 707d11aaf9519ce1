package appscrape

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"text/template"
	"time"

	"github.com/alecthomas/units"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/kubernetes"
	"github.com/prometheus/prometheus/util/strutil"
)

// The built-in jobs: Prometheus' classic annotation-driven jobs.
const (
	JobPods             = "kubernetes-pods"
	JobServiceEndpoints = "kubernetes-service-endpoints"
)

// Config says what the application scraper scrapes.
type Config struct {
	// File is an operator's Prometheus configuration (its global section
	// and scrape_configs / scrape_config_files are used); "" for none.
	File string
	// Builtin enables the kubernetes-pods and kubernetes-service-endpoints
	// jobs over the shared informers. A job of the same name in File
	// replaces the built-in one.
	Builtin bool
	// Interval, Timeout and MaxBodyBytes of the built-in jobs. MaxBodyBytes
	// is also the body_size_limit of every job that sets none (Prometheus'
	// default is unlimited: one endless body would cost memory the HPA
	// shares).
	Interval, Timeout time.Duration
	MaxBodyBytes      int64
	// PodLabels are the pod labels the built-in jobs copy onto every series
	// (names sanitized as kubernetes_sd does); "*" copies all.
	PodLabels []string
	// CAPEM, when set, verifies https targets of the built-in jobs (the
	// cluster CA).
	CAPEM string

	// updateEvery is how often discovery updates reach the scrape manager
	// (Prometheus' 5s when 0); tests shorten it.
	updateEvery time.Duration
}

// builtinJobs is the classic kubernetes-pods / kubernetes-service-endpoints
// pair (as in Prometheus' example configuration and the community Helm
// chart), with kmetrics' defaults: target timestamps not honoured, no
// redirects followed, the body capped.
var builtinJobs = template.Must(template.New("jobs").Parse(`
global:
  scrape_interval: {{.Interval}}
  scrape_timeout: {{.Timeout}}
scrape_configs:
{{- range $job := .Jobs}}
- job_name: {{$job.Name}}
  scrape_interval: {{$.Interval}}
  scrape_timeout: {{$.Timeout}}
  body_size_limit: {{$.BodyLimit}}
  honor_timestamps: false
  follow_redirects: false
{{- if $.CA}}
  tls_config:
    ca: {{$.CA}}
{{- end}}
  relabel_configs:
  - source_labels: [__meta_kubernetes_{{$job.Role}}_annotation_prometheus_io_scrape]
    action: keep
    regex: "true"
  - source_labels: [__meta_kubernetes_pod_phase]
    action: drop
    regex: Pending|Succeeded|Failed|Completed
  - source_labels: [__meta_kubernetes_{{$job.Role}}_annotation_prometheus_io_scheme]
    action: replace
    target_label: __scheme__
    regex: (https?)
  - source_labels: [__meta_kubernetes_{{$job.Role}}_annotation_prometheus_io_path]
    action: replace
    target_label: __metrics_path__
    regex: (/.*)
  - source_labels: [__address__, __meta_kubernetes_{{$job.Role}}_annotation_prometheus_io_port]
    action: replace
    regex: (.+?)(?::\d+)?;(\d+)
    replacement: $1:$2
    target_label: __address__
  - action: labelmap
    regex: __meta_kubernetes_{{$job.Role}}_annotation_prometheus_io_param_(.+)
    replacement: __param_$1
{{- range $.PodLabels}}
  - {{.}}
{{- end}}
  - source_labels: [__meta_kubernetes_namespace]
    target_label: namespace
  - source_labels: [__meta_kubernetes_pod_name]
    target_label: pod
  - source_labels: [__meta_kubernetes_pod_node_name]
    target_label: node
{{- if eq $job.Role "service"}}
  - source_labels: [__meta_kubernetes_service_name]
    target_label: service
{{- end}}
{{- end}}
`))

// podLabelRules copies the chosen pod labels, as relabel rules in YAML
// flow form.
func podLabelRules(names []string) []string {
	var rules []string
	for _, n := range names {
		if n == "*" {
			return []string{`{action: labelmap, regex: "__meta_kubernetes_pod_label_(.+)"}`}
		}
	}
	for _, n := range names {
		if n == "" {
			continue
		}
		clean := strutil.SanitizeLabelName(n)
		rules = append(rules, fmt.Sprintf(`{source_labels: [__meta_kubernetes_pod_label_%s], target_label: %s}`, clean, clean))
	}
	return rules
}

// Load builds the scrape configuration: the built-in jobs, then the
// operator's. An invalid file is an error naming it (and the line, as
// Prometheus reports it); nothing is applied.
func Load(c Config, informers *Informers, logger *slog.Logger) (*config.Config, error) {
	var cfg *config.Config
	var err error
	if c.File != "" {
		cfg, err = config.LoadFile(c.File, false, logger)
		if err != nil {
			return nil, fmt.Errorf("--scrape.config: %w", err)
		}
	} else if cfg, err = config.Load("", logger); err != nil {
		return nil, err
	}
	own, err := cfg.GetScrapeConfigs()
	if err != nil {
		return nil, fmt.Errorf("--scrape.config: %w", err)
	}
	taken := map[string]bool{}
	for _, sc := range own {
		taken[sc.JobName] = true
		if sc.BodySizeLimit == 0 {
			sc.BodySizeLimit = units.Base2Bytes(c.MaxBodyBytes)
		}
	}
	var jobs []*config.ScrapeConfig
	if c.Builtin {
		builtin, err := builtinConfigs(c, informers, logger)
		if err != nil {
			return nil, err
		}
		for _, sc := range builtin {
			if !taken[sc.JobName] {
				jobs = append(jobs, sc)
			}
		}
	}
	cfg.ScrapeConfigs = append(jobs, own...)
	cfg.ScrapeConfigFiles = nil // resolved into ScrapeConfigs above
	return cfg, nil
}

func builtinConfigs(c Config, informers *Informers, logger *slog.Logger) ([]*config.ScrapeConfig, error) {
	type job struct{ Name, Role string }
	var text bytes.Buffer
	err := builtinJobs.Execute(&text, map[string]any{
		"Interval":  c.Interval.String(),
		"Timeout":   c.Timeout.String(),
		"BodyLimit": fmt.Sprintf("%dB", c.MaxBodyBytes),
		"CA":        yamlQuote(c.CAPEM),
		"PodLabels": podLabelRules(c.PodLabels),
		"Jobs":      []job{{JobPods, "pod"}, {JobServiceEndpoints, "service"}},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(text.String(), logger)
	if err != nil {
		return nil, fmt.Errorf("the built-in jobs (--scrape.pod-labels?): %w", err)
	}
	roles := map[string]kubernetes.Role{JobPods: kubernetes.RolePod, JobServiceEndpoints: kubernetes.RoleEndpoint}
	for _, sc := range cfg.ScrapeConfigs {
		sc.ServiceDiscoveryConfigs = discovery.Configs{&informerSD{role: roles[sc.JobName], informers: informers}}
	}
	return cfg.ScrapeConfigs, nil
}

// yamlQuote makes s one double-quoted YAML scalar ("" stays empty).
func yamlQuote(s string) string {
	if s == "" {
		return ""
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
