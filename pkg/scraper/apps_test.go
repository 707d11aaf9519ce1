package scraper

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

func appPod(name, ip string, phase corev1.PodPhase, lbls, ann map[string]string, ports ...int32) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: k8stypes.UID("uid-" + name), Labels: lbls, Annotations: ann},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "main"}}},
		Status:     corev1.PodStatus{Phase: phase, PodIP: ip},
	}
	for _, port := range ports {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: port})
	}
	return p
}

func TestAppTargets(t *testing.T) {
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	services := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	scrape := map[string]string{AnnotationScrape: "true", AnnotationPort: "8080"}
	for _, p := range []*corev1.Pod{
		appPod("annotated", "10.0.0.1", corev1.PodRunning, map[string]string{"app": "web", "app.kubernetes.io/name": "shop-web", "pod-template-hash": "x"}, scrape),
		appPod("custom-path", "10.0.0.2", corev1.PodRunning, nil, map[string]string{AnnotationScrape: "true", AnnotationPort: "9102", AnnotationPath: "/stats", AnnotationScheme: "https"}),
		appPod("container-port", "10.0.0.3", corev1.PodRunning, nil, map[string]string{AnnotationScrape: "true"}, 7000),
		appPod("no-port", "10.0.0.4", corev1.PodRunning, nil, map[string]string{AnnotationScrape: "true"}),
		appPod("bad-port", "10.0.0.5", corev1.PodRunning, nil, map[string]string{AnnotationScrape: "true", AnnotationPort: "http"}),
		appPod("pending", "", corev1.PodPending, nil, scrape),
		appPod("not-asked", "10.0.0.6", corev1.PodRunning, nil, nil, 8080),
		appPod("scrape-false", "10.0.0.7", corev1.PodRunning, nil, map[string]string{AnnotationScrape: "false", AnnotationPort: "8080"}),
		appPod("bad-scheme", "10.0.0.8", corev1.PodRunning, nil, map[string]string{AnnotationScrape: "true", AnnotationPort: "1", AnnotationScheme: "ftp"}),
		appPod("behind-service", "10.0.0.9", corev1.PodRunning, map[string]string{"app": "api"}, nil),
		// Annotated itself and behind the service: scraped once, as a pod.
		appPod("both", "10.0.0.10", corev1.PodRunning, map[string]string{"app": "api"}, map[string]string{AnnotationScrape: "true", AnnotationPort: "9000"}),
	} {
		_ = pods.Add(p)
	}
	_ = services.Add(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api", Annotations: map[string]string{AnnotationScrape: "true", AnnotationPort: "9000"}},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "api"}},
	})
	_ = services.Add(&corev1.Service{ // no selector: nothing to scrape
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "external", Annotations: map[string]string{AnnotationScrape: "true"}},
	})
	s := NewAppScraper(AppConfig{Interval: time.Second, Timeout: time.Second, MaxBodyBytes: 1 << 20, PodLabels: []string{"app", "app.kubernetes.io/name"}},
		corelisters.NewPodLister(pods), corelisters.NewServiceLister(services), nil)
	var got []string
	for _, tg := range s.desired() {
		got = append(got, tg.url+" "+tg.labels.String())
	}
	sort.Strings(got)
	want := []string{
		`http://10.0.0.10:9000/metrics {app="api", instance="10.0.0.10:9000", job="kubernetes-pods", namespace="shop", node="n1", pod="both"}`,
		`http://10.0.0.1:8080/metrics {app="web", app_kubernetes_io_name="shop-web", instance="10.0.0.1:8080", job="kubernetes-pods", namespace="shop", node="n1", pod="annotated"}`,
		`http://10.0.0.3:7000/metrics {instance="10.0.0.3:7000", job="kubernetes-pods", namespace="shop", node="n1", pod="container-port"}`,
		`http://10.0.0.9:9000/metrics {app="api", instance="10.0.0.9:9000", job="kubernetes-service-endpoints", namespace="shop", node="n1", pod="behind-service", service="api"}`,
		`https://10.0.0.2:9102/stats {instance="10.0.0.2:9102", job="kubernetes-pods", namespace="shop", node="n1", pod="custom-path"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("targets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// An annotated pod is scraped with the kubelet path's guarantees: its
// series carry the target labels, a failing target is up=0 with its series
// ended, and a pod that goes away has its series ended.
func TestAppScrape(t *testing.T) {
	db, err := storage.Open(storage.Options{Path: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	env := &testEnv{db: db}
	var broken atomic.Bool
	var count atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		count.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte("# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\",pod=\"spoofed\"} 42\n"))
	}))
	defer app.Close()
	host, port, _ := net.SplitHostPort(app.Listener.Addr().String())
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	_ = pods.Add(appPod("web-1", host, corev1.PodRunning, map[string]string{"app": "web"}, map[string]string{AnnotationScrape: "true", AnnotationPort: port}))
	meta := storage.NewMetadata()
	s := NewAppScraper(AppConfig{Interval: 20 * time.Millisecond, Timeout: time.Second, MaxBodyBytes: 1 << 20, PodLabels: []string{"app"}, Metadata: meta},
		corelisters.NewPodLister(pods), nil, db)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	series := eq("__name__", "http_requests_total")
	waitUntil(t, "a scrape", func() bool { return len(env.samples(t, series)) == 1 })
	for lset := range env.samples(t, series) {
		want := `{__name__="http_requests_total", app="web", code="200", exported_pod="spoofed", instance="` + host + ":" + port + `", job="kubernetes-pods", namespace="shop", node="n1", pod="web-1"}`
		if lset != want {
			t.Errorf("series %s\nwant   %s", lset, want)
		}
	}
	if list := meta.List(); len(list) != 1 || list[0].Family != "http_requests_total" || list[0].Type != "counter" {
		t.Errorf("metadata %+v, want http_requests_total as a counter", list)
	}
	lastUp := func() float64 {
		pts := env.samples(t, eq("__name__", "up"), eq("pod", "web-1"))
		for _, p := range pts {
			return p[len(p)-1].V
		}
		return -1
	}
	if lastUp() != 1 {
		t.Errorf("up = %v after a good scrape", lastUp())
	}
	broken.Store(true)
	waitUntil(t, "up=0 after the target fails", func() bool { return lastUp() == 0 })
	if pts := env.samples(t, series); !isStale(lastOf(pts)) {
		t.Error("a failing target's series must end (staleness marker)")
	}
	broken.Store(false)
	waitUntil(t, "up=1 again", func() bool { return lastUp() == 1 })
	_ = pods.Delete(appPod("web-1", host, corev1.PodRunning, nil, nil))
	waitUntil(t, "series ended after the pod went away", func() bool {
		return isStale(lastOf(env.samples(t, series)))
	})
}

func lastOf(m map[string][]storage.Point) storage.Point {
	for _, pts := range m {
		return pts[len(pts)-1]
	}
	return storage.Point{}
}

func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	waitFor(t, what, func() error {
		if f() {
			return nil
		}
		return errors.New("not yet")
	})
}
