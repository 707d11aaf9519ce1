package kubestate

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
)

// Config selects what is rendered, with kube-state-metrics' flag semantics.
type Config struct {
	// Resources enabled (kube-state-metrics' --resources names); empty: all
	// but Secrets.
	Resources []string
	// Allowlist: only families whose name matches one of these (fully) are
	// written (--metric-allowlist); empty: the default families (the ones
	// dashboards, alerts and the VPA read), not all of them.
	Allowlist []*regexp.Regexp
	// Denylist: families whose name matches one of these (fully) are left
	// out (--metric-denylist), after the allowlist.
	Denylist []*regexp.Regexp
	// LabelsAllowlist and AnnotationsAllowlist: --metric-labels-allowlist
	// and --metric-annotations-allowlist.
	LabelsAllowlist, AnnotationsAllowlist Allowlist
}

// ParseFamilyList reads --metric-allowlist or --metric-denylist:
// comma-separated regular expressions, each matching whole family names.
func ParseFamilyList(s string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		re, err := regexp.Compile("^(?:" + p + ")$")
		if err != nil {
			return nil, fmt.Errorf("%q: %w", p, err)
		}
		out = append(out, re)
	}
	return out, nil
}

// resourceNames are the resources rendered, in kube-state-metrics' names.
var resourceNames = []string{
	"configmaps", "cronjobs", "daemonsets", "deployments", "endpoints", "horizontalpodautoscalers", "ingresses", "jobs",
	"namespaces", "networkpolicies", "nodes", "persistentvolumeclaims", "persistentvolumes",
	"poddisruptionbudgets", "pods", "replicasets", "resourcequotas", "secrets", "services", "statefulsets",
}

// offByDefault are resources written only when named: listing every Secret
// (even as metadata) needs the list verb on all of them, which kmetrics'
// role does not grant by default (it reads a monitor's Secret by name).
var offByDefault = map[string]bool{"secrets": true}

// Resources lists the resources kmetrics renders.
func Resources() []string { return slices.Clone(resourceNames) }

// IsResource says whether name is one of Resources.
func IsResource(name string) bool { return slices.Contains(resourceNames, name) }

// Enabled returns the resources to watch, checking the names: the ones
// enabled that have a family allowed.
func (c Config) Enabled() (map[string]bool, error) {
	on := map[string]bool{}
	if len(c.Resources) == 0 {
		for _, r := range resourceNames {
			on[r] = !offByDefault[r]
		}
	}
	for _, r := range c.Resources {
		if !IsResource(r) {
			return nil, fmt.Errorf("unknown resource %q (known: %s)", r, strings.Join(resourceNames, ","))
		}
		on[r] = true
	}
	for r := range on {
		on[r] = on[r] && slices.ContainsFunc(familiesOf[r], c.Allowed)
	}
	return on, nil
}

// familiesOf are the families of each resource, by name.
var familiesOf = map[string][]string{
	"pods": names("pod", podFamilies), "nodes": names("node", nodeFamilies), "namespaces": names("namespace", namespaceFamilies),
	"deployments": names("deployment", deploymentFamilies), "statefulsets": names("statefulset", statefulSetFamilies),
	"daemonsets": names("daemonset", daemonSetFamilies), "replicasets": names("replicaset", replicaSetFamilies),
	"jobs": names("job", jobFamilies), "cronjobs": names("cronjob", cronJobFamilies),
	"horizontalpodautoscalers": names("horizontalpodautoscaler", hpaFamilies),
	"persistentvolumeclaims":   names("persistentvolumeclaim", pvcFamilies), "persistentvolumes": names("persistentvolume", pvFamilies),
	"resourcequotas": names("resourcequota", resourceQuotaFamilies), "poddisruptionbudgets": names("poddisruptionbudget", pdbFamilies),
	"services": names("service", serviceFamilies), "ingresses": names("ingress", ingressFamilies),
	"networkpolicies": names("networkpolicy", networkPolicyFamilies), "endpoints": names("endpoint", endpointsFamilies),
	"configmaps": names("configmap", func() []family[*metav1.PartialObjectMetadata] { return metadataFamilies("configmap") }),
	"secrets":    names("secret", func() []family[*metav1.PartialObjectMetadata] { return metadataFamilies("secret") }),
}

func names[T metav1.Object](kind string, families func() []family[T]) []string {
	var out []string
	for _, f := range append(objectFamilies[T](kind, keyMatcher{}, keyMatcher{}), families()...) {
		out = append(out, f.name)
	}
	return out
}

// Sources are the caches read; a nil lister is a resource not enabled.
type Sources struct {
	Pods                     Lister[*corev1.Pod]
	Nodes                    Lister[*corev1.Node]
	Namespaces               Lister[*corev1.Namespace]
	Deployments              Lister[*appsv1.Deployment]
	StatefulSets             Lister[*appsv1.StatefulSet]
	DaemonSets               Lister[*appsv1.DaemonSet]
	ReplicaSets              Lister[*appsv1.ReplicaSet]
	Jobs                     Lister[*batchv1.Job]
	CronJobs                 Lister[*batchv1.CronJob]
	HorizontalPodAutoscalers Lister[*autoscalingv2.HorizontalPodAutoscaler]
	PersistentVolumeClaims   Lister[*corev1.PersistentVolumeClaim]
	PersistentVolumes        Lister[*corev1.PersistentVolume]
	ResourceQuotas           Lister[*corev1.ResourceQuota]
	PodDisruptionBudgets     Lister[*policyv1.PodDisruptionBudget]
	Services                 Lister[*corev1.Service]
	Ingresses                Lister[*networkingv1.Ingress]
	NetworkPolicies          Lister[*networkingv1.NetworkPolicy]
	Endpoints                Lister[*corev1.Endpoints]
	ConfigMaps               Lister[*metav1.PartialObjectMetadata]
	Secrets                  Lister[*metav1.PartialObjectMetadata]
}

