package promoperator

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8sdiscovery "k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/kmetrics/kmetrics/pkg/appscrape"
)

// Config says which operator objects kmetrics takes.
type Config struct {
	// MonitorSelector and RuleSelector select ServiceMonitors/PodMonitors
	// and PrometheusRules by label (like a Prometheus object's
	// serviceMonitorSelector and ruleSelector); nil selects all.
	MonitorSelector, RuleSelector labels.Selector
	// Namespaces are the namespaces objects are taken from (like
	// serviceMonitorNamespaceSelector); empty: all.
	Namespaces []string
	// TokenNamespaces are the namespaces whose monitors may send kmetrics'
	// service-account token (bearerTokenFile, as kube-prometheus' monitors
	// ask to reach kube-rbac-proxy). Empty: none.
	TokenNamespaces []string
	// IgnoredMonitors ("namespace/name") are ServiceMonitors and
	// PodMonitors left out: the chart's monitor of kmetrics itself, there
	// for another Prometheus (kmetrics scrapes itself without it).
	IgnoredMonitors []string
	Defaults        Defaults
	// RuleDir holds the PrometheusRules as rule files ("" to leave them
	// out); the evaluator loads RuleGlob(RuleDir).
	RuleDir string
	// PlatformRuleNamespaces are the namespaces whose PrometheusRules read
	// and write every namespace (the prometheus-operator's
	// excludedFromEnforcement: kube-prometheus keeps the kubernetes-mixin
	// rules in monitoring); any other namespace's rules are confined to it.
	PlatformRuleNamespaces []string
}

// JobSink takes the scrape jobs (the application scraper).
type JobSink interface {
	SetJobs(source string, jobs []appscrape.Job) error
}

// Controller watches ServiceMonitors, PodMonitors and PrometheusRules and
// keeps the scraper's jobs and the rule files in step with them.
type Controller struct {
	cfg       Config
	dynamic   dynamic.Interface
	discovery k8sdiscovery.DiscoveryInterface
	objects   Objects
	sink      JobSink
	recorder  record.EventRecorder
	logger    *slog.Logger
	rules     ruleFiles

	dirty     chan struct{}
	mu        sync.Mutex
	informers map[string]cache.SharedIndexInformer // by resource, once its CRD is served
	reported  map[string]string                    // object key → last error reported ("" valid)
	lastJobs  string
}

var _ JobSink = (*appscrape.Scraper)(nil)

// The resources kmetrics reads, all monitoring.coreos.com/v1.
const (
	resServiceMonitors  = "servicemonitors"
	resPodMonitors      = "podmonitors"
	resPrometheusRules  = "prometheusrules"
	sourceMonitors      = "monitors"
	crdPollEvery        = 30 * time.Second
	rebuildEvery        = time.Minute // Secrets a monitor names may change without an event
	settleAfterAnEvent  = time.Second
	monitoringGroupVers = "monitoring.coreos.com/v1"
)

// New builds a controller. recorder may be nil (no events).
func New(cfg Config, dyn dynamic.Interface, disc k8sdiscovery.DiscoveryInterface, objects Objects, sink JobSink,
	recorder record.EventRecorder, logger *slog.Logger) (*Controller, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MonitorSelector == nil {
		cfg.MonitorSelector = labels.Everything()
	}
	if cfg.RuleSelector == nil {
		cfg.RuleSelector = labels.Everything()
	}
	if cfg.RuleDir != "" {
		if err := os.MkdirAll(cfg.RuleDir, 0o700); err != nil {
			return nil, fmt.Errorf("the PrometheusRule directory: %w", err)
		}
	}
	return &Controller{cfg: cfg, dynamic: dyn, discovery: disc, objects: objects, sink: sink, recorder: recorder, logger: logger,
		rules: ruleFiles{dir: cfg.RuleDir}, dirty: make(chan struct{}, 1),
		informers: map[string]cache.SharedIndexInformer{}, reported: map[string]string{}}, nil
}

// RuleGlob is where the rule evaluator finds the PrometheusRules kept in
// dir.
func RuleGlob(dir string) string { return ruleFiles{dir: dir}.glob() }

