package scraper

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kmetrics/kmetrics/pkg/kubestate"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

// BenchmarkClusterStateWrite is one write of the default cluster-state
// families of N pods (one container each, requests and limits, three
// labels), by the writer (impl=direct) beside the scrape path it replaced
// (impl=exposition: the text exposition parsed through a scrape target and
// its per-series cache). heap-MiB is the live heap after the writes, the
// TSDB head's share included, less the objects'.
//
//	go test -run '^$' -bench ClusterStateWrite -benchtime 5x -count 3 ./pkg/scraper
func BenchmarkClusterStateWrite(b *testing.B) {
	for _, n := range []int{3000, 30000} {
		pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		for i := range n {
			res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}
			_ = pods.Add(&corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns-%d", i%50), Name: fmt.Sprintf("app-%d-7d9f8c6b5-x%d", i%300, i), UID: types.UID(fmt.Sprintf("uid-%d", i)),
					Labels: map[string]string{"app": fmt.Sprintf("app-%d", i%300), "pod-template-hash": "7d9f8c6b5", "team": fmt.Sprintf("t%d", i%20)}},
				Spec: corev1.PodSpec{NodeName: fmt.Sprintf("node-%d", i/30), Containers: []corev1.Container{{Name: "main", Image: "registry.example/app:1.2.3",
					Resources: corev1.ResourceRequirements{Requests: res, Limits: res}}}},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", HostIP: "192.168.0.1",
					ContainerStatuses: []corev1.ContainerStatus{{Name: "main", Ready: true, Image: "registry.example/app:1.2.3"}}},
			})
		}
		r := kubestate.NewRenderer(kubestate.Config{}, kubestate.Sources{Pods: corelisters.NewPodLister(pods)})
		for _, impl := range []string{"exposition", "direct"} {
			b.Run(fmt.Sprintf("pods=%d/impl=%s", n, impl), func(b *testing.B) {
				db, err := storage.Open(storage.Options{Path: b.TempDir()}, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				heap0 := liveHeap()
				var write func(now time.Time) error
				switch impl {
				case "direct":
					cs := NewClusterState(r, db)
					write = func(now time.Time) error { return cs.writeOnce(context.Background(), now) }
				default:
					tgt := newTargetWithLabels(labels.FromStrings(storage.LabelJob, JobClusterState, storage.LabelInstance, instanceClusterState))
					var buf bytes.Buffer
					write = func(now time.Time) error {
						buf.Reset()
						if err := r.Render(&buf); err != nil {
							return err
						}
						return storeExposition(context.Background(), db, tgt, buf.Bytes(), now)
					}
				}
				now := time.Now()
				for range 2 {
					now = now.Add(30 * time.Second)
					if err := write(now); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				for range b.N {
					now = now.Add(30 * time.Second)
					if err := write(now); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(liveHeap()-heap0)/(1<<20), "heap-MiB")
				runtime.KeepAlive(write)
			})
		}
	}
}
