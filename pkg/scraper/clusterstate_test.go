package scraper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/kmetrics/kmetrics/pkg/kubestate"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

func TestClusterStateSeries(t *testing.T) {
	db, err := storage.Open(storage.Options{Path: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	env := &testEnv{db: db}
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	nodes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	namespaces := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	web := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", UID: "u1",
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-7d", Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "main", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), "nvidia.com/gpu": resource.MustParse("1")},
		}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.1.0.5", HostIP: "127.0.0.2"},
	}
	job := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "job-1", UID: "u2"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "run"}}}, Status: corev1.PodStatus{Phase: corev1.PodPending}}
	for _, o := range []any{web, job} {
		_ = pods.Add(o)
	}
	_ = nodes.Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3900m"), corev1.ResourcePods: resource.MustParse("110")},
		NodeInfo:    corev1.NodeSystemInfo{KubeletVersion: "v1.33.13"}}})
	_ = namespaces.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}})

	cs := NewClusterState(kubestate.NewRenderer(kubestate.Config{}, kubestate.Sources{
		Pods: corelisters.NewPodLister(pods), Nodes: corelisters.NewNodeLister(nodes), Namespaces: corelisters.NewNamespaceLister(namespaces),
	}), db)
	now := time.Now()
	if err := cs.writeOnce(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	last := func(ms ...string) (float64, int) {
		t.Helper()
		matchers := []*labels.Matcher{eq("job", JobClusterState)}
		for i := 0; i+1 < len(ms); i += 2 {
			matchers = append(matchers, eq(ms[i], ms[i+1]))
		}
		got := env.samples(t, matchers...)
		for _, pts := range got {
			return pts[len(pts)-1].V, len(got)
		}
		return -1, 0
	}
	tests := []struct {
		name string
		sel  []string
		want float64
	}{
		{"cpu request in cores", []string{"__name__", "kube_pod_container_resource_requests", "pod", "web-1", "resource", "cpu", "unit", "core", "node", "n1"}, 0.25},
		{"memory request in bytes", []string{"__name__", "kube_pod_container_resource_requests", "pod", "web-1", "resource", "memory", "unit", "byte"}, 64 << 20},
		{"extended resource limit", []string{"__name__", "kube_pod_container_resource_limits", "pod", "web-1", "resource", "nvidia_com_gpu"}, 1},
		{"running phase", []string{"__name__", "kube_pod_status_phase", "pod", "web-1", "phase", "Running"}, 1},
		{"not pending", []string{"__name__", "kube_pod_status_phase", "pod", "web-1", "phase", "Pending"}, 0},
		{"pod info", []string{"__name__", "kube_pod_info", "pod", "web-1", "node", "n1", "created_by_kind", "ReplicaSet", "created_by_name", "web-7d", "pod_ip", "10.1.0.5"}, 1},
		{"owner", []string{"__name__", "kube_pod_owner", "pod", "web-1", "owner_kind", "ReplicaSet", "owner_is_controller", "true"}, 1},
		{"node allocatable", []string{"__name__", "kube_node_status_allocatable", "node", "n1", "resource", "cpu"}, 3.9},
		{"node info", []string{"__name__", "kube_node_info", "node", "n1", "kubelet_version", "v1.33.13"}, 1},
		{"namespace phase", []string{"__name__", "kube_namespace_status_phase", "namespace", "shop", "phase", "Active"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if v, n := last(tc.sel...); n != 1 || v != tc.want {
				t.Fatalf("%d series, value %v; want one with %v", n, v, tc.want)
			}
		})
	}

	// A deleted pod's series end with a staleness marker.
	_ = pods.Delete(job)
	if err := cs.writeOnce(context.Background(), now.Add(15*time.Second)); err != nil {
		t.Fatal(err)
	}
	for lset, pts := range env.samples(t, eq("job", JobClusterState), eq("pod", "job-1")) {
		if !isStale(pts[len(pts)-1]) {
			t.Errorf("%s of a deleted pod not marked stale", lset)
		}
	}
}

// The writer parses the exposition family by family as it is rendered: its
// buffer holds the largest family, not the cluster's whole exposition.
func TestClusterStateHoldsOneFamilyAtATime(t *testing.T) {
	db, err := storage.Open(storage.Options{Path: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for i := range 2000 {
		_ = pods.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("pod-%d", i), UID: types.UID(fmt.Sprint(i))},
			Spec:   corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "main"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning}})
	}
	r := kubestate.NewRenderer(kubestate.Config{}, kubestate.Sources{Pods: corelisters.NewPodLister(pods)})
	var whole bytes.Buffer
	if err := r.Render(&whole); err != nil {
		t.Fatal(err)
	}
	cs := NewClusterState(r, db)
	if err := cs.writeOnce(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := (&testEnv{db: db}).samples(t, eq("__name__", "kube_pod_info")); len(got) != 2000 {
		t.Errorf("%d kube_pod_info series stored, want 2000", len(got))
	}
	largest := 0
	for _, family := range strings.Split(whole.String(), "# HELP ") {
		largest = max(largest, len(family))
	}
	// A bytes.Buffer grows by doubling: twice the largest family at most.
	if cs.buf.Cap() > 2*largest {
		t.Errorf("the writer's buffer grew to %d bytes for a %d-byte exposition whose largest family is %d bytes: it holds more than a family", cs.buf.Cap(), whole.Len(), largest)
	}
}

// partsRenderer renders fixed families, flushing after each.
type partsRenderer []string

func (p partsRenderer) RenderFamilies(b *bytes.Buffer, flush func() error) error {
	for _, part := range p {
		b.WriteString(part)
		if err := flush(); err != nil {
			return err
		}
	}
	return nil
}

// A family that does not parse costs the whole write, as a broken scrape
// does: the families parsed before it are not stored either, and the next
// good write stores everything.
func TestClusterStateIsStoredWholeOrNotAtAll(t *testing.T) {
	db, err := storage.Open(storage.Options{Path: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	env := &testEnv{db: db}
	good := "# TYPE kube_a gauge\nkube_a{pod=\"p\"} 1\n"
	cs := NewClusterState(partsRenderer{good, "# TYPE kube_b gauge\nkube_b{pod=\"p\" 1\n"}, db)
	now := time.Now()
	if err := cs.writeOnce(context.Background(), now); !errors.Is(err, errBody) {
		t.Fatalf("writing a broken family: %v, want a body error", err)
	}
	if got := env.samples(t, eq("job", JobClusterState)); len(got) != 0 {
		t.Fatalf("a failed write stored %v", got)
	}
	cs.renderer = partsRenderer{good, "# TYPE kube_b gauge\nkube_b{pod=\"p\"} 2\n"}
	if err := cs.writeOnce(context.Background(), now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := env.samples(t, eq("job", JobClusterState)); len(got) != 2 {
		t.Errorf("stored %v, want kube_a and kube_b", got)
	}
}