// Run watches until ctx ends. The CRDs need not exist: they are looked for
// every 30 s and watched once served.
func (c *Controller) Run(ctx context.Context) {
	// The rule files of the last run stay until the first sync (alerts keep
	// their state across a restart); files of objects deleted meanwhile go
	// then.
	poll := time.NewTicker(crdPollEvery)
	defer poll.Stop()
	rebuild := time.NewTicker(rebuildEvery)
	defer rebuild.Stop()
	c.startServed(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			c.startServed(ctx)
			continue
		case <-rebuild.C:
		case <-c.dirty:
			// Let a burst of changes (kubectl apply -f dir/) settle.
			select {
			case <-time.After(settleAfterAnEvent):
			case <-ctx.Done():
				return
			}
		}
		if !c.synced() {
			// A half-listed resource would look like deleted objects.
			time.AfterFunc(settleAfterAnEvent, c.markDirty)
			continue
		}
		c.sync(ctx)
	}
}

// startServed starts an informer for each resource whose CRD is served.
func (c *Controller) startServed(ctx context.Context) {
	list, err := c.discovery.ServerResourcesForGroupVersion(monitoringGroupVers)
	if err != nil {
		return // not installed (yet)
	}
	served := map[string]bool{}
	for _, r := range list.APIResources {
		served[r.Name] = true
	}
	for _, res := range []string{resServiceMonitors, resPodMonitors, resPrometheusRules} {
		c.mu.Lock()
		_, running := c.informers[res]
		c.mu.Unlock()
		if running || !served[res] || (res == resPrometheusRules && c.cfg.RuleDir == "") {
			continue
		}
		sel := c.cfg.MonitorSelector
		if res == resPrometheusRules {
			sel = c.cfg.RuleSelector
		}
		gvr := schema.GroupVersionResource{Group: monitoringv1.SchemeGroupVersion.Group, Version: "v1", Resource: res}
		inf := dynamicinformer.NewFilteredDynamicInformer(c.dynamic, gvr, metav1.NamespaceAll, 0, cache.Indexers{},
			func(o *metav1.ListOptions) { o.LabelSelector = sel.String() }).Informer()
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { c.markDirty() }, UpdateFunc: func(any, any) { c.markDirty() }, DeleteFunc: func(any) { c.markDirty() },
		})
		go inf.Run(ctx.Done())
		c.mu.Lock()
		c.informers[res] = inf
		c.mu.Unlock()
		c.logger.Info("Watching prometheus-operator objects", "resource", res, "selector", sel.String())
	}
}

// synced says whether every watched resource has been listed.
func (c *Controller) synced() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, inf := range c.informers {
		if !inf.HasSynced() {
			return false
		}
	}
	return true
}

func (c *Controller) markDirty() {
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

// objectsOf lists a resource's objects in the namespaces taken, sorted.
func (c *Controller) objectsOf(res string) []*unstructured.Unstructured {
	c.mu.Lock()
	inf := c.informers[res]
	c.mu.Unlock()
	if inf == nil || !inf.HasSynced() {
		return nil
	}
	taken := map[string]bool{}
	for _, ns := range c.cfg.Namespaces {
		taken[ns] = true
	}
	var out []*unstructured.Unstructured
	for _, obj := range inf.GetStore().List() {
		u, ok := obj.(*unstructured.Unstructured)
		if ok && (len(taken) == 0 || taken[u.GetNamespace()]) {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].GetNamespace()+"/"+out[i].GetName() < out[j].GetNamespace()+"/"+out[j].GetName()
	})
	return out
}

