package appscrape

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/kubernetes"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/util/strutil"
	corev1 "k8s.io/api/core/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"
)

// Informers are the shared informers kmetrics already holds; the built-in
// jobs and the jobs of ServiceMonitors/PodMonitors discover from them
// instead of opening watches of their own (the API server already serves
// kmetrics two pod watches).
type Informers struct {
	Pods     cache.SharedIndexInformer // whole pods (annotations, ports, status)
	Services cache.SharedIndexInformer
	// Endpoints, when set, gives the Endpoints informer (started on first
	// use: only ServiceMonitors need it).
	Endpoints func() cache.SharedIndexInformer
}

// informerSD is a discovery.Config over the shared informers. It is not a
// YAML mechanism: jobs are given it in code, in place of an in-cluster
// kubernetes_sd_configs.
type informerSD struct {
	role kubernetes.Role // RolePod or RoleEndpoint
	// bySelector resolves Services by their selector over the pod and
	// Service informers (the built-in job); otherwise the endpoints role
	// reads Endpoints, as kubernetes_sd does.
	bySelector bool
	// namespaces, when set, limits the targets to these namespaces.
	namespaces []string
	// tenant, when set, is the namespace charged for the targets' series
	// (the namespace of the monitor that asked for them).
	tenant    string
	informers *Informers
}

var _ discovery.Config = (*informerSD)(nil)

func (c *informerSD) Name() string { return "kmetrics-informers" }

// discoveryEvents counts informer events as kubernetes_sd does
// (prometheus_sd_kubernetes_events_total); shared by every job.
var discoveryEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "kmetrics_scrape_discovery_events_total",
	Help: "Pod, Service and Endpoints events seen by the application jobs' discovery, by role and event.",
}, []string{"role", "event"})

func (c *informerSD) NewDiscoverer(o discovery.DiscovererOptions) (discovery.Discoverer, error) {
	if c.informers == nil || c.informers.Pods == nil {
		return nil, fmt.Errorf("no shared informers for %s discovery", c.role)
	}
	d := &sharedDiscoverer{namespaces: map[string]bool{}, tenant: model.LabelValue(c.tenant)}
	for _, ns := range c.namespaces {
		d.namespaces[ns] = true
	}
	switch {
	case c.role == kubernetes.RolePod:
		// Prometheus' own pod role, over the shared informer: the same
		// __meta_kubernetes_pod_* labels as kubernetes_sd_configs.
		d.inner = kubernetes.NewPod(o.Logger, d.track(c.informers.Pods), nil, nil, nil, nil, false, false, false, discoveryEvents)
	case c.role == kubernetes.RoleEndpoint && c.bySelector:
		d.inner = newServiceEndpoints(o.Logger, c.informers)
	case c.role == kubernetes.RoleEndpoint && c.informers.Endpoints != nil && c.informers.Services != nil:
		// Prometheus' own endpoints role over shared informers.
		d.inner = kubernetes.NewEndpoints(o.Logger, d.track(c.informers.Endpoints()), d.track(c.informers.Services), d.track(c.informers.Pods),
			nil, nil, nil, nil, false, false, false, discoveryEvents)
	default:
		return nil, fmt.Errorf("no shared informers for %s discovery", c.role)
	}
	return d, nil
}

func (c *informerSD) NewDiscovererMetrics(prometheus.Registerer, discovery.RefreshMetricsInstantiator) discovery.DiscovererMetrics {
	return noMetrics{}
}

type noMetrics struct{}

func (noMetrics) Register() error { return nil }
func (noMetrics) Unregister()     {}

// sharedDiscoverer runs a discoverer over shared informers: it removes the
// event handlers the discoverer added when it stops (Prometheus'
// discoverers own their informers and never remove them; on shared ones
// every reload would leave one behind), keeps only the chosen namespaces
// and marks the tenant.
type sharedDiscoverer struct {
	inner      discovery.Discoverer
	namespaces map[string]bool
	tenant     model.LabelValue

	mu      sync.Mutex
	tracked []*trackedInformer
}

// metaTenant names the namespace whose budget a target's series are
// charged to, when it is not the target's own.
const metaTenant = "__meta_kmetrics_tenant"

func (d *sharedDiscoverer) track(inf cache.SharedIndexInformer) *trackedInformer {
	t := &trackedInformer{SharedIndexInformer: inf}
	d.mu.Lock()
	d.tracked = append(d.tracked, t)
	d.mu.Unlock()
	return t
}

