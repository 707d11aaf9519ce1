package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/prometheus/promql"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/kmetrics/kmetrics/pkg/provider"
	"github.com/kmetrics/kmetrics/pkg/rules/naming"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

// customMetrics is the wiring of custom.metrics.k8s.io and
// external.metrics.k8s.io: rules, provider, discovery and reload loops.
type customMetrics struct {
	provider *provider.MetricsProvider
	run      func(ctx context.Context, reload <-chan struct{})
}

func newCustomMetrics(o *options, client kubernetes.Interface, cfg *rest.Config, db *storage.DB, runningPods cache.GenericLister, stop <-chan struct{}) (*customMetrics, error) {
	if !o.customMetrics && !o.externalMetrics {
		return nil, nil
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))
	rules, loaded, err := naming.Load(o.customMetricsConfig, mapper)
	if err != nil {
		return nil, err
	}
	naming.RegisterMetrics(legacyregistry.Registerer())
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	objects := provider.NewInformerObjects(runningPods, metadatainformer.NewSharedInformerFactory(mc, 0), mapper, stop)
	engine := promql.NewEngine(promql.EngineOpts{
		Logger:        slog.New(logr.ToSlogHandler(klog.Background().WithName("custom-metrics"))),
		MaxSamples:    o.customMaxSamples,
		Timeout:       o.queryTimeout,
		LookbackDelta: o.queryLookbackDelta,
	})
	// Discovery lists what had a sample in the last 10 minutes: a metric
	// does not vanish between scrapes or during a short outage.
	p := provider.NewMetricsProvider(db, engine, mapper, objects, rules, 10*time.Minute).WithMaxConcurrency(o.customMaxConcurrent)
	// Until the TSDB is open, discovery lists what the last run served.
	snapshot := filepath.Join(o.tsdbPath, discoverySnapshotFile)
	if n, err := p.LoadDiscovery(snapshot); err != nil {
		klog.ErrorS(err, "Ignoring the custom metrics discovery snapshot")
	} else if n > 0 {
		klog.InfoS("Listing the custom metrics discovery snapshot until the TSDB is open", "metrics", n)
	}
	return &customMetrics{provider: p, run: func(ctx context.Context, reload <-chan struct{}) {
		go p.RunDiscovery(ctx, o.customMetricsDiscovery)
		go saveDiscovery(ctx, p, snapshot, o.customMetricsDiscovery)
		naming.Watch(ctx, o.customMetricsConfig, mapper, loaded, 5*time.Second, reload, func(r *naming.Rules) error {
			return p.SetRules(ctx, r)
		})
	}}, nil
}

// discoverySnapshotFile is the discovery snapshot's name in the TSDB
// directory.
const discoverySnapshotFile = "kmetrics-discovery.snapshot"

func saveDiscovery(ctx context.Context, p *provider.MetricsProvider, path string, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := p.SaveDiscovery(path); err != nil {
				klog.ErrorS(err, "Writing the custom metrics discovery snapshot", "path", path)
			}
		}
	}
}

// ready is the readiness condition: discovery has been built (client-go's
// discovery breaks on an empty group), refreshed on demand until then.
func (c *customMetrics) ready() error {
	if c.provider.Discovered() {
		return nil
	}
	return c.provider.Refresh(context.Background())
}