// sync rebuilds every job and rule file from the objects.
func (c *Controller) sync(ctx context.Context) {
	r := resolver{ctx: ctx, objects: c.objects, tokenNamespaces: map[string]bool{}}
	for _, ns := range c.cfg.TokenNamespaces {
		r.tokenNamespaces[ns] = true
	}
	counts := map[[2]string]float64{}
	var jobs []appscrape.Job
	h := sha256.New() // of the generated configuration, secrets included
	ignored := map[string]bool{}
	for _, m := range c.cfg.IgnoredMonitors {
		ignored[m] = true
	}
	for _, res := range []string{resServiceMonitors, resPodMonitors} {
		for _, u := range c.objectsOf(res) {
			if ignored[u.GetNamespace()+"/"+u.GetName()] {
				continue
			}
			built, text, err := c.monitorJobs(res, u, r)
			c.report(u, err)
			counts[[2]string{u.GetKind(), state(err)}]++
			jobs = append(jobs, built...)
			fmt.Fprintf(h, "%s\x00%s\x00", u.GetNamespace(), text)
		}
	}
	// An unchanged set is not applied again (the minutely rebuild).
	if fp := fmt.Sprintf("%x", h.Sum(nil)); fp != c.lastJobs {
		if err := c.sink.SetJobs(sourceMonitors, jobs); err != nil {
			c.logger.Error("Applying the monitors' scrape jobs", "err", err)
		} else {
			c.lastJobs = fp
			c.logger.Info("Applied the monitors' scrape jobs", "jobs", len(jobs))
		}
	}
	if c.cfg.RuleDir != "" {
		keep := map[string]bool{}
		for _, u := range c.objectsOf(resPrometheusRules) {
			path := c.rules.fileName(u.GetNamespace(), u.GetName())
			err := c.ruleObject(u)
			c.report(u, err)
			counts[[2]string{u.GetKind(), state(err)}]++
			if _, statErr := os.Stat(path); err == nil || statErr == nil {
				keep[path] = true // an invalid change keeps the last valid rules, as a rule file would
			}
		}
		if err := c.rules.prune(keep); err != nil {
			c.logger.Error("Removing the files of deleted PrometheusRules", "err", err)
		}
	}
	objectsGauge.Reset()
	for k, n := range counts {
		objectsGauge.WithLabelValues(k[0], k[1]).Set(n)
	}
}

func state(err error) string {
	if err != nil {
		return "invalid"
	}
	return "valid"
}

// monitorJobs converts one monitor into scrape jobs (and the text they
// were parsed from).
func (c *Controller) monitorJobs(res string, u *unstructured.Unstructured, r resolver) ([]appscrape.Job, string, error) {
	var generated []job
	var err error
	switch res {
	case resServiceMonitors:
		var m monitoringv1.ServiceMonitor
		if err = runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &m); err != nil {
			return nil, "", err
		}
		generated, err = serviceMonitorJobs(&m, r)
	case resPodMonitors:
		var m monitoringv1.PodMonitor
		if err = runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &m); err != nil {
			return nil, "", err
		}
		generated, err = podMonitorJobs(&m, r)
	}
	if err != nil {
		return nil, "", err
	}
	configs, text, err := parse(c.cfg.Defaults, generated, c.logger)
	if err != nil {
		return nil, "", err
	}
	jobs := make([]appscrape.Job, len(configs))
	for i, sc := range configs {
		jobs[i] = appscrape.Job{Config: sc, Tenant: u.GetNamespace()}
	}
	return jobs, text, nil
}

// ruleObject writes one PrometheusRule's file when it is valid.
func (c *Controller) ruleObject(u *unstructured.Unstructured) error {
	var pr monitoringv1.PrometheusRule
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &pr); err != nil {
		return err
	}
	content, err := ruleFile(&pr, !slices.Contains(c.cfg.PlatformRuleNamespaces, pr.Namespace), c.logger)
	if err != nil {
		return err
	}
	return c.rules.write(u.GetNamespace(), u.GetName(), content)
}

// report logs and records an event when an object's state changes:
// invalid (why), or valid again.
func (c *Controller) report(u *unstructured.Unstructured, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	base := u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
	c.mu.Lock()
	last, seen := c.reported[base]
	c.reported[base] = msg
	c.mu.Unlock()
	if seen && last == msg {
		return
	}
	if err != nil {
		c.logger.Error("Refusing a prometheus-operator object", "kind", u.GetKind(), "namespace", u.GetNamespace(), "name", u.GetName(), "err", err)
		if c.recorder != nil {
			c.recorder.Event(u, corev1.EventTypeWarning, "InvalidConfiguration", "kmetrics: "+msg)
		}
		return
	}
	if seen {
		c.logger.Info("Prometheus-operator object valid again", "kind", u.GetKind(), "namespace", u.GetNamespace(), "name", u.GetName())
		if c.recorder != nil {
			c.recorder.Event(u, corev1.EventTypeNormal, "Configured", "kmetrics: applied")
		}
	}
}

var objectsGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "kmetrics_operator_objects",
	Help: "ServiceMonitors, PodMonitors and PrometheusRules taken by kmetrics, by kind and state (valid, invalid).",
}, []string{"kind", "state"})

// RegisterMetrics registers the controller's metrics.
func RegisterMetrics(reg prometheus.Registerer) { _ = reg.Register(objectsGauge) }
