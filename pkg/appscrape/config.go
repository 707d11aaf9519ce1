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
	// NativeHistograms scrapes native histograms in the built-in jobs
	// (Prometheus' protobuf format negotiated first).
	NativeHistograms bool

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
  scrape_native_histograms: {{.NativeHistograms}}
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

// load builds the scrape configuration: the built-in jobs, then the
// operator's, then the extra ones (monitors'). An invalid file is an error
// naming it (and the line, as Prometheus reports it); nothing is applied.
// The scraper itself reads the file and assembles apart (SetJobs reuses
// the file as last loaded).
func load(c Config, informers *Informers, extra []Job, logger *slog.Logger) (*config.Config, error) {
	file, err := loadFile(c, logger)
	if err != nil {
		return nil, err
	}
	return assemble(c, file, informers, extra, logger)
}

// loadFile reads --scrape.config (an empty configuration without one).
func loadFile(c Config, logger *slog.Logger) (*config.Config, error) {
	if c.File == "" {
		return config.Load("", logger)
	}
	cfg, err := config.LoadFile(c.File, false, logger)
	if err != nil {
		return nil, fmt.Errorf("--scrape.config: %w", err)
	}
	if _, err := cfg.GetScrapeConfigs(); err != nil {
		return nil, fmt.Errorf("--scrape.config: %w", err)
	}
	return cfg, nil
}

// assemble merges the built-in jobs, the file's and the extra ones into a
// copy of the file's configuration.
func assemble(c Config, file *config.Config, informers *Informers, extra []Job, logger *slog.Logger) (*config.Config, error) {
	own, err := file.GetScrapeConfigs()
	if err != nil {
		return nil, fmt.Errorf("--scrape.config: %w", err)
	}
	cfg := *file
	taken := map[string]bool{}
	var fileJobs []*config.ScrapeConfig
	for _, sc := range own {
		taken[sc.JobName] = true
		fileJobs = append(fileJobs, c.capped(sc))
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
	cfg.ScrapeConfigs = append(jobs, fileJobs...)
	cfg.ScrapeConfigFiles = nil // resolved into ScrapeConfigs above
	for _, j := range extra {
		if taken[j.Config.JobName] {
			continue // the operator's file wins, as for built-in jobs
		}
		taken[j.Config.JobName] = true
		sc := c.capped(j.Config)
		sc.ServiceDiscoveryConfigs = shareDiscovery(sc.ServiceDiscoveryConfigs, informers, j.Tenant)
		cfg.ScrapeConfigs = append(cfg.ScrapeConfigs, sc)
	}
	return &cfg, nil
}

// capped is a copy of a job with kmetrics' body cap when it sets none
// (Prometheus' default is unlimited).
func (c Config) capped(sc *config.ScrapeConfig) *config.ScrapeConfig {
	out := *sc
	if out.BodySizeLimit == 0 {
		out.BodySizeLimit = units.Base2Bytes(c.MaxBodyBytes)
	}
	return &out
}

// Job is a scrape job from another source than --scrape.config: a
// ServiceMonitor's or PodMonitor's.
type Job struct {
	Config *config.ScrapeConfig
	// Tenant is the namespace whose budget the job's series are charged to
	// (the monitor's: a monitor selecting another namespace's pods spends
	// its own namespace's budget, not theirs).
	Tenant string
}

// shareDiscovery serves in-cluster kubernetes_sd_configs (no api_server,
// no kubeconfig) of the pod and endpoints roles from the shared informers:
// a hundred monitors cost no watch of their own.
func shareDiscovery(sds discovery.Configs, informers *Informers, tenant string) discovery.Configs {
	out := make(discovery.Configs, 0, len(sds))
	for _, sd := range sds {
		k, ok := sd.(*kubernetes.SDConfig)
		if !ok || informers == nil || k.APIServer.URL != nil || k.KubeConfig != "" || len(k.Selectors) > 0 || k.NamespaceDiscovery.IncludeOwnNamespace ||
			(k.Role != kubernetes.RolePod && k.Role != kubernetes.RoleEndpoint) {
			out = append(out, sd)
			continue
		}
		out = append(out, &informerSD{role: k.Role, namespaces: k.NamespaceDiscovery.Names, tenant: tenant, informers: informers})
	}
	return out
}

func builtinConfigs(c Config, informers *Informers, logger *slog.Logger) ([]*config.ScrapeConfig, error) {
	type job struct{ Name, Role string }
	var text bytes.Buffer
	err := builtinJobs.Execute(&text, map[string]any{
		"Interval":         c.Interval.String(),
		"Timeout":          c.Timeout.String(),
		"NativeHistograms": c.NativeHistograms,
		"BodyLimit":        fmt.Sprintf("%dB", c.MaxBodyBytes),
		"CA":               yamlQuote(c.CAPEM),
		"PodLabels":        podLabelRules(c.PodLabels),
		"Jobs":             []job{{JobPods, "pod"}, {JobServiceEndpoints, "service"}},
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
		sc.ServiceDiscoveryConfigs = discovery.Configs{&informerSD{role: roles[sc.JobName], bySelector: sc.JobName == JobServiceEndpoints, informers: informers}}
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
