package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/kmetrics/kmetrics/pkg/appscrape"
	"github.com/kmetrics/kmetrics/pkg/promoperator"
)

// newOperatorObjects builds the controller of ServiceMonitors, PodMonitors
// and PrometheusRules (nil when --operator.objects is off). Monitors'
// jobs go to the application scraper.
func newOperatorObjects(o *options, restConfig *rest.Config, client kubernetes.Interface, apps *appscrape.Scraper) (*promoperator.Controller, error) {
	if !o.operatorObjects || apps == nil {
		return nil, nil
	}
	parse := func(flag, s string) (labels.Selector, error) {
		sel, err := labels.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
		return sel, nil
	}
	monitors, err := parse("operator.monitor-selector", o.operatorMonitorSelector)
	if err != nil {
		return nil, err
	}
	rules, err := parse("operator.rule-selector", o.operatorRuleSelector)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(jsonConfig(restConfig))
	if err != nil {
		return nil, err
	}
	var objects promoperator.Objects
	if o.operatorReadSecrets {
		objects = promoperator.NewObjects(client)
	}
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(runtime.NewScheme(), corev1.EventSource{Component: "kmetrics"})
	promoperator.RegisterMetrics(legacyregistry.Registerer())
	return promoperator.New(promoperator.Config{
		MonitorSelector: monitors, RuleSelector: rules,
		Namespaces: o.operatorNamespaces, TokenNamespaces: o.operatorTokenNamespaces,
		IgnoredMonitors:        o.operatorIgnoredMonitors,
		Defaults:               promoperator.Defaults{Interval: o.metricResolution, Timeout: o.scrapeTimeout, NativeHistograms: o.scrapeNativeHistograms},
		RuleDir:                operatorRuleDir(o),
		PlatformRuleNamespaces: o.operatorPlatformRuleNS,
	}, dyn, client.Discovery(), objects, apps, recorder, slog.New(logr.ToSlogHandler(klog.Background().WithName("operator"))))
}

// operatorRuleDir holds the PrometheusRules as rule files ("" when they
// are not read): in the TSDB's directory, which ignores what is not a
// block.
func operatorRuleDir(o *options) string {
	if !o.operatorObjects {
		return ""
	}
	return filepath.Join(o.tsdbPath, "kmetrics-prometheusrules")
}

// jsonConfig is a copy of the client config for CRDs (no protobuf).
func jsonConfig(c *rest.Config) *rest.Config {
	c = rest.CopyConfig(c)
	c.ContentType = ""
	return c
}

// lazyEndpoints starts the shared Endpoints informer on first use: only
// ServiceMonitors need it, and a cluster-wide Endpoints watch is not free.
func lazyEndpoints(factory informers.SharedInformerFactory, stop <-chan struct{}) func() cache.SharedIndexInformer {
	var once sync.Once
	var inf cache.SharedIndexInformer
	return func() cache.SharedIndexInformer {
		once.Do(func() {
			inf = factory.Core().V1().Endpoints().Informer()
			factory.Start(stop)
		})
		return inf
	}
}
