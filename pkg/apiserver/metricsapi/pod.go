package metricsapi

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/metrics"
)

// podStorage serves PodMetrics for the pods the (metadata) lister has.
type podStorage struct {
	resourceInfo
	metrics MetricsGetter
	pods    cache.GenericLister
}

var (
	_ rest.Getter         = (*podStorage)(nil)
	_ rest.Lister         = (*podStorage)(nil)
	_ rest.TableConvertor = (*podStorage)(nil)
)

func newPodStorage(m MetricsGetter, pods cache.GenericLister) *podStorage {
	return &podStorage{
		resourceInfo: resourceInfo{
			resource:   metrics.Resource("pods"),
			kind:       "PodMetrics",
			namespaced: true,
			newObject:  func() runtime.Object { return &metrics.PodMetrics{} },
			newList:    func() runtime.Object { return &metrics.PodMetricsList{} },
		},
		metrics: m, pods: pods,
	}
}

// List answers the pods of the request's namespace (all namespaces when
// none) matching its label and field selectors that have usage, by
// namespace and name.
func (s *podStorage) List(ctx context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	namespace := genericapirequest.NamespaceValue(ctx)
	selector := labels.Everything()
	if options != nil && options.LabelSelector != nil {
		selector = options.LabelSelector
	}
	objs, err := s.pods.ByNamespace(namespace).List(selector)
	if err != nil {
		klog.ErrorS(err, "Listing pods failed", "namespace", klog.KRef("", namespace), "labelSelector", selector)
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	pods := make([]*metav1.PartialObjectMetadata, 0, len(objs))
	for _, o := range objs {
		pod, ok := o.(*metav1.PartialObjectMetadata)
		if !ok {
			continue
		}
		if options != nil && options.FieldSelector != nil && !options.FieldSelector.Empty() &&
			!options.FieldSelector.Matches(objectMetaFields(&pod.ObjectMeta, true)) {
			continue
		}
		pods = append(pods, pod)
	}
	items, err := s.usage(pods...)
	if err != nil {
		return nil, err
	}
	return &metrics.PodMetricsList{Items: items}, nil
}

// Get answers one pod; a pod without usage for every container is 404.
func (s *podStorage) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	namespace := genericapirequest.NamespaceValue(ctx)
	notFound := apierrors.NewNotFound(s.resource, name)
	obj, err := s.pods.ByNamespace(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, notFound
	}
	if err != nil {
		klog.ErrorS(err, "Getting a pod failed", "pod", klog.KRef(namespace, name))
		return nil, fmt.Errorf("getting pod %s/%s: %w", namespace, name, err)
	}
	pod, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return nil, notFound
	}
	items, err := s.usage(pod)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, notFound
	}
	return &items[0], nil
}

func (s *podStorage) usage(pods ...*metav1.PartialObjectMetadata) ([]metrics.PodMetrics, error) {
	items, err := s.metrics.GetPodMetrics(pods...)
	if err != nil {
		klog.ErrorS(err, "Reading pod usage failed")
		return nil, fmt.Errorf("reading pod usage: %w", err)
	}
	slices.SortFunc(items, func(a, b metrics.PodMetrics) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return items, nil
}

// ConvertToTable is what `kubectl get podmetrics` prints: the pod's usage
// summed over its containers.
func (s *podStorage) ConvertToTable(_ context.Context, object runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	var rows []tableRow
	var list metav1.ListMeta
	switch o := object.(type) {
	case *metrics.PodMetrics:
		rows = append(rows, podRow(o))
	case *metrics.PodMetricsList:
		list = o.ListMeta
		for i := range o.Items {
			rows = append(rows, podRow(&o.Items[i]))
		}
	default:
		return nil, fmt.Errorf("cannot print %T as a table of pod metrics", object)
	}
	return usageTable(list, rows), nil
}

func podRow(p *metrics.PodMetrics) tableRow {
	sum := corev1.ResourceList{}
	for _, c := range p.Containers {
		for name, q := range c.Usage {
			total := sum[name]
			total.Add(q)
			sum[name] = total
		}
	}
	return tableRow{p.Name, sum, p.Window.Duration, p}
}
