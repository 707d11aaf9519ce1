package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promstorage "github.com/prometheus/prometheus/storage"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/kmetrics/kmetrics/pkg/rules/naming"
)

// ObjectLister lists objects from informer caches, so a labelSelector costs
// no request to the API server.
type ObjectLister interface {
	// List returns the names of the objects of gr in namespace ("" for a
	// cluster-scoped resource) whose labels match selector.
	List(ctx context.Context, gr schema.GroupResource, namespace string, selector k8slabels.Selector) ([]string, error)
}

// MetricsProvider answers custom.metrics.k8s.io and external.metrics.k8s.io
// with PromQL over the TSDB, named by prometheus-adapter style rules.
type MetricsProvider struct {
	db       promstorage.Queryable
	engine   promql.QueryEngine
	mapper   meta.RESTMapper
	objects  ObjectLister
	lookback time.Duration
	now      func() time.Time
	slots    chan struct{} // bounds concurrent queries (nil: unbounded)

	rules   atomic.Pointer[naming.Rules]
	catalog atomic.Pointer[catalog]
}

var (
	_ cmprovider.CustomMetricsProvider   = (*MetricsProvider)(nil)
	_ cmprovider.ExternalMetricsProvider = (*MetricsProvider)(nil)
)

var namespacesGR = schema.GroupResource{Resource: "namespaces"}

// NewMetricsProvider serves metrics named by rules; discovery lists the
// metrics whose series had a sample in the last lookback.
func NewMetricsProvider(db promstorage.Queryable, engine promql.QueryEngine, mapper meta.RESTMapper, objects ObjectLister, rules *naming.Rules, lookback time.Duration) *MetricsProvider {
	p := &MetricsProvider{db: db, engine: engine, mapper: mapper, objects: objects, lookback: lookback, now: time.Now}
	p.rules.Store(rules)
	p.catalog.Store(&catalog{})
	return p
}

// WithMaxConcurrency bounds the queries in flight at once; more wait.
func (p *MetricsProvider) WithMaxConcurrency(n int) *MetricsProvider {
	if n > 0 {
		p.slots = make(chan struct{}, n)
	}
	return p
}

// SetRules puts new rules in force (a reloaded config); nothing changes if
// the catalog cannot be built with them.
func (p *MetricsProvider) SetRules(ctx context.Context, rules *naming.Rules) error {
	now := p.now()
	c, err := buildCatalog(ctx, p.db, rules, p.isNamespaced, now.Add(-p.lookback), now)
	if err != nil {
		return err
	}
	p.rules.Store(rules)
	p.catalog.Store(c)
	return nil
}

// Refresh rebuilds discovery from the TSDB's recent series.
func (p *MetricsProvider) Refresh(ctx context.Context) error {
	now := p.now()
	rules := p.rules.Load()
	c, err := buildCatalog(ctx, p.db, rules, p.isNamespaced, now.Add(-p.lookback), now)
	if err != nil {
		return err
	}
	// A reload that raced this refresh wins.
	if p.rules.Load() == rules {
		p.catalog.Store(c)
	}
	return nil
}

// RunDiscovery refreshes the catalog every interval until ctx ends.
func (p *MetricsProvider) RunDiscovery(ctx context.Context, interval time.Duration) {
	for {
		if err := p.Refresh(ctx); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "Refreshing custom metrics discovery")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Discovered reports whether discovery lists anything (a readiness
// condition: client-go's discovery breaks on an empty group), from the TSDB
// or from the snapshot of the last run.
func (p *MetricsProvider) Discovered() bool {
	c := p.catalog.Load()
	return len(c.customList) > 0
}

// ListAllMetrics is the custom metrics discovery.
func (p *MetricsProvider) ListAllMetrics() []cmprovider.CustomMetricInfo {
	return p.catalog.Load().customList
}

// GetMetricByName answers an Object metric (one named object, a namespace,
// or a node).
func (p *MetricsProvider) GetMetricByName(ctx context.Context, name types.NamespacedName, info cmprovider.CustomMetricInfo, metricSelector k8slabels.Selector) (*custom_metrics.MetricValue, error) {
	gr, src, err := p.lookup(info)
	if err != nil {
		return nil, err
	}
	values, err := p.customValues(ctx, src, gr, name.Namespace, name.Name, metricSelector, nil)
	if err != nil {
		return nil, err
	}
	v, ok := values[name.Name]
	if !ok {
		return nil, notFound("metric %s has no current value for %s %s%s%s", info.Metric, gr, name.Name, inNamespace(name.Namespace), withSelector(metricSelector))
	}
	tmpl, err := p.valueTemplate(gr, name.Namespace, info.Metric, metricSelector)
	if err != nil {
		return nil, err
	}
	mv := withSample(tmpl, name.Name, v)
	return &mv, nil
}

// GetMetricBySelector answers a Pods metric (and any labelSelector over a
// resource): the objects come from the informer cache, their values from
// one query grouped by the object label.
func (p *MetricsProvider) GetMetricBySelector(ctx context.Context, namespace string, selector k8slabels.Selector, info cmprovider.CustomMetricInfo, metricSelector k8slabels.Selector) (*custom_metrics.MetricValueList, error) {
	gr, src, err := p.lookup(info)
	if err != nil {
		return nil, err
	}
	names, err := p.objects.List(ctx, gr, namespace, selector)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("listing %s: %w", gr, err))
	}
	if len(names) == 0 {
		return nil, notFound("no %s match the selector %q%s", gr, selector.String(), inNamespace(namespace))
	}
	values, err := p.customValues(ctx, src, gr, namespace, "", metricSelector, names)
	if err != nil {
		return nil, err
	}
	tmpl, err := p.valueTemplate(gr, namespace, info.Metric, metricSelector)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	list := &custom_metrics.MetricValueList{}
	for _, name := range names {
		if v, ok := values[name]; ok {
			list.Items = append(list.Items, withSample(tmpl, name, v))
		}
	}
	if len(list.Items) == 0 {
		return nil, notFound("metric %s has no current value for any of the %d %s matching the selector %q%s%s",
			info.Metric, len(names), gr, selector.String(), inNamespace(namespace), withSelector(metricSelector))
	}
	return list, nil
}

