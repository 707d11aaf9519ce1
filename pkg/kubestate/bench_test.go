package kubestate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// clusterOf is a cluster of the given size as kube-state-metrics sees it:
// 30 pods of 2 containers per node, a Deployment per 10 pods with ten
// ReplicaSet revisions (Kubernetes' default history), a Service and an
// Endpoints per Deployment, 5 ConfigMaps and a PVC/PV per 30 pods, a Job
// and a CronJob per 100 pods, 100 namespaces.
func clusterOf(nodes int, trimmed bool) Sources {
	pods := nodes * 30
	deployments := pods / 10
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "registry.example/app:1.2.3",
			Env: []corev1.EnvVar{{Name: "A", Value: "a-long-enough-value"}, {Name: "B", Value: "another-value"}}}}}}
	meta := func(i int, kind string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: fmt.Sprintf("ns-%d", i%100), Name: fmt.Sprintf("%s-%d", kind, i), UID: types.UID(fmt.Sprintf("%s-uid-%d", kind, i)),
			CreationTimestamp: created, ResourceVersion: "123456", Generation: 2,
			Labels:        map[string]string{"app.kubernetes.io/name": kind, "app.kubernetes.io/instance": fmt.Sprint(i)},
			Annotations:   map[string]string{"kubectl.kubernetes.io/last-applied-configuration": string(bytes.Repeat([]byte("x"), 1500))},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: "Apply", FieldsV1: &metav1.FieldsV1{Raw: bytes.Repeat([]byte("f"), 800)}}}}
	}
	trim := trimmer(keyMatcher{})
	if !trimmed {
		trim = func(o interface{}) (interface{}, error) { return o, nil }
	}
	var s Sources
	var ps list[*corev1.Pod]
	for i := range pods {
		p := &corev1.Pod{ObjectMeta: meta(i, "pod"), Spec: corev1.PodSpec{NodeName: fmt.Sprintf("node-%d", i%nodes)}, Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.0.0.1", HostIP: "10.1.0.1", QOSClass: corev1.PodQOSBurstable, StartTime: &started,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}}}
		p.OwnerReferences = controller
		for _, c := range []string{"main", "sidecar"} {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "registry.example/" + c + ":1", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}}})
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c, Ready: true, Image: "registry.example/" + c + ":1",
				ImageID: "registry.example/" + c + "@sha256:0123456789abcdef", ContainerID: "containerd://0123456789abcdef",
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}})
		}
		ps = append(ps, p)
	}
	s.Pods = ps
	var ns list[*corev1.Node]
	for i := range nodes {
		ns = append(ns, &corev1.Node{ObjectMeta: meta(i, "node"), Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("7900m"), corev1.ResourceMemory: resource.MustParse("31Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}, {Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
				{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse}}}})
	}
	s.Nodes = ns
	var nss list[*corev1.Namespace]
	for i := range 100 {
		nss = append(nss, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns-%d", i)}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}})
	}
	s.Namespaces = nss
	var ds list[*appsv1.Deployment]
	var rs list[*appsv1.ReplicaSet]
	var svcs list[*corev1.Service]
	var eps list[*corev1.Endpoints]
	for i := range deployments {
		d := &appsv1.Deployment{ObjectMeta: meta(i, "deploy"), Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](10), Template: template},
			Status: appsv1.DeploymentStatus{Replicas: 10, AvailableReplicas: 10, ReadyReplicas: 10, UpdatedReplicas: 10,
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
					{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"}}}}
		_, _ = trim(d)
		ds = append(ds, d)
		for r := range 10 {
			x := &appsv1.ReplicaSet{ObjectMeta: meta(i*10+r, "rs"), Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](0), Template: template}}
			_, _ = trim(x)
			rs = append(rs, x)
		}
		svc := &corev1.Service{ObjectMeta: meta(i, "svc"), Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1", Type: corev1.ServiceTypeClusterIP}}
		_, _ = trim(svc)
		svcs = append(svcs, svc)
		ep := &corev1.Endpoints{ObjectMeta: meta(i, "svc"), Subsets: []corev1.EndpointSubset{{Addresses: make([]corev1.EndpointAddress, 10)}}}
		_, _ = trim(ep)
		eps = append(eps, ep)
	}
	s.Deployments, s.ReplicaSets, s.Services, s.Endpoints = ds, rs, svcs, eps
	var cms list[*metav1.PartialObjectMetadata]
	for i := range pods / 6 {
		m := &metav1.PartialObjectMetadata{ObjectMeta: meta(i, "cm")}
		_, _ = trim(m)
		cms = append(cms, m)
	}
	s.ConfigMaps = cms
	var pvcs list[*corev1.PersistentVolumeClaim]
	var pvs list[*corev1.PersistentVolume]
	for i := range pods / 30 {
		c := &corev1.PersistentVolumeClaim{ObjectMeta: meta(i, "pvc"), Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("ssd"), VolumeName: fmt.Sprintf("pv-%d", i),
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}
		_, _ = trim(c)
		pvcs = append(pvcs, c)
		v := &corev1.PersistentVolume{ObjectMeta: meta(i, "pv"), Spec: corev1.PersistentVolumeSpec{StorageClassName: "ssd",
			Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}}, Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound}}
		_, _ = trim(v)
		pvs = append(pvs, v)
	}
	s.PersistentVolumeClaims, s.PersistentVolumes = pvcs, pvs
	var jobs list[*batchv1.Job]
	var crons list[*batchv1.CronJob]
	for i := range pods / 100 {
		j := &batchv1.Job{ObjectMeta: meta(i, "job"), Spec: batchv1.JobSpec{Template: template}, Status: batchv1.JobStatus{Succeeded: 1,
			Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}}
		_, _ = trim(j)
		jobs = append(jobs, j)
		c := &batchv1.CronJob{ObjectMeta: meta(i, "cron"), Spec: batchv1.CronJobSpec{Schedule: "0 * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: j.Spec}}}
		_, _ = trim(c)
		crons = append(crons, c)
	}
	s.Jobs, s.CronJobs = jobs, crons
	return s
}

// BenchmarkRender is one cluster-state write's rendering at 1,000 nodes ×
// 30 pods: time and allocations per resolution, and the series it writes
// (what the head holds for it).
func BenchmarkRender(b *testing.B) {
	for _, bc := range []struct {
		families string
		cfg      Config
	}{{"default", Config{}}, {"all", Config{Allowlist: []*regexp.Regexp{regexp.MustCompile(".*")}}}} {
		nodes := 1000
		b.Run(fmt.Sprintf("families=%s/nodes=%d", bc.families, nodes), func(b *testing.B) {
			r := NewRenderer(bc.cfg, clusterOf(nodes, true))
			var buf bytes.Buffer
			if err := r.Render(&buf); err != nil {
				b.Fatal(err)
			}
			series := bytes.Count(buf.Bytes(), []byte("\n")) - 2*len(r.Families())
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				buf.Reset()
				_ = r.Render(&buf)
			}
			b.ReportMetric(float64(series), "series")
			b.ReportMetric(float64(series)/float64(nodes*30), "series/pod")
		})
	}
}

