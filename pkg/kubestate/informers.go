package kubestate

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// Watches registers an informer per enabled resource, except pods, nodes
// and namespaces, which the caller shares with the rest of kmetrics (set
// them in the returned Sources), and says, by resource, when each has
// listed once. Each new informer holds only what the
// families read: managed fields, pod templates and annotations outside the
// allowlist are dropped as objects arrive, and ConfigMaps and Secrets are
// watched as metadata. The factories are the caller's to start.
func Watches(cfg Config, f informers.SharedInformerFactory, mf metadatainformer.SharedInformerFactory) (Sources, map[string]cache.InformerSynced, error) {
	on, err := cfg.Enabled()
	if err != nil {
		return Sources{}, nil, err
	}
	var s Sources
	synced := map[string]cache.InformerSynced{}
	watch := func(resource string, inf cache.SharedIndexInformer) {
		_ = inf.SetTransform(trimmer(cfg.AnnotationsAllowlist.matcher(resource)))
		synced[resource] = inf.HasSynced
	}
	if on["deployments"] {
		i := f.Apps().V1().Deployments()
		watch("deployments", i.Informer())
		s.Deployments = i.Lister()
	}
	if on["statefulsets"] {
		i := f.Apps().V1().StatefulSets()
		watch("statefulsets", i.Informer())
		s.StatefulSets = i.Lister()
	}
	if on["daemonsets"] {
		i := f.Apps().V1().DaemonSets()
		watch("daemonsets", i.Informer())
		s.DaemonSets = i.Lister()
	}
	if on["replicasets"] {
		i := f.Apps().V1().ReplicaSets()
		watch("replicasets", i.Informer())
		s.ReplicaSets = i.Lister()
	}
	if on["jobs"] {
		i := f.Batch().V1().Jobs()
		watch("jobs", i.Informer())
		s.Jobs = i.Lister()
	}
	if on["cronjobs"] {
		i := f.Batch().V1().CronJobs()
		watch("cronjobs", i.Informer())
		s.CronJobs = i.Lister()
	}
	if on["horizontalpodautoscalers"] {
		i := f.Autoscaling().V2().HorizontalPodAutoscalers()
		watch("horizontalpodautoscalers", i.Informer())
		s.HorizontalPodAutoscalers = i.Lister()
	}
	if on["persistentvolumeclaims"] {
		i := f.Core().V1().PersistentVolumeClaims()
		watch("persistentvolumeclaims", i.Informer())
		s.PersistentVolumeClaims = i.Lister()
	}
	if on["persistentvolumes"] {
		i := f.Core().V1().PersistentVolumes()
		watch("persistentvolumes", i.Informer())
		s.PersistentVolumes = i.Lister()
	}
	if on["resourcequotas"] {
		i := f.Core().V1().ResourceQuotas()
		watch("resourcequotas", i.Informer())
		s.ResourceQuotas = i.Lister()
	}
	if on["poddisruptionbudgets"] {
		i := f.Policy().V1().PodDisruptionBudgets()
		watch("poddisruptionbudgets", i.Informer())
		s.PodDisruptionBudgets = i.Lister()
	}
	if on["services"] {
		i := f.Core().V1().Services()
		watch("services", i.Informer())
		s.Services = i.Lister()
	}
	if on["ingresses"] {
		i := f.Networking().V1().Ingresses()
		watch("ingresses", i.Informer())
		s.Ingresses = i.Lister()
	}
	if on["networkpolicies"] {
		i := f.Networking().V1().NetworkPolicies()
		watch("networkpolicies", i.Informer())
		s.NetworkPolicies = i.Lister()
	}
	if on["endpoints"] {
		i := f.Core().V1().Endpoints() //nolint:staticcheck // kube-state-metrics' kube_endpoint_* read v1 Endpoints
		watch("endpoints", i.Informer())
		s.Endpoints = i.Lister()
	}
	if on["configmaps"] {
		inf := mf.ForResource(corev1.SchemeGroupVersion.WithResource("configmaps")).Informer()
		watch("configmaps", inf)
		s.ConfigMaps = cacheLister[*metav1.PartialObjectMetadata]{inf.GetIndexer()}
	}
	if on["secrets"] {
		inf := mf.ForResource(corev1.SchemeGroupVersion.WithResource("secrets")).Informer()
		watch("secrets", inf)
		s.Secrets = cacheLister[*metav1.PartialObjectMetadata]{inf.GetIndexer()}
	}
	return s, synced, nil
}

// keptAnnotations are annotations a family reads, kept whatever the
// allowlist says.
var keptAnnotations = map[string]bool{
	"kubernetes.io/ingress.class":     true,
	corev1.BetaStorageClassAnnotation: true,
}

// trimmer drops from each object what no family reads. Pod templates are
// most of a workload object's size; no family reads them.
func trimmer(annotations keyMatcher) cache.TransformFunc {
	return func(obj interface{}) (interface{}, error) {
		if m, err := meta.Accessor(obj); err == nil {
			m.SetManagedFields(nil)
			if a := m.GetAnnotations(); len(a) > 0 {
				kept := map[string]string{}
				for k, v := range a {
					if keptAnnotations[k] || annotations.match(k) {
						kept[k] = v
					}
				}
				m.SetAnnotations(kept)
			}
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			o.Spec.Template = corev1.PodTemplateSpec{}
		case *appsv1.StatefulSet:
			o.Spec.Template, o.Spec.VolumeClaimTemplates = corev1.PodTemplateSpec{}, nil
		case *appsv1.DaemonSet:
			o.Spec.Template = corev1.PodTemplateSpec{}
		case *appsv1.ReplicaSet:
			o.Spec.Template = corev1.PodTemplateSpec{}
		case *batchv1.Job:
			o.Spec.Template = corev1.PodTemplateSpec{}
		case *batchv1.CronJob:
			o.Spec.JobTemplate = batchv1.JobTemplateSpec{}
		case *corev1.Endpoints:
			o.Subsets = nil
		}
		return obj, nil
	}
}

// TrimPodAnnotations keeps the pod annotations the allowlist names and the
// ones keep accepts (the caller's own consumers of the shared pod cache).
func TrimPodAnnotations(cfg Config, p *corev1.Pod, keep func(string) bool) {
	m := cfg.AnnotationsAllowlist.matcher("pods")
	for k := range p.Annotations {
		if !keep(k) && !m.match(k) {
			delete(p.Annotations, k)
		}
	}
}