func (d *sharedDiscoverer) Run(ctx context.Context, ch chan<- []*targetgroup.Group) {
	defer func() {
		for _, t := range d.tracked {
			t.removeAll()
		}
	}()
	if len(d.namespaces) == 0 && d.tenant == "" {
		d.inner.Run(ctx, ch)
		return
	}
	inner := make(chan []*targetgroup.Group)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.inner.Run(ctx, inner)
	}()
	defer func() { <-done }()
	for {
		select {
		case <-ctx.Done():
			return
		case groups := <-inner:
			out := make([]*targetgroup.Group, 0, len(groups))
			for _, g := range groups {
				out = append(out, d.scope(g))
			}
			select {
			case ch <- out:
			case <-ctx.Done():
				return
			}
		}
	}
}

// scope empties a group of another namespace (it may have been in scope
// never, but an empty group is always a correct update) and marks the
// tenant on the others.
func (d *sharedDiscoverer) scope(g *targetgroup.Group) *targetgroup.Group {
	if g == nil {
		return g
	}
	ns := string(g.Labels[metaNamespace])
	if len(d.namespaces) > 0 && !d.namespaces[ns] {
		return &targetgroup.Group{Source: g.Source}
	}
	if d.tenant == "" {
		return g
	}
	ls := g.Labels.Clone()
	if ls == nil {
		ls = model.LabelSet{}
	}
	ls[metaTenant] = d.tenant
	return &targetgroup.Group{Source: g.Source, Targets: g.Targets, Labels: ls}
}

// trackedInformer remembers the handlers added through it.
type trackedInformer struct {
	cache.SharedIndexInformer
	mu   sync.Mutex
	regs []cache.ResourceEventHandlerRegistration
}

func (t *trackedInformer) AddEventHandler(h cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error) {
	reg, err := t.SharedIndexInformer.AddEventHandler(h)
	if err == nil {
		t.mu.Lock()
		t.regs = append(t.regs, reg)
		t.mu.Unlock()
	}
	return reg, err
}

func (t *trackedInformer) removeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.regs {
		_ = t.SharedIndexInformer.RemoveEventHandler(r)
	}
	t.regs = nil
}

// serviceEndpoints discovers what Prometheus' endpoints role finds for a
// Service with a selector — its selected pods, one target per Service port
// — computed from the shared pod and Service informers instead of a watch
// on Endpoints. The labels are the endpoints role's
// (__meta_kubernetes_service_*, __meta_kubernetes_endpoint_*,
// __meta_kubernetes_pod_*), so the classic kubernetes-service-endpoints
// relabeling applies unchanged. Services without a selector (hand-written
// Endpoints) need a kubernetes_sd_configs job in --scrape.config.
type serviceEndpoints struct {
	logger    *slog.Logger
	informers *Informers
	dirty     chan struct{}
}

func newServiceEndpoints(logger *slog.Logger, inf *Informers) *serviceEndpoints {
	return &serviceEndpoints{logger: logger, informers: inf, dirty: make(chan struct{}, 1)}
}

// resyncEvery bounds how often the whole set is rebuilt: events only mark
// it dirty, so a burst of pod churn costs one rebuild.
const resyncEvery = 2 * time.Second

func (d *serviceEndpoints) Run(ctx context.Context, ch chan<- []*targetgroup.Group) {
	mark := func(role, event string) func() {
		c := discoveryEvents.WithLabelValues(role, event)
		return func() {
			c.Inc()
			select {
			case d.dirty <- struct{}{}:
			default:
			}
		}
	}
	for inf, role := range map[cache.SharedIndexInformer]string{d.informers.Pods: "pod", d.informers.Services: "service"} {
		add, update, del := mark(role, "add"), mark(role, "update"), mark(role, "delete")
		reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { add() }, UpdateFunc: func(any, any) { update() }, DeleteFunc: func(any) { del() },
		})
		if err != nil {
			d.logger.Error("Watching for service endpoints", "err", err)
			return
		}
		defer func() { _ = inf.RemoveEventHandler(reg) }()
	}
	if !cache.WaitForCacheSync(ctx.Done(), d.informers.Pods.HasSynced, d.informers.Services.HasSynced) {
		return
	}
	sent := map[string]bool{}
	tick := time.NewTicker(resyncEvery)
	defer tick.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case <-d.dirty:
			default:
				continue
			}
		}
		groups := d.groups()
		now := map[string]bool{}
		for _, g := range groups {
			now[g.Source] = true
		}
		for src := range sent {
			if !now[src] {
				groups = append(groups, &targetgroup.Group{Source: src}) // gone: no targets
			}
		}
		sent = now
		select {
		case ch <- groups:
		case <-ctx.Done():
			return
		}
	}
}

var _ discovery.Discoverer = (*serviceEndpoints)(nil)

