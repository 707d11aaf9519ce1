package appscrape

import (
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
)

// The namespace label of application series is what tenancy trusts: a
// team reads the series labelled with its namespaces. A target may expose
// its own "namespace" (honor_labels keeps it), and a monitor's relabelings
// may write any value, so for the jobs kmetrics generates — the built-in
// ones and every ServiceMonitor's and PodMonitor's — the label is set,
// after everything else, to the namespace the target was discovered in,
// and a different value is kept as exported_namespace (what Prometheus
// does with any conflicting label, and what prometheus-operator's
// enforcedNamespaceLabel enforces). Jobs of --scrape.config are the
// operator's own and keep what their relabeling writes (a federation or a
// Pushgateway job labels series of many namespaces).
const (
	namespaceLabel         = "namespace"
	exportedNamespaceLabel = "exported_namespace"
)

// confinedJobs are the names of the jobs whose series get their target's
// namespace: every job of cfg that is not one of file's.
func confinedJobs(cfg, file *config.Config) map[string]bool {
	own := map[string]bool{}
	for _, sc := range file.ScrapeConfigs {
		own[sc.JobName] = true
	}
	out := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		if !own[sc.JobName] {
			out[sc.JobName] = true
		}
	}
	return out
}

// withNamespace is l labelled with namespace ns, a different namespace it
// carried becoming exported_namespace.
func withNamespace(l labels.Labels, ns string) labels.Labels {
	old := l.Get(namespaceLabel)
	if old == ns {
		return l
	}
	b := labels.NewBuilder(l)
	if old != "" {
		b.Set(exportedNamespaceLabel, old)
	}
	b.Set(namespaceLabel, ns)
	return b.Labels()
}
