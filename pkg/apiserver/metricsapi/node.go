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
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/metrics"
)

// nodeStorage serves NodeMetrics for the nodes the lister has.
type nodeStorage struct {
	resourceInfo
	metrics      MetricsGetter
	nodes        corelisters.NodeLister
	nodeSelector []labels.Requirement
}

var (
	_ rest.Getter         = (*nodeStorage)(nil)
	_ rest.Lister         = (*nodeStorage)(nil)
	_ rest.TableConvertor = (*nodeStorage)(nil)
)

func newNodeStorage(m MetricsGetter, nodes corelisters.NodeLister, nodeSelector []labels.Requirement) *nodeStorage {
	return &nodeStorage{
		resourceInfo: resourceInfo{
			resource:  metrics.Resource("nodes"),
			kind:      "NodeMetrics",
			newObject: func() runtime.Object { return &metrics.NodeMetrics{} },
			newList:   func() runtime.Object { return &metrics.NodeMetricsList{} },
		},
		metrics: m, nodes: nodes, nodeSelector: nodeSelector,
	}
}

// List answers the nodes matching the request's label and field
// selectors (and --node-selector) that have usage, by name.
func (s *nodeStorage) List(_ context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	selector := labels.Everything()
	if options != nil && options.LabelSelector != nil {
		selector = options.LabelSelector
	}
	if len(s.nodeSelector) > 0 {
		selector = selector.Add(s.nodeSelector...)
	}
	nodes, err := s.nodes.List(selector)
	if err != nil {
		klog.ErrorS(err, "Listing nodes failed", "labelSelector", selector)
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	if options != nil && options.FieldSelector != nil && !options.FieldSelector.Empty() {
		nodes = slices.DeleteFunc(nodes, func(n *corev1.Node) bool {
			return !options.FieldSelector.Matches(objectMetaFields(&n.ObjectMeta, false))
		})
	}
	items, err := s.usage(nodes...)
	if err != nil {
		return nil, err
	}
	return &metrics.NodeMetricsList{Items: items}, nil
}

// Get answers one node; a node without usage, or left out by
// --node-selector, is 404, as in metrics-server.
func (s *nodeStorage) Get(_ context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	node, err := s.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewNotFound(s.resource, name)
	}
	if err != nil {
		klog.ErrorS(err, "Getting a node failed", "node", klog.KRef("", name))
		return nil, fmt.Errorf("getting node %s: %w", name, err)
	}
	// A node outside --node-selector is not served, though usage from
	// before the selector changed may still be in the store.
	for _, r := range s.nodeSelector {
		if !r.Matches(labels.Set(node.Labels)) {
			return nil, apierrors.NewNotFound(s.resource, name)
		}
	}
	items, err := s.usage(node)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, apierrors.NewNotFound(s.resource, name)
	}
	return &items[0], nil
}

func (s *nodeStorage) usage(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error) {
	items, err := s.metrics.GetNodeMetrics(nodes...)
	if err != nil {
		klog.ErrorS(err, "Reading node usage failed")
		return nil, fmt.Errorf("reading node usage: %w", err)
	}
	slices.SortFunc(items, func(a, b metrics.NodeMetrics) int { return strings.Compare(a.Name, b.Name) })
	return items, nil
}

// ConvertToTable is what `kubectl get nodemetrics` prints.
func (s *nodeStorage) ConvertToTable(_ context.Context, object runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	var rows []tableRow
	var list metav1.ListMeta
	switch o := object.(type) {
	case *metrics.NodeMetrics:
		rows = append(rows, tableRow{o.Name, o.Usage, o.Window.Duration, o})
	case *metrics.NodeMetricsList:
		list = o.ListMeta
		for i := range o.Items {
			n := &o.Items[i]
			rows = append(rows, tableRow{n.Name, n.Usage, n.Window.Duration, n})
		}
	default:
		return nil, fmt.Errorf("cannot print %T as a table of node metrics", object)
	}
	return usageTable(list, rows), nil
}

// objectMetaFields are the fields metadata.name (and metadata.namespace)
// selectors match, the same set the API server's own registries offer.
func objectMetaFields(meta *metav1.ObjectMeta, namespaced bool) fields.Set {
	return generic.AddObjectMetaFieldsSet(make(fields.Set, 2), meta, namespaced)
}