// groups builds one target group per Service with a selector.
func (d *serviceEndpoints) groups() []*targetgroup.Group {
	var out []*targetgroup.Group
	for _, obj := range d.informers.Services.GetStore().List() {
		svc, ok := obj.(*corev1.Service)
		if !ok || len(svc.Spec.Selector) == 0 {
			continue
		}
		out = append(out, d.group(svc))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out
}

func (d *serviceEndpoints) group(svc *corev1.Service) *targetgroup.Group {
	tg := &targetgroup.Group{
		Source: "endpoints/" + svc.Namespace + "/" + svc.Name,
		Labels: model.LabelSet{
			"__meta_kubernetes_namespace":      model.LabelValue(svc.Namespace),
			"__meta_kubernetes_endpoints_name": model.LabelValue(svc.Name),
			"__meta_kubernetes_service_name":   model.LabelValue(svc.Name),
		},
	}
	addMeta(tg.Labels, "service", svc.Labels, svc.Annotations)
	selector := k8slabels.SelectorFromSet(svc.Spec.Selector)
	pods, _ := d.informers.Pods.GetIndexer().ByIndex(cache.NamespaceIndex, svc.Namespace)
	sort.Slice(pods, func(i, j int) bool { return pods[i].(*corev1.Pod).Name < pods[j].(*corev1.Pod).Name })
	for _, obj := range pods {
		pod, ok := obj.(*corev1.Pod)
		// As the EndpointSlice controller: pods with an address that are
		// not terminating or done; not-ready ones are listed not ready.
		if !ok || pod.Status.PodIP == "" || pod.DeletionTimestamp != nil ||
			pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed ||
			!selector.Matches(k8slabels.Set(pod.Labels)) {
			continue
		}
		ready := podReady(pod)
		for _, port := range svc.Spec.Ports {
			target, ok := targetPort(pod, port)
			if !ok {
				continue
			}
			ls := model.LabelSet{
				model.AddressLabel:                               model.LabelValue(pod.Status.PodIP + ":" + strconv.Itoa(target)),
				"__meta_kubernetes_endpoint_port_name":           model.LabelValue(port.Name),
				"__meta_kubernetes_endpoint_port_protocol":       model.LabelValue(port.Protocol),
				"__meta_kubernetes_endpoint_ready":               model.LabelValue(ready),
				"__meta_kubernetes_endpoint_address_target_kind": "Pod",
				"__meta_kubernetes_endpoint_address_target_name": model.LabelValue(pod.Name),
				"__meta_kubernetes_endpoint_node_name":           model.LabelValue(pod.Spec.NodeName),
				"__meta_kubernetes_pod_name":                     model.LabelValue(pod.Name),
				"__meta_kubernetes_pod_ip":                       model.LabelValue(pod.Status.PodIP),
				"__meta_kubernetes_pod_uid":                      model.LabelValue(pod.UID),
				"__meta_kubernetes_pod_node_name":                model.LabelValue(pod.Spec.NodeName),
				"__meta_kubernetes_pod_host_ip":                  model.LabelValue(pod.Status.HostIP),
				"__meta_kubernetes_pod_phase":                    model.LabelValue(pod.Status.Phase),
				"__meta_kubernetes_pod_ready":                    model.LabelValue(ready),
			}
			addMeta(ls, "pod", pod.Labels, pod.Annotations)
			tg.Targets = append(tg.Targets, ls)
		}
	}
	return tg
}

// targetPort resolves a Service port on a pod as the EndpointSlice
// controller does: a number, a named container port, or the port itself.
func targetPort(pod *corev1.Pod, port corev1.ServicePort) (int, bool) {
	switch {
	case port.TargetPort.Type == intstr.String && port.TargetPort.StrVal != "":
		for _, c := range pod.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == port.TargetPort.StrVal && (p.Protocol == port.Protocol || p.Protocol == "" && port.Protocol == corev1.ProtocolTCP) {
					return int(p.ContainerPort), true
				}
			}
		}
		return 0, false
	case port.TargetPort.IntValue() > 0:
		return port.TargetPort.IntValue(), true
	default:
		return int(port.Port), port.Port > 0
	}
}

func podReady(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return strconv.FormatBool(c.Status == corev1.ConditionTrue)
		}
	}
	return "unknown"
}

// addMeta adds an object's labels and annotations as kubernetes_sd names
// them: __meta_kubernetes_<role>_label_<name> and _labelpresent_<name>,
// _annotation_ and _annotationpresent_ likewise.
func addMeta(ls model.LabelSet, role string, labels, annotations map[string]string) {
	prefix := model.LabelName("__meta_kubernetes_" + role + "_")
	for k, v := range labels {
		name := strutil.SanitizeLabelName(k)
		ls[prefix+"label_"+model.LabelName(name)] = model.LabelValue(v)
		ls[prefix+"labelpresent_"+model.LabelName(name)] = "true"
	}
	for k, v := range annotations {
		name := strutil.SanitizeLabelName(k)
		ls[prefix+"annotation_"+model.LabelName(name)] = model.LabelValue(v)
		ls[prefix+"annotationpresent_"+model.LabelName(name)] = "true"
	}
}
