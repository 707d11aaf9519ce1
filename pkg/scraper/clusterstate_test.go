package scraper

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
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

// openTestDB is a TSDB in a temporary directory.
func openTestDB(t *testing.T) *storage.DB {
	t.Helper()
	db, err := storage.Open(storage.Options{Path: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// The writer stores exactly what kube-state-metrics' text exposition of the
// same objects stores when scraped: the same series, labels and values,
// escapes included, and the same type and help.
func TestClusterStateStoresWhatItsExpositionWould(t *testing.T) {
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for i := range 300 {
		_ = pods.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns-%d", i%7), Name: fmt.Sprintf("pod-%d", i), UID: types.UID(fmt.Sprint(i)),
			Labels:      map[string]string{"app": fmt.Sprintf("a%d", i%5), "job": "batch", "note": "say \"hi\"\n"},
			Annotations: map[string]string{"team": "t" + fmt.Sprint(i%3), "empty": ""}},
			Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "main", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "main", RestartCount: int32(i % 4), Ready: i%2 == 0}}}})
	}
	labelsAllow, err := kubestate.ParseAllowlist("pods=[*]")
	if err != nil {
		t.Fatal(err)
	}
	annotationsAllow, err := kubestate.ParseAllowlist("pods=[team,empty]")
	if err != nil {
		t.Fatal(err)
	}
	r := kubestate.NewRenderer(kubestate.Config{LabelsAllowlist: labelsAllow, AnnotationsAllowlist: annotationsAllow},
		kubestate.Sources{Pods: corelisters.NewPodLister(pods)})
	now := time.Now()

	scraped, scrapedMeta := openTestDB(t), storage.NewMetadata()
	var text bytes.Buffer
	if err := r.Render(&text); err != nil {
		t.Fatal(err)
	}
	tgt := newTargetWithLabels(labels.FromStrings(storage.LabelJob, JobClusterState, storage.LabelInstance, "kmetrics"))
	tgt.meta, tgt.metaTrusted = scrapedMeta, true
	if err := storeExposition(context.Background(), scraped, tgt, text.Bytes(), now); err != nil {
		t.Fatal(err)
	}

	written, writtenMeta := openTestDB(t), storage.NewMetadata()
	if err := NewClusterState(r, written).WithMetadata(writtenMeta).writeOnce(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	want := (&testEnv{db: scraped}).samples(t, eq("job", JobClusterState))
	got := (&testEnv{db: written}).samples(t, eq("job", JobClusterState))
	if len(want) < 3000 {
		t.Fatalf("only %d series scraped from the exposition", len(want))
	}
	for s, pts := range want {
		if !slices.Equal(got[s], pts) {
			t.Errorf("%s: written %v, the exposition scraped %v", s, got[s], pts)
		}
	}
	for s := range got {
		if _, ok := want[s]; !ok {
			t.Errorf("%s written, not in the exposition", s)
		}
	}
	if w, g := scrapedMeta.List(), writtenMeta.List(); len(w) == 0 || !reflect.DeepEqual(w, g) {
		t.Errorf("metadata: written %+v, scraped %+v", g, w)
	}
}

// A value that is not UTF-8 (an annotation sent as protobuf may hold any
// bytes) is stored with its invalid bytes replaced: one object cannot fail
// the whole cluster's write.
func TestClusterStateInvalidUTF8CostsNothingElse(t *testing.T) {
	db := openTestDB(t)
	cs := NewClusterState(fixedRenderer{
		{"kube_a", []string{"namespace", "n", "pod", "bad"}, []string{"annotation_x", "a\xffb"}},
		{"kube_a", []string{"namespace", "n", "pod", "good"}, []string{"job", "batch"}},
	}, db)
	if err := cs.writeOnce(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	got := (&testEnv{db: db}).samples(t, eq("__name__", "kube_a"))
	if len(got) != 2 {
		t.Fatalf("stored %v, want both pods", got)
	}
	for _, want := range []string{
		"{__name__=\"kube_a\", annotation_x=\"a\ufffdb\", instance=\"kmetrics\", job=\"kube-state-metrics\", namespace=\"n\", pod=\"bad\"}",
		// A rendered label named job is kept as exported_job, as a scrape keeps it.
		`{__name__="kube_a", exported_job="batch", instance="kmetrics", job="kube-state-metrics", namespace="n", pod="good"}`,
	} {
		if _, ok := got[want]; !ok {
			t.Errorf("%s not stored (have %v)", want, got)
		}
	}
}

// fixedRenderer renders one family per sample, in order.
type fixedRenderer []struct {
	name     string
	base, kv []string
}

func (f fixedRenderer) RenderTo(s kubestate.Sink) error {
	for _, x := range f {
		s.Family(x.name, "help", "gauge")
		s.Sample(x.name, 1, x.base, x.kv)
		if err := s.EndFamily(); err != nil {
			return err
		}
	}
	return nil
}

// A series the TSDB cannot take (here, a label named twice) costs the whole
// write, as a broken scrape does: the families before it are not stored
// either, and the next good write stores everything.
func TestClusterStateIsStoredWholeOrNotAtAll(t *testing.T) {
	db := openTestDB(t)
	env := &testEnv{db: db}
	good := fixedRenderer{{"kube_a", []string{"pod", "p"}, nil}}
	cs := NewClusterState(append(good, fixedRenderer{{"kube_b", []string{"pod", "p"}, []string{"pod", "q"}}}...), db)
	now := time.Now()
	if err := cs.writeOnce(context.Background(), now); err == nil || !strings.Contains(err.Error(), "kube_b") {
		t.Fatalf("writing a series with a label twice: %v, want an error naming it", err)
	}
	if got := env.samples(t, eq("job", JobClusterState)); len(got) != 0 {
		t.Fatalf("a failed write stored %v", got)
	}
	cs.renderer = append(good, fixedRenderer{{"kube_b", []string{"pod", "p"}, nil}}...)
	if err := cs.writeOnce(context.Background(), now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := env.samples(t, eq("job", JobClusterState)); len(got) != 2 {
		t.Errorf("stored %v, want kube_a and kube_b", got)
	}
}

// Two objects rendering the same series store it once (the first value),
// and it is not marked stale while either is there.
func TestClusterStateDuplicateSeriesIsOneSeries(t *testing.T) {
	db := openTestDB(t)
	dup := fixedRenderer{{"kube_a", []string{"pod", "p"}, nil}, {"kube_a", []string{"pod", "p"}, nil}}
	cs := NewClusterState(dup, db)
	now := time.Now()
	for i := range 3 {
		if err := cs.writeOnce(context.Background(), now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	got := (&testEnv{db: db}).samples(t, eq("__name__", "kube_a"))
	for s, pts := range got {
		if len(pts) != 3 || slices.ContainsFunc(pts, isStale) {
			t.Errorf("%s: %v, want three samples, none stale", s, pts)
		}
	}
	if len(got) != 1 {
		t.Errorf("stored %v, want one series", got)
	}
}