// Lister is what a client-go lister of T offers.
type Lister[T any] interface {
	List(selector k8slabels.Selector) ([]T, error)
}

// Renderer writes the exposition of every enabled resource.
type Renderer struct {
	renders  []func(s Sink) error
	families []string
}

// NewRenderer prepares the families of the resources src provides.
func NewRenderer(cfg Config, src Sources) *Renderer {
	r := &Renderer{}
	add(r, src.Pods, podBase, podFamilies, cfg, "pods", "pod")
	add(r, src.Nodes, nodeBase, nodeFamilies, cfg, "nodes", "node")
	add(r, src.Namespaces, namespaceBase, namespaceFamilies, cfg, "namespaces", "namespace")
	add(r, src.Deployments, deploymentBase, deploymentFamilies, cfg, "deployments", "deployment")
	add(r, src.StatefulSets, statefulSetBase, statefulSetFamilies, cfg, "statefulsets", "statefulset")
	add(r, src.DaemonSets, daemonSetBase, daemonSetFamilies, cfg, "daemonsets", "daemonset")
	add(r, src.ReplicaSets, replicaSetBase, replicaSetFamilies, cfg, "replicasets", "replicaset")
	add(r, src.Jobs, jobBase, jobFamilies, cfg, "jobs", "job")
	add(r, src.CronJobs, cronJobBase, cronJobFamilies, cfg, "cronjobs", "cronjob")
	add(r, src.HorizontalPodAutoscalers, hpaBase, hpaFamilies, cfg, "horizontalpodautoscalers", "horizontalpodautoscaler")
	add(r, src.PersistentVolumeClaims, pvcBase, pvcFamilies, cfg, "persistentvolumeclaims", "persistentvolumeclaim")
	add(r, src.PersistentVolumes, pvBase, pvFamilies, cfg, "persistentvolumes", "persistentvolume")
	add(r, src.ResourceQuotas, resourceQuotaBase, resourceQuotaFamilies, cfg, "resourcequotas", "resourcequota")
	add(r, src.PodDisruptionBudgets, pdbBase, pdbFamilies, cfg, "poddisruptionbudgets", "poddisruptionbudget")
	add(r, src.Services, serviceBase, serviceFamilies, cfg, "services", "service")
	add(r, src.Ingresses, ingressBase, ingressFamilies, cfg, "ingresses", "ingress")
	add(r, src.NetworkPolicies, networkPolicyBase, networkPolicyFamilies, cfg, "networkpolicies", "networkpolicy")
	add(r, src.Endpoints, endpointsBase, endpointsFamilies, cfg, "endpoints", "endpoint")
	add(r, src.ConfigMaps, configMapBase, func() []family[*metav1.PartialObjectMetadata] { return metadataFamilies("configmap") }, cfg, "configmaps", "configmap")
	add(r, src.Secrets, secretBase, func() []family[*metav1.PartialObjectMetadata] { return metadataFamilies("secret") }, cfg, "secrets", "secret")
	return r
}

// add registers one resource: its own families after the ones every
// kube-state-metrics resource has (created, labels, annotations).
func add[T metav1.Object](r *Renderer, l Lister[T], base func(T) []string, families func() []family[T], cfg Config, resource, kind string) {
	if l == nil {
		return
	}
	fs := slices.DeleteFunc(append(objectFamilies[T](kind, cfg.LabelsAllowlist.matcher(resource), cfg.AnnotationsAllowlist.matcher(resource)), families()...),
		func(f family[T]) bool { return !cfg.Allowed(f.name) })
	for _, f := range fs {
		r.families = append(r.families, f.name)
	}
	r.renders = append(r.renders, func(s Sink) error {
		objs, err := l.List(k8slabels.Everything())
		if err != nil {
			return err
		}
		// Sorted, so an unchanged cluster renders the same bytes (the
		// scrape cache keys series by their text).
		slices.SortFunc(objs, func(a, b T) int {
			if c := strings.Compare(a.GetNamespace(), b.GetNamespace()); c != 0 {
				return c
			}
			return strings.Compare(a.GetName(), b.GetName())
		})
		return renderFamilies(s, objs, base, fs)
	})
}

// Allowed says whether a family is written.
func (c Config) Allowed(name string) bool {
	allowed := len(c.Allowlist) == 0 && slices.Contains(defaultFamilies, name)
	for _, re := range c.Allowlist {
		allowed = allowed || re.MatchString(name)
	}
	for _, re := range c.Denylist {
		if re.MatchString(name) {
			return false
		}
	}
	return allowed
}

// Render writes the exposition of every enabled resource into b, in the
// text format.
func (r *Renderer) Render(b *bytes.Buffer) error { return r.RenderTo(textSink{b}) }

// RenderTo hands every enabled resource's families to s.
func (r *Renderer) RenderTo(s Sink) error {
	for _, render := range r.renders {
		if err := render(s); err != nil {
			return err
		}
	}
	return nil
}

// Families lists the families the renderer writes (allowed, of the
// resources it reads), for tests and documentation.
func (r *Renderer) Families() []string { return slices.Clone(r.families) }

// cacheLister adapts an informer's indexer to Lister for any object type.
type cacheLister[T any] struct{ indexer cache.Indexer }

func (c cacheLister[T]) List(sel k8slabels.Selector) ([]T, error) {
	var out []T
	err := cache.ListAll(c.indexer, sel, func(o interface{}) {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	})
	return out, err
}
