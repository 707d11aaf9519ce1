package metricsapi

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/metrics/pkg/apis/metrics"
)

// everyNodeMeasured has usage for every node asked, as a store still
// holding nodes scraped before --node-selector changed.
type everyNodeMeasured struct{}

func (everyNodeMeasured) GetNodeMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error) {
	out := make([]metrics.NodeMetrics, len(nodes))
	for i, n := range nodes {
		out[i] = metrics.NodeMetrics{ObjectMeta: metav1.ObjectMeta{Name: n.Name}}
	}
	return out, nil
}

func (everyNodeMeasured) GetPodMetrics(...*metav1.PartialObjectMetadata) ([]metrics.PodMetrics, error) {
	return nil, nil
}

// TestNodeSelectorOnGetAndList: a node --node-selector leaves out is
// neither listed nor served by name (metrics-server's suite: "skip scrape
// metrics about nodes with label node-selector filtered").
func TestNodeSelectorOnGetAndList(t *testing.T) {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for name, lbls := range map[string]map[string]string{"real": nil, "skipped": {"metrics-server-skip": "true"}} {
		if err := indexer.Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}); err != nil {
			t.Fatal(err)
		}
	}
	sel, err := labels.Parse("metrics-server-skip!=true")
	if err != nil {
		t.Fatal(err)
	}
	reqs, _ := sel.Requirements()
	s := newNodeStorage(everyNodeMeasured{}, corelisters.NewNodeLister(indexer), reqs)

	for name, want := range map[string]bool{"real": true, "skipped": false, "absent": false} {
		_, err := s.Get(context.Background(), name, &metav1.GetOptions{})
		if served := err == nil; served != want || (!served && !apierrors.IsNotFound(err)) {
			t.Errorf("get %s: %v, want served %v (else 404)", name, err, want)
		}
	}
	list, err := s.List(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if items := list.(*metrics.NodeMetricsList).Items; len(items) != 1 || items[0].Name != "real" {
		t.Errorf("listed %v, want only real", items)
	}
}
