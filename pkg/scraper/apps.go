package scraper

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	corev1 "k8s.io/api/core/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// The annotations of Prometheus' kubernetes_sd example configuration.
const (
	AnnotationScrape = "prometheus.io/scrape"
	AnnotationPort   = "prometheus.io/port"
	AnnotationPath   = "prometheus.io/path"
	AnnotationScheme = "prometheus.io/scheme"
)

// Jobs of application series: found through a pod's own annotations, or
// through an annotated Service selecting the pod.
const (
	JobPods             = "kubernetes-pods"
	JobServiceEndpoints = "kubernetes-service-endpoints"
)

// AppConfig configures application scraping.
type AppConfig struct {
	Interval, Timeout time.Duration
	MaxBodyBytes      int64
	// PodLabels are the pod labels copied onto every series of the pod,
	// with names made valid ("app.kubernetes.io/name" →
	// "app_kubernetes_io_name"); "*" copies all.
	PodLabels []string
	// Transport reaches the applications (TLS verified for https targets);
	// it must carry no credentials: applications never get kmetrics' token.
	Transport http.RoundTripper
	// Metadata, when set, records the scraped families' type and help.
	Metadata *storage.Metadata
	// Budget, when set, bounds the head series of each namespace's targets.
	Budget *storage.SeriesBudget
}

// AppScraper scrapes the pods that ask for it through prometheus.io/*
// annotations on themselves or on a Service that selects them, with the
// kubelet scrapes' machinery: size cap, timeout, whole-or-nothing storage,
// up/scrape_duration_seconds, staleness when a target fails or goes away.
type AppScraper struct {
	cfg      AppConfig
	pods     corelisters.PodLister
	services corelisters.ServiceLister
	db       Appendable
	client   *http.Client

	mu    sync.Mutex
	loops map[appKey]*appLoop
	wg    sync.WaitGroup
}

// appKey identifies one endpoint of one pod.
type appKey struct {
	pod    types.UID
	scheme string
	host   string // ip:port
	path   string
}

type appTarget struct {
	url    string
	labels labels.Labels
}

type appLoop struct {
	target appTarget
	cancel context.CancelFunc
	// retire: the target went away, so its series end; a shutdown keeps them.
	retire bool
	// lastReason is why the last scrape failed ("" when it did not).
	lastReason string
}

// sameHostRedirects follows an application's redirect only to the host it
// scraped: a target must not make kmetrics fetch from elsewhere (another
// pod, a kubelet, the API server) on its behalf.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return fmt.Errorf("stopped after %d redirects", len(via))
	}
	if req.URL.Host != via[0].URL.Host {
		return fmt.Errorf("redirect to another host (%s) refused", req.URL.Host)
	}
	return nil
}

// NewAppScraper builds the scraper; Run starts it.
func NewAppScraper(cfg AppConfig, pods corelisters.PodLister, services corelisters.ServiceLister, db Appendable) *AppScraper {
	rt := cfg.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &AppScraper{
		cfg: cfg, pods: pods, services: services, db: db,
		client: &http.Client{Transport: rt, Timeout: cfg.Timeout, CheckRedirect: sameHostRedirects},
		loops:  map[appKey]*appLoop{},
	}
}

// Run reconciles the targets with the annotated pods and services every few
// seconds until ctx ends, then stops every loop.
func (s *AppScraper) Run(ctx context.Context) {
	tick := time.NewTicker(min(s.cfg.Interval, 5*time.Second))
	defer tick.Stop()
	for {
		s.reconcile(ctx)
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for _, l := range s.loops {
				l.cancel()
			}
			s.mu.Unlock()
			s.wg.Wait()
			return
		case <-tick.C:
		}
	}
}

