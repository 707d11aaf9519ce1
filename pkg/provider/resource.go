package provider

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// ResourceIndex is the latest-value index resource metrics are read from.
type ResourceIndex interface {
	Node(name string) (storage.Usage, bool)
	Pod(namespace, name string) (map[string]storage.Usage, bool)
}

// ResourceProvider answers NodeMetrics and PodMetrics (the group's internal
// types: the API server converts them to v1 or v1beta1) from the index.
type ResourceProvider struct {
	index      ResourceIndex
	resolution time.Duration
}

// NewResourceProvider serves NodeMetrics and PodMetrics with metrics-server's
// semantics from the index. resolution is the scrape interval.
func NewResourceProvider(index ResourceIndex, resolution time.Duration) *ResourceProvider {
	return &ResourceProvider{index: index, resolution: resolution}
}

// GetNodeMetrics returns the nodes that have usage; others are left out
// (the API turns a missing node into 404 / "<unknown>").
func (p *ResourceProvider) GetNodeMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error) {
	out := make([]metrics.NodeMetrics, 0, len(nodes))
	now := metav1.Now()
	for _, node := range nodes {
		u, ok := p.index.Node(node.Name)
		if !ok {
			continue
		}
		usage, ti, ok := resourceUsage(u, p.resolution)
		if !ok {
			continue
		}
		out = append(out, metrics.NodeMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: node.Name, Labels: node.Labels, CreationTimestamp: now},
			Timestamp:  metav1.NewTime(ti.timestamp),
			Window:     metav1.Duration{Duration: ti.window},
			Usage:      usage,
		})
	}
	return out, nil
}

// GetPodMetrics returns the pods every container of which has usage. The
// pod's timestamp and window are its earliest container's, as in
// metrics-server (the HPA uses them to ignore samples of starting pods).
func (p *ResourceProvider) GetPodMetrics(pods ...*metav1.PartialObjectMetadata) ([]metrics.PodMetrics, error) {
	out := make([]metrics.PodMetrics, 0, len(pods))
	now := metav1.Now()
	for _, pod := range pods {
		containers, ok := p.index.Pod(pod.Namespace, pod.Name)
		if !ok || len(containers) == 0 {
			continue
		}
		cms := make([]metrics.ContainerMetrics, 0, len(containers))
		var earliest timeInfo
		for name, u := range containers {
			usage, ti, ok := resourceUsage(u, p.resolution)
			if !ok {
				cms = nil
				break
			}
			cms = append(cms, metrics.ContainerMetrics{Name: name, Usage: usage})
			if earliest.timestamp.IsZero() || ti.timestamp.Before(earliest.timestamp) {
				earliest = ti
			}
		}
		if cms == nil {
			continue
		}
		// Stable output: containers by name.
		slices.SortFunc(cms, func(a, b metrics.ContainerMetrics) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, metrics.PodMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, Labels: pod.Labels, CreationTimestamp: now},
			Timestamp:  metav1.NewTime(earliest.timestamp),
			Window:     metav1.Duration{Duration: earliest.window},
			Containers: cms,
		})
	}
	return out, nil
}
