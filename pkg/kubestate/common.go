package kubestate

import (
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func controllerOf(refs []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range refs {
		if c := refs[i].Controller; c != nil && *c {
			return &refs[i]
		}
	}
	return nil
}

// owners writes kube-state-metrics' *_owner series: one per reference, or
// one of "<none>" when there is none.
func owners(refs []metav1.OwnerReference, emit emitFunc) {
	if len(refs) == 0 {
		emit(1, "owner_kind", "<none>", "owner_name", "<none>", "owner_is_controller", "<none>")
		return
	}
	for _, o := range refs {
		emit(1, "owner_kind", o.Kind, "owner_name", o.Name, "owner_is_controller", strconv.FormatBool(o.Controller != nil && *o.Controller))
	}
}

// resources writes one series per resource, in kube-state-metrics' units
// (CPU in cores, memory and storage in bytes) and names (nvidia.com/gpu →
// nvidia_com_gpu).
func resources(rl corev1.ResourceList, emit emitFunc, kv ...string) {
	names := make([]string, 0, len(rl))
	for n := range rl {
		names = append(names, string(n))
	}
	slices.Sort(names) // a stable exposition, so equal input renders equal bytes
	for _, n := range names {
		q := rl[corev1.ResourceName(n)]
		unit, v := resourceValue(corev1.ResourceName(n), q)
		emit(v, append(kv[:len(kv):len(kv)], "resource", sanitizeResource(n), "unit", unit)...)
	}
}

func resourceValue(res corev1.ResourceName, q resource.Quantity) (string, float64) {
	switch {
	case res == corev1.ResourceCPU:
		return "core", float64(q.MilliValue()) / 1000
	case res == corev1.ResourceMemory, res == corev1.ResourceStorage, res == corev1.ResourceEphemeralStorage,
		strings.HasPrefix(string(res), corev1.ResourceHugePagesPrefix):
		return "byte", float64(q.Value())
	}
	return "integer", float64(q.Value())
}

var resourceReplacer = strings.NewReplacer(".", "_", "/", "_", "-", "_")

func sanitizeResource(s string) string { return resourceReplacer.Replace(s) }

// timestamp writes t's Unix seconds, unless t is unset.
func timestamp(t *metav1.Time, emit emitFunc) {
	if t != nil && !t.IsZero() {
		emit(float64(t.Unix()))
	}
}

func ptrValue(p *int32, emit emitFunc) {
	if p != nil {
		emit(float64(*p))
	}
}

// resourceVersion writes a numeric resource version as the value, as
// kube-state-metrics does; an opaque one writes nothing.
func resourceVersion(rv string, emit emitFunc) {
	if v, err := strconv.ParseFloat(rv, 64); err == nil {
		emit(v)
	}
}

// objectFamilies are kube_<kind>_created, _labels and _annotations, which
// every resource has.
func objectFamilies[T metav1.Object](kind string, labels, annotations keyMatcher) []family[T] {
	return []family[T]{
		{"kube_" + kind + "_created", "Unix creation timestamp", gauge, func(o T, emit emitFunc) {
			t := o.GetCreationTimestamp()
			timestamp(&t, emit)
		}},
		{"kube_" + kind + "_labels", "Kubernetes labels converted to Prometheus labels.", gauge, func(o T, emit emitFunc) {
			emit(1, labels.mapLabels("label", o.GetLabels())...)
		}},
		{"kube_" + kind + "_annotations", "Kubernetes annotations converted to Prometheus labels.", gauge, func(o T, emit emitFunc) {
			emit(1, annotations.mapLabels("annotation", o.GetAnnotations())...)
		}},
	}
}
