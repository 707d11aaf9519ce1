package provider

import (
	"context"
	"maps"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/metrics/pkg/apis/external_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// ListAllExternalMetrics is the external metrics discovery.
func (p *MetricsProvider) ListAllExternalMetrics() []cmprovider.ExternalMetricInfo {
	return p.catalog.Load().externalList
}

// GetExternalMetric answers an External metric: the series of the metric in
// the namespace that match the selector, one item per combination of the
// selector's label values (the HPA sums the items).
func (p *MetricsProvider) GetExternalMetric(ctx context.Context, namespace string, metricSelector k8slabels.Selector, info cmprovider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	c := p.catalog.Load()
	if c.snapshot {
		return nil, errNoHistoryYet
	}
	srcs := c.external[info.Metric]
	if len(srcs) == 0 {
		return nil, notFound("external metric %s is not served: no series is named for it (see externalRules in --custom-metrics.config)", info.Metric)
	}
	src := srcs[0]
	matchers, err := selectorMatchers(metricSelector)
	if err != nil {
		return nil, err
	}
	groupBy := map[string]bool{}
	for _, m := range matchers {
		groupBy[m.Name] = true
	}
	if src.namer.Namespaced() && namespace != "" {
		if nsLabel, err := src.namer.LabelFor(namespacesGR); err == nil {
			matchers = append(matchers, labels.MustNewMatcher(labels.MatchEqual, nsLabel, namespace))
		}
	}
	samples, err := p.evaluate(ctx, p.db, src, matchers, slices.Sorted(maps.Keys(groupBy)))
	if err != nil {
		return nil, err
	}
	if len(samples) == 0 {
		return nil, notFound("external metric %s has no current value%s%s", info.Metric, inNamespace(namespace), withSelector(metricSelector))
	}
	slices.SortFunc(samples, func(a, b labeledSample) int { return labels.Compare(a.labels, b.labels) })
	list := &external_metrics.ExternalMetricValueList{}
	for _, s := range samples {
		list.Items = append(list.Items, external_metrics.ExternalMetricValue{
			MetricName:    info.Metric,
			MetricLabels:  s.labels.Map(),
			Timestamp:     metav1.NewTime(time.UnixMilli(s.t)),
			WindowSeconds: windowSeconds(s.window),
			Value:         metricQuantity(s.v),
		})
	}
	return list, nil
}