// BenchmarkCacheBytes is the heap the informer caches of the resources
// kmetrics watches for cluster state only (beyond the pods, nodes and
// namespaces it watches anyway) hold at 1,000 nodes × 30 pods, objects as
// the trimming transform leaves them, beside the same objects untrimmed.
func BenchmarkCacheBytes(b *testing.B) {
	for _, trimmed := range []bool{true, false} {
		b.Run(fmt.Sprintf("trimmed=%v", trimmed), func(b *testing.B) {
			for range b.N {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				s := clusterOf(1000, trimmed)
				s.Pods, s.Nodes, s.Namespaces = nil, nil, nil
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB")
				runtime.KeepAlive(s)
			}
		})
	}
}

// BenchmarkHeadBytes is what the cluster-state series cost in the TSDB
// head at 1,000 nodes × 30 pods: the heap of a head holding four writes of
// them (a minute at --cluster-state.interval), default families and all.
func BenchmarkHeadBytes(b *testing.B) {
	for _, bc := range []struct {
		families string
		cfg      Config
	}{{"default", Config{}}, {"all", Config{Allowlist: []*regexp.Regexp{regexp.MustCompile(".*")}}}} {
		b.Run("families="+bc.families, func(b *testing.B) {
			var buf bytes.Buffer
			if err := NewRenderer(bc.cfg, clusterOf(1000, true)).Render(&buf); err != nil {
				b.Fatal(err)
			}
			body := buf.Bytes()
			for range b.N {
				db, err := storage.Open(storage.Options{Path: b.TempDir()}, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				series := 0
				for w := range 4 {
					series = appendExposition(b, db, body, int64(w)*30_000)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB")
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(series), "B/series")
				_ = db.Close()
			}
		})
	}
}

func appendExposition(b *testing.B, db *storage.DB, body []byte, ts int64) int {
	p, err := textparse.New(body, "text/plain; version=0.0.4", labels.NewSymbolTable(), textparse.ParserOptions{})
	if err != nil {
		b.Fatal(err)
	}
	app := db.Appender(context.Background())
	n := 0
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if e != textparse.EntrySeries {
			continue
		}
		var l labels.Labels
		p.Labels(&l)
		_, _, v := p.Series()
		l = labels.NewBuilder(l).Set("job", "kube-state-metrics").Set("instance", "kmetrics").Labels()
		if _, err := app.Append(0, l, ts, v); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	return n
}
