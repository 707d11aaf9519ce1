package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/kmetrics/kmetrics/pkg/appscrape"
	"github.com/kmetrics/kmetrics/pkg/kubestate"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

// newAppScraper builds application scraping (nil when neither the built-in
// jobs, --scrape.config nor monitors ask for any). The built-in and the
// monitors' jobs discover from the shared pod, Service (and Endpoints)
// informers; an invalid --scrape.config stops kmetrics here.
func newAppScraper(o *options, restConfig *rest.Config, factory informers.SharedInformerFactory, st *store, families *storage.Metadata, stop <-chan struct{}) (*appscrape.Scraper, error) {
	if !o.scrapeAnnotated && o.scrapeConfig == "" && !o.operatorObjects {
		return nil, nil
	}
	var inf *appscrape.Informers
	if o.scrapeAnnotated || o.operatorObjects {
		inf = &appscrape.Informers{Pods: factory.Core().V1().Pods().Informer(), Services: factory.Core().V1().Services().Informer(),
			Endpoints: lazyEndpoints(factory, stop)}
	}
	ca, err := clusterCA(restConfig)
	if err != nil {
		return nil, err
	}
	appscrape.RegisterMetrics()
	return appscrape.New(appscrape.Config{
		File: o.scrapeConfig, Builtin: o.scrapeAnnotated,
		Interval: o.metricResolution, Timeout: o.scrapeTimeout, MaxBodyBytes: o.scrapeMaxResponseBytes,
		PodLabels: o.scrapePodLabels, CAPEM: ca, NativeHistograms: o.scrapeNativeHistograms,
	}, appscrape.Deps{
		Informers: inf, Storage: st.guard, Budget: st.budget, Metadata: families,
		Registerer: legacyregistry.Registerer(),
		Logger:     slog.New(logr.ToSlogHandler(klog.Background().WithName("scrape"))),
	})
}

// clusterCA is the cluster's CA (PEM), which verifies the built-in jobs'
// https targets; "" when kmetrics has none (system roots then).
func clusterCA(cfg *rest.Config) (string, error) {
	ca := cfg.TLSClientConfig.CAData
	if len(ca) == 0 && cfg.TLSClientConfig.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(cfg.TLSClientConfig.CAFile); err != nil {
			return "", fmt.Errorf("reading the cluster CA: %w", err)
		}
	}
	return string(ca), nil
}

// podTrimmer drops what no consumer of the full pod cache needs: the
// built-in scrape jobs read the prometheus.io annotations, labels, ports, IP
// and readiness; cluster state reads spec, status (with container statuses)
// and the annotations its allowlist names.
func podTrimmer(clusterState bool, ks kubestate.Config) cache.TransformFunc {
	return func(obj interface{}) (interface{}, error) {
		if p, ok := obj.(*corev1.Pod); ok {
			p.ManagedFields = nil
			kubestate.TrimPodAnnotations(ks, p, func(k string) bool { return strings.HasPrefix(k, "prometheus.io/") })
			if !clusterState {
				p.Status.ContainerStatuses, p.Status.InitContainerStatuses = nil, nil
			}
		}
		return obj, nil
	}
}
