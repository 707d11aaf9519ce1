package appscrape

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/scrape"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

const (
	annScrape = "prometheus.io/scrape"
	annPort   = "prometheus.io/port"
	annPath   = "prometheus.io/path"
	annScheme = "prometheus.io/scheme"
)

func appPod(name, ip string, phase corev1.PodPhase, lbls, ann map[string]string, ports ...int32) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: k8stypes.UID("uid-" + name), Labels: lbls, Annotations: ann},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "main"}}},
		Status:     corev1.PodStatus{Phase: phase, PodIP: ip},
	}
	for _, port := range ports {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{Name: "metrics", ContainerPort: port, Protocol: corev1.ProtocolTCP})
	}
	return p
}

// startInformers serves objs through shared informers, as kmetrics' own.
func startInformers(t *testing.T, objs ...runtime.Object) (*Informers, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset(objs...)
	f := informers.NewSharedInformerFactory(client, 0)
	inf := &Informers{Pods: f.Core().V1().Pods().Informer(), Services: f.Core().V1().Services().Informer()}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	f.Start(stop)
	f.WaitForCacheSync(stop)
	return inf, client
}

// builtinTargets runs each built-in job's discovery once and relabels what
// it finds as the scrape manager does: "URL labels" per target.
func builtinTargets(t *testing.T, c Config, inf *Informers) []string {
	t.Helper()
	cfg, err := load(c, inf, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	jobs, _ := cfg.GetScrapeConfigs()
	var got []string
	for _, job := range jobs {
		d, err := job.ServiceDiscoveryConfigs[0].NewDiscoverer(discovery.DiscovererOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ch := make(chan []*targetgroup.Group, 100)
		go d.Run(ctx, ch)
		// The pod role sends one group per pod; the service role one batch.
		var groups []*targetgroup.Group
		deadline := time.After(5 * time.Second)
	collect:
		for {
			select {
			case g := <-ch:
				groups = append(groups, g...)
			case <-time.After(300 * time.Millisecond):
				if len(groups) > 0 {
					break collect
				}
			case <-deadline:
				break collect
			}
		}
		cancel()
		lb := labels.NewBuilder(labels.EmptyLabels())
		for _, g := range groups {
			targets, errs := scrape.TargetsFromGroup(g, job, nil, lb)
			for _, err := range errs {
				t.Errorf("job %s: %v", job.JobName, err)
			}
			for _, tg := range targets {
				if tg.Labels(lb).IsEmpty() {
					continue // dropped by relabeling
				}
				got = append(got, tg.URL().String()+" "+tg.Labels(lb).String())
			}
		}
	}
	sort.Strings(got)
	return got
}

// The built-in jobs give the labels kmetrics' application series always
// had (job, instance, namespace, pod, node, service, the chosen pod
// labels), with Prometheus' classic relabeling semantics for what the
// annotations say.
func TestBuiltinJobs(t *testing.T) {
	scrapeAt := map[string]string{annScrape: "true", annPort: "8080"}
	inf, _ := startInformers(t,
		appPod("annotated", "10.0.0.1", corev1.PodRunning, map[string]string{"app": "web", "app.kubernetes.io/name": "shop-web", "pod-template-hash": "x"}, scrapeAt),
		appPod("custom-path", "10.0.0.2", corev1.PodRunning, nil, map[string]string{annScrape: "true", annPort: "9102", annPath: "/stats", annScheme: "https"}),
		appPod("container-port", "10.0.0.3", corev1.PodRunning, nil, map[string]string{annScrape: "true"}, 7000),
		appPod("pending", "", corev1.PodPending, nil, scrapeAt),
		appPod("done", "10.0.0.11", corev1.PodSucceeded, nil, scrapeAt),
		appPod("not-asked", "10.0.0.6", corev1.PodRunning, nil, nil, 8080),
		appPod("scrape-false", "10.0.0.7", corev1.PodRunning, nil, map[string]string{annScrape: "false", annPort: "8080"}),
		appPod("behind-service", "10.0.0.9", corev1.PodRunning, map[string]string{"app": "api"}, nil, 9000),
		// Colliding keys sanitize to one name: one value wins, the
		// target is not lost.
		appPod("collide", "10.0.0.12", corev1.PodRunning, map[string]string{"app.kubernetes.io/name": "a", "app_kubernetes_io_name": "b"}, scrapeAt),
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api", Annotations: map[string]string{annScrape: "true"}},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "api"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP}}},
		},
		&corev1.Service{ // no selector: nothing to scrape
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "external", Annotations: map[string]string{annScrape: "true"}},
		},
	)
	got := builtinTargets(t, Config{Builtin: true, Interval: 15 * time.Second, Timeout: 10 * time.Second, MaxBodyBytes: 1 << 20,
		PodLabels: []string{"app", "app.kubernetes.io/name"}}, inf)
	want := []string{
		`http://10.0.0.12:8080/metrics {app_kubernetes_io_name="b", instance="10.0.0.12:8080", job="kubernetes-pods", namespace="shop", node="n1", pod="collide"}`,
		`http://10.0.0.1:8080/metrics {app="web", app_kubernetes_io_name="shop-web", instance="10.0.0.1:8080", job="kubernetes-pods", namespace="shop", node="n1", pod="annotated"}`,
		`http://10.0.0.3:7000/metrics {instance="10.0.0.3:7000", job="kubernetes-pods", namespace="shop", node="n1", pod="container-port"}`,
		`http://10.0.0.9:9000/metrics {app="api", instance="10.0.0.9:9000", job="kubernetes-service-endpoints", namespace="shop", node="n1", pod="behind-service", service="api"}`,
		`https://10.0.0.2:9102/stats {instance="10.0.0.2:9102", job="kubernetes-pods", namespace="shop", node="n1", pod="custom-path"}`,
	}
	for i := range got {
		// kubernetes_sd takes either value of colliding keys.
		got[i] = strings.Replace(got[i], `app_kubernetes_io_name="a"`, `app_kubernetes_io_name="b"`, 1)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("targets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBuiltinJobsCopyAllPodLabels(t *testing.T) {
	inf, _ := startInformers(t, appPod("web", "10.0.0.1", corev1.PodRunning, map[string]string{"app": "web", "tier": "front"}, map[string]string{annScrape: "true", annPort: "80"}))
	got := builtinTargets(t, Config{Builtin: true, Interval: time.Minute, Timeout: time.Second, MaxBodyBytes: 1 << 20, PodLabels: []string{"*"}}, inf)
	want := `http://10.0.0.1:80/metrics {app="web", instance="10.0.0.1:80", job="kubernetes-pods", namespace="shop", node="n1", pod="web", tier="front"}`
	if len(got) != 1 || got[0] != want {
		t.Errorf("targets %q\nwant %q", got, want)
	}
}