func (s *AppScraper) reconcile(ctx context.Context) {
	want := s.desired()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, l := range s.loops {
		if t, ok := want[k]; !ok || t.url != l.target.url || !labels.Equal(t.labels, l.target.labels) {
			l.retire = true
			l.cancel()
			delete(s.loops, k)
		}
	}
	for k, t := range want {
		if _, ok := s.loops[k]; ok {
			continue
		}
		lctx, cancel := context.WithCancel(ctx)
		l := &appLoop{target: t, cancel: cancel}
		s.loops[k] = l
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runLoop(lctx, l)
		}()
	}
	appTargets.Set(float64(len(s.loops)))
}

// desired lists the endpoints to scrape now. A pod's own annotations win
// over a Service's for the same endpoint; among Services, the first by name.
func (s *AppScraper) desired() map[appKey]appTarget {
	want := map[appKey]appTarget{}
	pods, err := s.pods.List(k8slabels.Everything())
	if err != nil {
		klog.ErrorS(err, "Listing pods to scrape")
		return want
	}
	for _, pod := range pods {
		if pod.Annotations[AnnotationScrape] == "true" {
			s.add(want, pod, pod.Annotations, JobPods, "")
		}
	}
	if s.services == nil {
		return want
	}
	services, err := s.services.List(k8slabels.Everything())
	if err != nil {
		klog.ErrorS(err, "Listing services to scrape")
		return want
	}
	sort.Slice(services, func(i, j int) bool { return services[i].Name < services[j].Name })
	for _, svc := range services {
		if svc.Annotations[AnnotationScrape] != "true" || len(svc.Spec.Selector) == 0 {
			continue
		}
		selected, err := s.pods.Pods(svc.Namespace).List(k8slabels.SelectorFromSet(svc.Spec.Selector))
		if err != nil {
			continue
		}
		for _, pod := range selected {
			s.add(want, pod, svc.Annotations, JobServiceEndpoints, svc.Name)
		}
	}
	return want
}

func (s *AppScraper) add(want map[appKey]appTarget, pod *corev1.Pod, ann map[string]string, job, service string) {
	if pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" {
		return
	}
	port := ann[AnnotationPort]
	if port == "" {
		port = firstContainerPort(pod)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		klog.V(2).InfoS("Not scraping: no valid port", "pod", klog.KObj(pod), "port", port)
		return
	}
	path := ann[AnnotationPath]
	if path == "" {
		path = "/metrics"
	}
	scheme := ann[AnnotationScheme]
	if scheme == "" {
		scheme = "http"
	}
	if (scheme != "http" && scheme != "https") || !strings.HasPrefix(path, "/") {
		klog.V(2).InfoS("Not scraping: invalid scheme or path", "pod", klog.KObj(pod), "scheme", scheme, "path", path)
		return
	}
	host := net.JoinHostPort(pod.Status.PodIP, port)
	key := appKey{pod: pod.UID, scheme: scheme, host: host, path: path}
	if _, ok := want[key]; ok {
		return
	}
	u := (&url.URL{Scheme: scheme, Host: host, Path: path}).String()
	want[key] = appTarget{url: u, labels: s.targetLabels(pod, job, host, service)}
}

func firstContainerPort(pod *corev1.Pod) string {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.ContainerPort > 0 {
				return strconv.Itoa(int(p.ContainerPort))
			}
		}
	}
	return ""
}

// targetLabels are what every series of the target carries: job, instance,
// namespace, pod, node, service (if found through one) and the pod labels
// the policy copies. Target labels win over copied pod labels.
func (s *AppScraper) targetLabels(pod *corev1.Pod, job, host, service string) labels.Labels {
	b := labels.NewScratchBuilder(8)
	seen := map[string]bool{}
	for _, name := range s.copiedLabels(pod) {
		// Keys that sanitize alike ("a.b" and "a_b") would make a label
		// set with a duplicate name, which the TSDB refuses on every
		// scrape: the first by key wins.
		clean := sanitizeLabelName(name)
		if seen[clean] {
			continue
		}
		seen[clean] = true
		b.Add(clean, pod.Labels[name])
	}
	b.Sort()
	lb := labels.NewBuilder(b.Labels())
	lb.Set(storage.LabelJob, job)
	lb.Set(storage.LabelInstance, host)
	lb.Set(storage.LabelNamespace, pod.Namespace)
	lb.Set(storage.LabelPod, pod.Name)
	lb.Set(storage.LabelNode, pod.Spec.NodeName)
	lb.Set("service", service)
	return lb.Labels()
}