// lookup finds the series a custom metric is served from, or says which
// metrics the resource does have.
func (p *MetricsProvider) lookup(info cmprovider.CustomMetricInfo) (schema.GroupResource, source, error) {
	gr := info.GroupResource
	if gvr, err := p.mapper.ResourceFor(gr.WithVersion("")); err == nil {
		gr = gvr.GroupResource()
	}
	c := p.catalog.Load()
	if c.snapshot {
		return gr, source{}, errNoHistoryYet
	}
	srcs := c.custom[customKey{gr, info.Metric}]
	if len(srcs) == 0 {
		known := c.metricsFor(gr, info.Metric, 10)
		if len(known) == 0 {
			return gr, source{}, notFound("metric %s is not served for %s: no metric is (no current series maps to %s under the rules of --custom-metrics.config)", info.Metric, gr, gr)
		}
		return gr, source{}, notFound("metric %s is not served for %s; metrics for %s: %s", info.Metric, gr, gr, strings.Join(known, ", "))
	}
	return gr, srcs[0], nil
}

// sample is one query result: the value, the time of the newest sample it
// was computed from, and the range it covers (0: an instant value).
type sample struct {
	v      float64
	t      int64
	window time.Duration
}

// customValues evaluates the metric for the objects of gr, keyed by object
// name: restricted to namespace (if namespaced), name (if given) and the
// objects named in only (if given).
func (p *MetricsProvider) customValues(ctx context.Context, src source, gr schema.GroupResource, namespace, name string, metricSelector k8slabels.Selector, only []string) (map[string]sample, error) {
	label, err := src.namer.LabelFor(gr)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	matchers, err := selectorMatchers(metricSelector)
	if err != nil {
		return nil, err
	}
	if namespace != "" {
		nsLabel, err := src.namer.LabelFor(namespacesGR)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		matchers = append(matchers, labels.MustNewMatcher(labels.MatchEqual, nsLabel, namespace))
	}
	if name != "" {
		matchers = append(matchers, labels.MustNewMatcher(labels.MatchEqual, label, name))
	}
	var db promstorage.Queryable = p.db
	if only != nil {
		f := &objectFilter{Queryable: p.db, label: label, names: make(map[string]struct{}, len(only)), injected: matchers}
		for _, n := range only {
			f.names[n] = struct{}{}
		}
		db = f
	}
	samples, err := p.evaluate(ctx, db, src, matchers, []string{label})
	if err != nil {
		return nil, err
	}
	out := make(map[string]sample, len(samples))
	for _, s := range samples {
		if obj := s.labels.Get(label); obj != "" {
			out[obj] = s.sample
		}
	}
	return out, nil
}

// valueTemplate is what every item of one answer shares — the described
// kind and namespace, the metric and its selector — worked out once.
func (p *MetricsProvider) valueTemplate(gr schema.GroupResource, namespace, metric string, metricSelector k8slabels.Selector) (custom_metrics.MetricValue, error) {
	gvk, err := p.mapper.KindFor(gr.WithVersion(""))
	if err != nil {
		return custom_metrics.MetricValue{}, apierrors.NewInternalError(fmt.Errorf("kind of %s: %w", gr, err))
	}
	mv := custom_metrics.MetricValue{
		DescribedObject: custom_metrics.ObjectReference{
			// GroupVersion().String() is "v1" for the core group, never "/v1".
			APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Namespace: namespace,
		},
		Metric: custom_metrics.MetricIdentifier{Name: metric},
	}
	if !metricSelector.Empty() {
		if sel, err := metav1.ParseToLabelSelector(metricSelector.String()); err == nil {
			mv.Metric.Selector = sel
		}
	}
	return mv, nil
}

// withSample is the template filled for one object.
func withSample(mv custom_metrics.MetricValue, name string, s sample) custom_metrics.MetricValue {
	mv.DescribedObject.Name = name
	mv.Timestamp = metav1.NewTime(time.UnixMilli(s.t))
	mv.WindowSeconds = windowSeconds(s.window)
	mv.Value = metricQuantity(s.v)
	return mv
}

func (p *MetricsProvider) isNamespaced(gr schema.GroupResource) bool {
	gvk, err := p.mapper.KindFor(gr.WithVersion(""))
	if err != nil {
		return false
	}
	m, err := p.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		klog.V(2).InfoS("No REST mapping", "resource", gr, "err", err)
		return false
	}
	return m.Scope.Name() == meta.RESTScopeNameNamespace
}

func notFound(format string, args ...any) error {
	err := apierrors.NewNotFound(schema.GroupResource{}, "")
	err.ErrStatus.Message = fmt.Sprintf(format, args...)
	err.ErrStatus.Details = nil
	return err
}

func inNamespace(ns string) string {
	if ns == "" {
		return ""
	}
	return fmt.Sprintf(" in namespace %s", ns)
}

func withSelector(s k8slabels.Selector) string {
	if s == nil || s.Empty() {
		return ""
	}
	return fmt.Sprintf(" with metricLabelSelector %q", s.String())
}
