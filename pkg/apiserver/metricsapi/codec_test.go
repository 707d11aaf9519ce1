package metricsapi

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/metrics/pkg/apis/metrics"
	metricsv1 "k8s.io/metrics/pkg/apis/metrics/v1"
	"k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// The objects the API serves, as the provider builds them.
func servedObjects() map[string]runtime.Object {
	ts := metav1.NewTime(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	usage := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1500m"),
		corev1.ResourceMemory: resource.MustParse("2Gi"),
	}
	node := metrics.NodeMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a"}},
		Timestamp:  ts, Window: metav1.Duration{Duration: 15 * time.Second}, Usage: usage,
	}
	pod := metrics.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"}},
		Timestamp:  ts, Window: metav1.Duration{Duration: 10*time.Second + 500*time.Millisecond},
		Containers: []metrics.ContainerMetrics{
			{Name: "app", Usage: usage},
			{Name: "sidecar", Usage: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0"), corev1.ResourceMemory: resource.MustParse("1Ki"), "swap": resource.MustParse("4Mi")}},
		},
	}
	return map[string]runtime.Object{
		"node":            &node,
		"node list":       &metrics.NodeMetricsList{Items: []metrics.NodeMetrics{node, node}},
		"empty node list": &metrics.NodeMetricsList{},
		"pod":             &pod,
		"pod list":        &metrics.PodMetricsList{Items: []metrics.PodMetrics{pod}},
		"pod, no usage":   &metrics.PodMetrics{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "idle"}, Timestamp: ts},
	}
}

// Every served object survives internal → version → wire → version →
// internal unchanged, in both versions and both wire formats kubectl uses.
func TestRoundTripBothVersionsJSONAndProtobuf(t *testing.T) {
	media := []string{runtime.ContentTypeJSON, runtime.ContentTypeProtobuf}
	for name, obj := range servedObjects() {
		for _, gv := range Versions {
			for _, mediaType := range media {
				t.Run(name+"/"+gv.Version+"/"+mediaType, func(t *testing.T) {
					info, ok := runtime.SerializerInfoForMediaType(Codecs.SupportedMediaTypes(), mediaType)
					if !ok {
						t.Fatalf("no serializer for %s", mediaType)
					}
					encoder := Codecs.EncoderForVersion(info.Serializer, gv)
					data, err := runtime.Encode(encoder, obj)
					if err != nil {
						t.Fatal(err)
					}
					decoded, err := runtime.Decode(Codecs.DecoderToVersion(info.Serializer, runtime.InternalGroupVersioner), data)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(obj, decoded, quantityEqual); diff != "" {
						t.Fatalf("round trip changed the object (-sent +received):\n%s", diff)
					}
				})
			}
		}
	}
}

// The versions' conversions, table-tested: each internal object converts
// to v1 and to v1beta1 with the same content, and the two versioned objects
// convert back to the same internal one.
func TestConversionsV1AndV1beta1Agree(t *testing.T) {
	for name, obj := range servedObjects() {
		t.Run(name, func(t *testing.T) {
			v1obj, err := Scheme.ConvertToVersion(obj.DeepCopyObject(), metricsv1.SchemeGroupVersion)
			if err != nil {
				t.Fatal(err)
			}
			betaObj, err := Scheme.ConvertToVersion(obj.DeepCopyObject(), v1beta1.SchemeGroupVersion)
			if err != nil {
				t.Fatal(err)
			}
			if got := v1obj.GetObjectKind().GroupVersionKind(); got.GroupVersion() != metricsv1.SchemeGroupVersion {
				t.Fatalf("v1 conversion gave %v", got)
			}
			// Same fields in both versions: compare them as plain data.
			if diff := cmp.Diff(plain(t, v1obj), plain(t, betaObj)); diff != "" {
				t.Fatalf("v1 and v1beta1 differ (-v1 +v1beta1):\n%s", diff)
			}
			for _, versioned := range []runtime.Object{v1obj, betaObj} {
				back, err := Scheme.ConvertToVersion(versioned, schema.GroupVersion{Group: metrics.GroupName, Version: runtime.APIVersionInternal})
				if err != nil {
					t.Fatal(err)
				}
				back.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
				if diff := cmp.Diff(obj, back, quantityEqual); diff != "" {
					t.Fatalf("%v back to internal (-want +got):\n%s", versioned.GetObjectKind().GroupVersionKind(), diff)
				}
			}
		})
	}
}

// The preferred version is v1, then v1beta1: what discovery advertises and
// what a client without a preference gets.
func TestVersionPriority(t *testing.T) {
	got := Scheme.PrioritizedVersionsForGroup(metrics.GroupName)
	if diff := cmp.Diff(Versions, got); diff != "" {
		t.Fatalf("version priority (-want +got):\n%s", diff)
	}
}

var quantityEqual = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

// plain is obj's JSON without apiVersion, as a generic map.
func plain(t *testing.T, obj runtime.Object) map[string]any {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	delete(u, "apiVersion")
	return u
}
