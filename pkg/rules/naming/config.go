// Package naming turns series in the TSDB into custom and external metrics
// and back into PromQL, with prometheus-adapter's configuration format
// (rules, externalRules: seriesQuery, seriesFilters, resources, name,
// metricsQuery), so an existing adapter config works unchanged.
package naming

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// Config is prometheus-adapter's configuration file.
type Config struct {
	Rules         []Rule `json:"rules,omitempty"`
	ExternalRules []Rule `json:"externalRules,omitempty"`
	// ResourceRules (the adapter's metrics.k8s.io) are accepted and ignored:
	// kmetrics serves metrics.k8s.io from the kubelets itself.
	ResourceRules map[string]any `json:"resourceRules,omitempty"`
}

// Rule maps the series selected by SeriesQuery to metrics.
type Rule struct {
	// SeriesQuery is a series selector, e.g. {__name__=~"^http_.*",namespace!=""}.
	SeriesQuery   string        `json:"seriesQuery"`
	SeriesFilters []RegexFilter `json:"seriesFilters,omitempty"`
	Resources     Resources     `json:"resources,omitempty"`
	Name          NameMapping   `json:"name,omitempty"`
	// MetricsQuery is a Go template (delimiters << >>) over .Series,
	// .LabelMatchers, .GroupBy, .GroupBySlice and .LabelValuesByName.
	MetricsQuery string `json:"metricsQuery"`
}

// RegexFilter keeps series whose name matches Is and does not match IsNot.
type RegexFilter struct {
	Is    string `json:"is,omitempty"`
	IsNot string `json:"isNot,omitempty"`
}

// Resources says which series labels name Kubernetes objects: explicit
// overrides, or a template such as "<<.Resource>>" or
// "kube_<<.Group>>_<<.Resource>>".
type Resources struct {
	Template  string                   `json:"template,omitempty"`
	Overrides map[string]GroupResource `json:"overrides,omitempty"`
	// Namespaced (external rules only): false ignores the request's
	// namespace. Default true.
	Namespaced *bool `json:"namespaced,omitempty"`
}

// GroupResource names a resource, e.g. {group: apps, resource: deployment}.
type GroupResource struct {
	Group    string `json:"group,omitempty"`
	Resource string `json:"resource"`
}

// NameMapping renames a series: the regexp Matches, expanded with As
// (default: the first capture group, or the whole name without one).
type NameMapping struct {
	Matches string `json:"matches,omitempty"`
	As      string `json:"as,omitempty"`
}

// Parse reads a configuration, rejecting unknown fields (a misspelt key in
// an adapter config otherwise silently does nothing).
func Parse(data []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("parsing metrics config: %w", err)
	}
	for i, r := range c.Rules {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("rules[%d]: %w", i, err)
		}
	}
	for i, r := range c.ExternalRules {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("externalRules[%d]: %w", i, err)
		}
	}
	return &c, nil
}

func (r Rule) validate() error {
	if r.SeriesQuery == "" {
		return fmt.Errorf("seriesQuery is required")
	}
	if r.MetricsQuery == "" {
		return fmt.Errorf("metricsQuery is required")
	}
	return nil
}