func (s *AppScraper) copiedLabels(pod *corev1.Pod) []string {
	var names []string
	for _, want := range s.cfg.PodLabels {
		if want == "*" {
			names = names[:0]
			for name := range pod.Labels {
				names = append(names, name)
			}
			break
		}
		if _, ok := pod.Labels[want]; ok {
			names = append(names, want)
		}
	}
	sort.Strings(names)
	return names
}

// sanitizeLabelName maps a Kubernetes label key to a Prometheus label name,
// as Prometheus' kubernetes_sd does for __meta_kubernetes_pod_label_*.
func sanitizeLabelName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// runLoop scrapes one target every interval from an offset derived from
// its URL, until its context ends.
func (s *AppScraper) runLoop(ctx context.Context, l *appLoop) {
	t := newTargetWithLabels(l.target.labels)
	t.meta, t.budget, t.namespace = s.cfg.Metadata, s.cfg.Budget, l.target.labels.Get(storage.LabelNamespace)
	defer func() {
		s.mu.Lock()
		retire := l.retire
		s.mu.Unlock()
		if retire {
			appRefused.Delete(map[string]string{"namespace": t.namespace, "pod": t.targetLabels.Get(storage.LabelPod), "reason": reasonSeriesBudget})
			if err := storeEnd(s.db, t, time.Now(), false, 0); err != nil {
				klog.ErrorS(err, "Marking series of a removed target stale", "target", l.target.url)
			}
		}
	}()
	timer := time.NewTimer(offsetFor(l.target.url, s.cfg.Interval))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(s.cfg.Interval)
		s.scrape(ctx, t, l)
	}
}

func (s *AppScraper) scrape(ctx context.Context, t *target, l *appLoop) {
	u := l.target.url
	o := scrapeOnce(ctx, s.db, t, s.cfg.Timeout, func(ctx context.Context, buf []byte) ([]byte, string, error) {
		return fetchMetrics(ctx, s.client, u, buf, s.cfg.MaxBodyBytes, "--scrape.max-response-bytes")
	})
	if o.canceled {
		return
	}
	// A target's failure is logged when it starts or changes, not every
	// scrape: a hostile target must not flood the log either.
	changed := o.reason != l.lastReason
	l.lastReason = o.reason
	switch {
	case o.err != nil:
		s.fail(t, u, o.reason, o.err, o.start, o.dur, changed)
	case o.storeErr != nil:
		appScrapeFailures.WithLabelValues(reasonStorage).Inc()
		klog.ErrorS(o.storeErr, "Storing an application scrape", "target", u)
	}
}

// fail records a failed scrape: up=0 and the target's series end.
func (s *AppScraper) fail(t *target, u, reason string, err error, at time.Time, dur time.Duration, changed bool) {
	pod := t.targetLabels.Get(storage.LabelPod)
	switch {
	case reason == reasonSeriesBudget:
		appRefused.WithLabelValues(t.namespace, pod, reason).Inc()
		if changed {
			klog.ErrorS(err, "Refused an application scrape", "namespace", t.namespace, "pod", pod, "target", u, "reason", reason)
		}
	case changed:
		klog.InfoS("Failed to scrape application", "namespace", t.namespace, "pod", pod, "target", u, "reason", reason, "err", err)
	}
	appScrapeFailures.WithLabelValues(reason).Inc()
	if err := storeEnd(s.db, t, at, true, dur); err != nil {
		klog.ErrorS(err, "Recording a failed application scrape", "target", u)
	}
}
