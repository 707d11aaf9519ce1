// Command kmetrics scrapes every kubelet into an embedded TSDB and serves
// metrics.k8s.io from it as an aggregated API server.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/kmetrics/kmetrics/pkg/apiserver"
	"github.com/kmetrics/kmetrics/pkg/promoperator"
	"github.com/kmetrics/kmetrics/pkg/provider"
	"github.com/kmetrics/kmetrics/pkg/rules"
	"github.com/kmetrics/kmetrics/pkg/scraper"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	o := newOptions()
	fs := pflag.NewFlagSet("kmetrics", pflag.ContinueOnError)
	fss := o.flags()
	addAll(fs, fss)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: kmetrics [flags]\n\nScrapes every kubelet into an embedded TSDB and serves metrics.k8s.io.\n")
		cliflag.PrintSections(os.Stderr, fss, 0)
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == pflag.ErrHelp {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if o.showVersion {
		fmt.Println(version)
		return
	}
	setGCPercent()
	if err := logsapi.ValidateAndApply(o.logging, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer logs.FlushLogs()
	if errs := o.validate(); len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(2)
	}
	setMemoryLimit(o.memlimitRatio)
	if err := run(genericapiserver.SetupSignalContext(), o); err != nil {
		klog.ErrorS(err, "kmetrics failed")
		logs.FlushLogs()
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options) error {
	restConfig, err := restConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	o.server.DefaultKubeconfig(o.kubeconfig)

	storage.RegisterMetrics()
	// How far back the index looks after a restart, in the snapshot or the
	// TSDB.
	lookback := max(5*time.Minute, 3*o.metricResolution)
	st, err := openStore(o, lookback)
	if err != nil {
		return err
	}
	defer st.close()
	db, guard, index := st.db, st.guard, st.index

	nodeSelector, err := labels.Parse(o.nodeSelector)
	if err != nil {
		return fmt.Errorf("--node-selector: %w", err)
	}
	requirements, _ := nodeSelector.Requirements()

	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := factory.Core().V1().Nodes()
	nodeInformer := nodes.Informer()
	podFactory, err := runningPodInformerFactory(restConfig)
	if err != nil {
		return err
	}
	pods := podFactory.ForResource(corev1.SchemeGroupVersion.WithResource("pods"))
	podInformer := pods.Informer()

	scraper.RegisterMetrics()
	families := storage.NewMetadata()           // type/help of every scraped family, for /metadata
	kubeletEndpoints, _ := o.kubeletEndpoints() // validated
	mgr, err := scraper.NewManager(scraper.Config{
		Endpoints:     kubeletEndpoints,
		Metadata:      families,
		Kubelet:       o.kubeletConfig(restConfig),
		Resolution:    o.metricResolution,
		NodeSelector:  nodeSelector,
		MaxConcurrent: o.maxConcurrentScrapes,
		MaxClockAhead: o.futureTolerance,
	}, nodes.Lister(), guard, index)
	if err != nil {
		return err
	}

	ruleFiles := o.ruleFiles
	if dir := operatorRuleDir(o); dir != "" {
		ruleFiles = append(ruleFiles[:len(ruleFiles):len(ruleFiles)], promoperator.RuleGlob(dir))
	}
	evaluator, err := rules.New(rules.Config{
		Files: ruleFiles, Interval: o.ruleInterval, Alertmanagers: o.alertmanagerURLs, ExternalURL: o.externalURL,
		QueryTimeout: o.queryTimeout, MaxSamples: o.rulesMaxSamples, Confine: ruleNamespace(o),
	}, guardedStorage{guard, db}, legacyregistry.Registerer(), slog.New(logr.ToSlogHandler(klog.Background().WithName("rules"))))
	if err != nil {
		return err
	}

	synced := func() error {
		if !nodeInformer.HasSynced() || !podInformer.HasSynced() {
			return fmt.Errorf("informers not synced")
		}
		return nil
	}
	hasData := func() error {
		if n, _ := index.Size(); n > 0 {
			return nil
		}
		if selected, err := nodes.Lister().List(nodeSelector); err == nil && len(selected) == 0 {
			return nil // nothing to scrape is not a reason to be unready
		}
		return fmt.Errorf("no node has been scraped yet")
	}
	// Whole pods (trimmed) for cluster-state series and application
	// scraping; metrics.k8s.io needs only the metadata of running pods.
	fullPods := factory.Core().V1().Pods()
	kubeState, _ := o.kubeStateConfig() // validated
	if o.clusterState || o.scrapeAnnotated || o.operatorObjects {
		_ = fullPods.Informer().SetTransform(podTrimmer(o.clusterState, kubeState))
	}
	custom, err := newCustomMetrics(o, client, restConfig, db, pods.Lister(), ctx.Done())
	if err != nil {
		return err
	}
	ready := []apiserver.Check{{Name: "informers-synced", Fn: synced}, {Name: "metrics-indexed", Fn: hasData}}
	var customProvider cmprovider.CustomMetricsProvider
	var externalProvider cmprovider.ExternalMetricsProvider
	if custom != nil {
		ready = append(ready, apiserver.Check{Name: "custom-metrics-discovery", Fn: custom.ready})
		if o.customMetrics {
			customProvider = custom.provider
		}
		if o.externalMetrics {
			externalProvider = custom.provider
		}
	}

	apps, err := newAppScraper(o, restConfig, factory, st, families, ctx.Done())
	if err != nil {
		return err
	}
	monitors, err := newOperatorObjects(o, restConfig, client, apps)
	if err != nil {
		return err
	}
	var targets apiserver.TargetRetriever
	if apps != nil {
		targets = apps
	}
	servingCert, err := newServingCert(ctx, o.servingCert, restConfig, client)
	if err != nil {
		return err
	}
	cfg, err := o.server.Config(servingCert)
	if err != nil {
		return err
	}
	scopes := newQueryScopes(o, cfg, factory)
	srv, err := apiserver.New(cfg, apiserver.Deps{
		Resource:     provider.NewResourceProvider(index, o.metricResolution),
		Pods:         pods.Lister(),
		Nodes:        nodes.Lister(),
		NodeSelector: requirements,
		Query: apiserver.NewQueryAPI(db, apiserver.QueryOptions{
			Timeout: o.queryTimeout, MaxSamples: o.queryMaxSamples, MaxConcurrency: o.queryMaxConcurrency,
			LookbackDelta: o.queryLookbackDelta, Version: version,
			Rules: evaluator, Alertmanagers: evaluator, Metadata: families, Targets: targets,
			Scopes: scopes, RuleNamespace: ruleNamespace(o),
		}, slog.New(logr.ToSlogHandler(klog.Background().WithName("query")))),
		Custom:       customProvider,
		External:     externalProvider,
		Ready:        ready,
		Live:         []apiserver.Check{{Name: "scrape-loop", Fn: mgr.Healthy}},
		QueryTimeout: o.queryTimeout,
		Scopes:       scopes,
	})
	if err != nil {
		return err
	}

	clusterState, err := newClusterState(o, kubeState, client, restConfig, factory, guard, families)
	if err != nil {
		return err
	}
	// Every writer stops before the TSDB closes (deferred above): when the
	// signal comes, and when serving fails (a port that cannot be bound
	// ends the process instead of leaving it scraping with no API).
	ctx, stop := context.WithCancel(ctx)
	var writers sync.WaitGroup
	defer writers.Wait()
	defer stop()
	goWriter := func(f func()) {
		writers.Add(1)
		go func() {
			defer writers.Done()
			f()
		}()
	}
	factory.Start(ctx.Done())
	podFactory.Start(ctx.Done())
	goWriter(func() {
		scraper.NewSelfMetrics(legacyregistry.DefaultGatherer, guard).WithMetadata(families).Run(ctx, o.selfMetricsInterval)
	})
	if apps != nil {
		goWriter(func() {
			factory.WaitForCacheSync(ctx.Done())
			apps.Run(ctx)
		})
	}
	if monitors != nil {
		go monitors.Run(ctx)
	}
	namingReload := make(chan struct{}, 1)
	if custom != nil {
		go custom.run(ctx, namingReload)
	}
	if clusterState != nil {
		clusterState.start(ctx.Done())
		goWriter(func() {
			factory.WaitForCacheSync(ctx.Done())
			if !clusterState.waitForCaches(ctx) {
				return
			}
			clusterState.writer.Run(ctx, o.clusterStateInterval)
		})
	}
	goWriter(func() {
		if err := mgr.Run(ctx, nodeInformer); err != nil {
			klog.ErrorS(err, "Scrape manager stopped")
		}
	})
	// Rules read history (and restore alerts' for state from it): they
	// start once the TSDB is open. A TSDB that cannot open ends kmetrics.
	var openErr error
	goWriter(func() {
		openErr = st.whenOpen(ctx, lookback, func() { goWriter(func() { evaluator.Run(ctx) }) })
		if openErr != nil {
			stop()
		}
	})
	// The snapshot only has to be newer than the lookback (5m): once a
	// minute, and at shutdown, keeps its I/O (the whole index) small.
	goWriter(func() { st.writeSnapshots(ctx, max(o.metricResolution, time.Minute)) })
	remoteReload := make(chan struct{}, 1)
	if st.remote != nil {
		go st.remote.Run(ctx, remoteReload)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				klog.InfoS("SIGHUP: reloading rule files, the scrape, remote write and metrics configs")
				evaluator.Reload()
				if apps != nil {
					if err := apps.Reload(); err != nil {
						klog.ErrorS(err, "Keeping the running scrape config")
					}
				}
				select {
				case remoteReload <- struct{}{}:
				default:
				}
				select {
				case namingReload <- struct{}{}:
				default:
				}
			}
		}
	}()
	klog.InfoS("Starting kmetrics", "version", version, "resolution", o.metricResolution, "tsdb", o.tsdbPath)
	err = srv.PrepareRun().RunWithContext(ctx)
	stop()
	writers.Wait()
	if openErr != nil {
		return openErr
	}
	return err
}

