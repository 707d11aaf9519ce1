package apiserver

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// BenchmarkListPodMetrics lists the PodMetrics of 10,000 pods (100 nodes ×
// 100 pods, one container each) over HTTPS from the in-process server: what
// `kubectl top pods -A` costs on a large cluster.
func BenchmarkListPodMetrics(b *testing.B) {
	const nodesN, podsPerNode = 100, 100
	now := time.Now().UnixMilli()
	index := storage.NewIndex()
	nodes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for n := 0; n < nodesN; n++ {
		node := fmt.Sprintf("node-%d", n)
		for round, ts := range []int64{now - 15000, now} {
			cs := make([]storage.ContainerSample, 0, podsPerNode)
			for p := 0; p < podsPerNode; p++ {
				cs = append(cs, storage.ContainerSample{Namespace: fmt.Sprintf("ns-%d", p%20), Pod: fmt.Sprintf("%s-pod-%d", node, p), Container: "main",
					CPU: storage.Point{T: ts, V: float64(round) * 1.5}, HasCPU: true, Memory: storage.Point{T: ts, V: 50 << 20}, HasMemory: true})
			}
			index.ObserveNode(node, storage.NodeSample{}, cs)
		}
		for p := 0; p < podsPerNode; p++ {
			_ = pods.Add(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns-%d", p%20), Name: fmt.Sprintf("%s-pod-%d", node, p)}})
		}
	}
	s := serve(b, index, nodes, pods)
	b.ResetTimer()
	var size int
	for i := 0; i < b.N; i++ {
		code, body := s.get(b, "/apis/metrics.k8s.io/v1beta1/pods", "")
		if code != http.StatusOK || len(body) < 10000*100 {
			b.Fatalf("status %d, %d bytes", code, len(body))
		}
		size = len(body)
	}
	b.ReportMetric(float64(size), "resp-bytes")
}
