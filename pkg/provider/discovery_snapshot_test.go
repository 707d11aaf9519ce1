package provider

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// After a restart, discovery lists what the last run served while the TSDB
// opens, and a metric request is a 503 (retry), not a 404 (no such metric).
func TestDiscoverySnapshotServesTheListUntilTheTSDBOpens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "discovery")
	pods := schema.GroupResource{Resource: "pods"}
	before := NewMetricsProvider(nil, nil, nil, nil, nil, 0)
	before.catalog.Store(&catalog{
		customList:   []cmprovider.CustomMetricInfo{{GroupResource: pods, Metric: "http_requests", Namespaced: true}},
		externalList: []cmprovider.ExternalMetricInfo{{Metric: "queue_messages"}},
	})
	if err := before.SaveDiscovery(path); err != nil {
		t.Fatal(err)
	}

	after := NewMetricsProvider(nil, nil, meta.NewDefaultRESTMapper(nil), nil, nil, 0)
	if n, err := after.LoadDiscovery(path); err != nil || n != 2 {
		t.Fatalf("loaded %d: %v", n, err)
	}
	if !after.Discovered() || len(after.ListAllMetrics()) != 1 || len(after.ListAllExternalMetrics()) != 1 {
		t.Fatalf("discovery after the restart: %v %v", after.ListAllMetrics(), after.ListAllExternalMetrics())
	}
	_, err := after.GetMetricBySelector(context.Background(), "ns", k8slabels.Everything(), after.ListAllMetrics()[0], k8slabels.Everything())
	if !apierrors.IsServiceUnavailable(err) {
		t.Errorf("a metric request while the TSDB opens: %v, want 503", err)
	}
	_, err = after.GetExternalMetric(context.Background(), "ns", k8slabels.Everything(), after.ListAllExternalMetrics()[0])
	if !apierrors.IsServiceUnavailable(err) {
		t.Errorf("an external metric request while the TSDB opens: %v, want 503", err)
	}
	// A snapshot catalog is never written back over the real one.
	other := filepath.Join(t.TempDir(), "other")
	if err := after.SaveDiscovery(other); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("a catalog loaded from a snapshot was saved again: %v", err)
	}
}