// guardedStorage is what the rules read (the TSDB) and write (through the
// guard).
type guardedStorage struct {
	promstorage.Appendable
	promstorage.Queryable
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("building the Kubernetes client config: %w", err)
	}
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	// No gzip from the API server: each open watch would hold a gzip
	// reader's window and tables (~1 MiB of kmetrics' heap over its
	// watches, make bench-footprint's profile) and cost both sides CPU for
	// protobuf on the cluster's own network.
	cfg.DisableCompression = true
	return cfg, nil
}

// runningPodInformerFactory lists pod metadata only, of running pods, as
// metrics-server does: the API never needs more.
func runningPodInformerFactory(cfg *rest.Config) (metadatainformer.SharedInformerFactory, error) {
	client, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return metadatainformer.NewFilteredSharedInformerFactory(client, 0, corev1.NamespaceAll, func(o *metav1.ListOptions) {
		o.FieldSelector = "status.phase=Running"
	}), nil
}

// kubeletConfig derives the kubelet client from the cluster client: the
// cluster CA and the service-account token, unless flags say otherwise.
func (o *options) kubeletConfig(cluster *rest.Config) scraper.KubeletConfig {
	c := rest.CopyConfig(cluster)
	c.ContentType = ""
	if o.kubeletInsecureTLS {
		c.TLSClientConfig.Insecure = true
		c.TLSClientConfig.CAData, c.TLSClientConfig.CAFile = nil, ""
	}
	if o.kubeletCAFile != "" {
		c.TLSClientConfig.CAFile, c.TLSClientConfig.CAData = o.kubeletCAFile, nil
	}
	if o.kubeletClientCertFile != "" {
		c.TLSClientConfig.CertFile, c.TLSClientConfig.CertData = o.kubeletClientCertFile, nil
		c.TLSClientConfig.KeyFile, c.TLSClientConfig.KeyData = o.kubeletClientKeyFile, nil
	}
	types := make([]corev1.NodeAddressType, len(o.kubeletAddressTypes))
	for i, t := range o.kubeletAddressTypes {
		types[i] = corev1.NodeAddressType(t)
	}
	return scraper.KubeletConfig{
		Rest:              c,
		Scheme:            "https",
		DefaultPort:       o.kubeletPort,
		UseNodeStatusPort: o.kubeletUseNodeStatusPort,
		AddressTypes:      types,
		Timeout:           o.kubeletRequestTimeout,
		MaxBodyBytes:      o.kubeletMaxResponseBytes,
	}
}
