package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/alecthomas/units"
	"github.com/prometheus/common/model"
	"github.com/spf13/pflag"
	"k8s.io/component-base/cli/flag"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"

	"github.com/kmetrics/kmetrics/pkg/apiserver"
	"github.com/kmetrics/kmetrics/pkg/kubestate"
	"github.com/kmetrics/kmetrics/pkg/scraper"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

// options are every flag of kmetrics. Flags metrics-server users know keep
// its names and meaning.
type options struct {
	kubeconfig       string
	metricResolution time.Duration
	// selfMetricsInterval: how often kmetrics stores its own metrics.
	selfMetricsInterval time.Duration
	showVersion         bool

	kubeletInsecureTLS       bool
	kubeletUseNodeStatusPort bool
	kubeletPort              int
	kubeletAddressTypes      []string
	kubeletCAFile            string
	kubeletClientCertFile    string
	kubeletClientKeyFile     string
	kubeletRequestTimeout    time.Duration
	kubeletMaxResponseBytes  int64
	maxConcurrentScrapes     int
	nodeSelector             string
	clusterState             bool
	clusterStateResources    []string
	clusterStateDenylist     string
	clusterStateAllowlist    string
	clusterStateInterval     time.Duration
	clusterStateLabels       string
	clusterStateAnnotations  string
	cadvisor                 bool
	cadvisorPath             string
	cadvisorAllow            string
	cadvisorDeny             string
	kubeletMetrics           bool
	kubeletMetricsAllow      string
	kubeletMetricsDeny       string

	tsdbPath               string
	tsdbMaxExemplars       int64
	tsdbRetentionTime      model.Duration
	tsdbRetentionSize      string
	futureTolerance        time.Duration
	namespaceSeriesLimit   int
	applicationSeriesLimit int
	memlimitRatio          float64

	queryTimeout         time.Duration
	queryMaxSamples      int
	queryMaxConcurrency  int
	queryLookbackDelta   time.Duration
	queryScoped          bool
	queryScopeTTL        time.Duration
	queryScopeCacheSize  int
	queryScopeNamespaces string
	rulesMaxSamples      int
	customMaxSamples     int
	customMaxConcurrent  int

	ruleFiles        []string
	ruleInterval     time.Duration
	alertmanagerURLs []string
	externalURL      string

	scrapeAnnotated        bool
	scrapeTimeout          time.Duration
	scrapeMaxResponseBytes int64
	scrapePodLabels        []string
	scrapeConfig           string
	scrapeNativeHistograms bool
	remoteWriteConfig      string

	operatorObjects         bool
	operatorMonitorSelector string
	operatorRuleSelector    string
	operatorNamespaces      []string
	operatorTokenNamespaces []string
	operatorPlatformRuleNS  []string
	operatorIgnoredMonitors []string
	operatorReadSecrets     bool

	customMetrics          bool
	externalMetrics        bool
	customMetricsConfig    string
	customMetricsDiscovery time.Duration

	servingCert servingCertOptions

	server  *apiserver.Options
	logging *logs.Options
}

func newOptions() *options {
	return &options{
		metricResolution: 15 * time.Second,
		// kube-prometheus scrapes its Prometheus every 30s: the shipped
		// alerts' windows are minutes. Gathering, encoding and storing
		// every own series each 15s was a fifth of kmetrics' CPU on a
		// small cluster (make bench-footprint's CPU profile).
		selfMetricsInterval:     30 * time.Second,
		kubeletPort:             10250,
		kubeletAddressTypes:     []string{"InternalIP", "ExternalIP", "Hostname"},
		kubeletRequestTimeout:   10 * time.Second,
		kubeletMaxResponseBytes: 10 << 20,
		maxConcurrentScrapes:    50,
		clusterState:            true,
		// kube-prometheus scrapes kube-state-metrics every 30s.
		clusterStateInterval: 30 * time.Second,
		cadvisorPath:         "/metrics/cadvisor",
		// What the kubernetes-mixin's kubelet alerts and dashboard and the
		// community dashboards read of the kubelet's own metrics; the rest
		// (client and runtime histograms) is most of its series.
		kubeletMetricsAllow: "kubelet_.*|process_.*|go_goroutines|rest_client_requests_total|storage_operation_.*",
		// What kube-prometheus drops from cAdvisor: series no dashboard or
		// alert of the kubernetes-mixin reads, and the most numerous.
		cadvisorDeny: "container_cpu_(cfs_throttled_seconds_total|load_average_10s|system_seconds_total|user_seconds_total)|" +
			"container_fs_(io_current|io_time_seconds_total|io_time_weighted_seconds_total|reads_merged_total|sector_reads_total|sector_writes_total|writes_merged_total)|" +
			"container_memory_(mapped_file|swap)|container_(file_descriptors|tasks_state|threads_max)|container_spec_.*",
		tsdbPath:               "/var/lib/kmetrics",
		tsdbMaxExemplars:       100000,
		tsdbRetentionTime:      model.Duration(15 * 24 * time.Hour),
		queryTimeout:           2 * time.Minute,
		queryMaxSamples:        10000000,
		queryMaxConcurrency:    4,
		rulesMaxSamples:        5000000,
		customMaxSamples:       1000000,
		customMaxConcurrent:    10,
		futureTolerance:        storage.DefaultFutureTolerance,
		namespaceSeriesLimit:   storage.DefaultNamespaceSeriesLimit,
		applicationSeriesLimit: storage.DefaultApplicationSeriesLimit,
		memlimitRatio:          0.9,
		queryLookbackDelta:     5 * time.Minute,
		queryScoped:            true,
		queryScopeTTL:          30 * time.Second,
		queryScopeCacheSize:    4096,
		queryScopeNamespaces:   "rolebindings",
		ruleInterval:           30 * time.Second,
		scrapeAnnotated:        true,
		scrapeNativeHistograms: true,
		operatorObjects:        true,
		operatorReadSecrets:    true,
		scrapeTimeout:          10 * time.Second,
		scrapeMaxResponseBytes: 10 << 20,
		scrapePodLabels:        []string{"app", "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"},
		customMetrics:          true,
		externalMetrics:        true,
		customMetricsDiscovery: 30 * time.Second,
		servingCert:            newServingCertOptions(),
		server:                 apiserver.NewOptions(),
		logging:                logs.NewOptions(),
	}
}

func (o *options) flags() flag.NamedFlagSets {
	var fss flag.NamedFlagSets
	fs := fss.FlagSet("kmetrics")
	fs.StringVar(&o.kubeconfig, "kubeconfig", o.kubeconfig, "Path to a kubeconfig for the Kubernetes API and the kubelets' credentials (default: in-cluster config). Also used for delegated authentication/authorization unless those flags are set.")
	fs.DurationVar(&o.metricResolution, "metric-resolution", o.metricResolution, "How often every kubelet is scraped; at least 10s.")
	fs.DurationVar(&o.selfMetricsInterval, "self-metrics-interval", o.selfMetricsInterval, "How often kmetrics stores its own metrics (job kmetrics, for its shipped alerts); at least 10s.")
	fs.BoolVar(&o.showVersion, "version", false, "Print the version and exit.")

	ks := fss.FlagSet("kubelet client")
	ks.BoolVar(&o.kubeletInsecureTLS, "kubelet-insecure-tls", false, "Do not verify the kubelets' serving certificates. For testing only.")
	ks.BoolVar(&o.kubeletUseNodeStatusPort, "kubelet-use-node-status-port", false, "Use the port in the node status (daemonEndpoints.kubeletEndpoint). Takes precedence over --kubelet-port.")
	ks.IntVar(&o.kubeletPort, "kubelet-port", o.kubeletPort, "The port to connect to kubelets on.")
	ks.StringSliceVar(&o.kubeletAddressTypes, "kubelet-preferred-address-types", o.kubeletAddressTypes, "The priority of node address types used to reach a kubelet.")
	ks.StringVar(&o.kubeletCAFile, "kubelet-certificate-authority", "", "CA that signs the kubelets' serving certificates (default: the cluster CA).")
	ks.StringVar(&o.kubeletClientCertFile, "kubelet-client-certificate", "", "Client certificate for the kubelets (default: the service account token).")
	ks.StringVar(&o.kubeletClientKeyFile, "kubelet-client-key", "", "Key of --kubelet-client-certificate.")
	ks.DurationVar(&o.kubeletRequestTimeout, "kubelet-request-timeout", o.kubeletRequestTimeout, "Timeout of one kubelet request, connection to last byte.")
	ks.Int64Var(&o.kubeletMaxResponseBytes, "kubelet-max-response-bytes", o.kubeletMaxResponseBytes, "Largest kubelet response accepted; a larger one fails that node's scrape only.")
	ks.IntVar(&o.maxConcurrentScrapes, "max-concurrent-scrapes", o.maxConcurrentScrapes, "Kubelet scrapes in flight at once.")
	ks.StringVarP(&o.nodeSelector, "node-selector", "l", "", "Label selector of the nodes to scrape (e.g. -l key1=value1,key2=value2).")
	ks.BoolVar(&o.cadvisor, "kubelet-cadvisor", false, "Also scrape every kubelet's cAdvisor metrics (job=\"kubelet\", metrics_path=\"/metrics/cadvisor\", what the kubernetes-mixin dashboards read). Many series per container: see the allow/deny lists.")
	ks.StringVar(&o.cadvisorPath, "kubelet-cadvisor-path", o.cadvisorPath, "Path of the cAdvisor metrics on the kubelet; {node} stands for the node name.")
	ks.StringVar(&o.cadvisorAllow, "kubelet-cadvisor-metrics-allow", "", "Regular expression (anchored) of the cAdvisor metric names to store; empty keeps all not denied.")
	ks.StringVar(&o.cadvisorDeny, "kubelet-cadvisor-metrics-deny", o.cadvisorDeny, "Regular expression (anchored) of the cAdvisor metric names to drop.")
	ks.BoolVar(&o.kubeletMetrics, "kubelet-metrics", false, "Also scrape every kubelet's own /metrics (job=\"kubelet\", metrics_path=\"/metrics\", as kube-prometheus' kubelet job): kubelet_volume_stats_* for PVC usage, kubelet_running_pods, PLEG and certificate metrics the kubernetes-mixin alerts read.")
	ks.StringVar(&o.kubeletMetricsAllow, "kubelet-metrics-allow", o.kubeletMetricsAllow, "Regular expression (anchored) of the kubelet's metric names to store; empty keeps all not denied.")
	ks.StringVar(&o.kubeletMetricsDeny, "kubelet-metrics-deny", "", "Regular expression (anchored) of the kubelet's metric names to drop.")
	ks.BoolVar(&o.clusterState, "cluster-state", o.clusterState, "Write kube-state-metrics' series (job=\"kube-state-metrics\", its names, labels and units) every resolution, for the dashboards and alerts written for it. Watches the resources of --cluster-state.resources.")
	ks.StringSliceVar(&o.clusterStateResources, "cluster-state.resources", nil, "Resources whose kube-state-metrics families are written (kube-state-metrics' --resources; default all: "+strings.Join(kubestate.Resources(), ",")+"). A resource left out is not watched.")
	ks.DurationVar(&o.clusterStateInterval, "cluster-state.interval", o.clusterStateInterval, "How often the cluster-state series are written (kube-prometheus scrapes kube-state-metrics every 30s).")
	ks.StringVar(&o.clusterStateAllowlist, "cluster-state.metric-allowlist", "", "Comma-separated regular expressions of the cluster-state families written (kube-state-metrics' --metric-allowlist). Default: the families the kubernetes-mixin, the community's k8s-views dashboards and the VPA read (about 40 series per pod); .* writes all of kube-state-metrics' families kmetrics knows (about 55 per pod).")
	ks.StringVar(&o.clusterStateDenylist, "cluster-state.metric-denylist", "", "Comma-separated regular expressions of cluster-state families not written (kube-state-metrics' --metric-denylist), e.g. kube_secret_.*,kube_replicaset_.*.")
	ks.StringVar(&o.clusterStateLabels, "cluster-state.metric-labels-allowlist", "", "Kubernetes labels written as label_<key> in kube_<resource>_labels (kube-state-metrics' --metric-labels-allowlist), e.g. pods=[app,team],namespaces=[*]. The VPA's --metric-for-pod-labels needs pods=[*] or the labels its selectors use.")
	ks.StringVar(&o.clusterStateAnnotations, "cluster-state.metric-annotations-allowlist", "", "Kubernetes annotations written as annotation_<key> in kube_<resource>_annotations (kube-state-metrics' --metric-annotations-allowlist).")

	ss := fss.FlagSet("storage")
	ss.StringVar(&o.tsdbPath, "storage.tsdb.path", o.tsdbPath, "Directory of the embedded TSDB (a persistent volume in a cluster).")
	ss.Int64Var(&o.tsdbMaxExemplars, "storage.exemplars.exemplars-limit", o.tsdbMaxExemplars, "Most exemplars kept in memory (a ring shared by all series, about 64 bytes each, served by query_exemplars: it starts at 1,024 and doubles as exemplars arrive, up to this); 0 stores none.")
	ss.Var(&o.tsdbRetentionTime, "storage.tsdb.retention.time", "How long samples are kept (Prometheus duration, e.g. 15d).")
	ss.StringVar(&o.tsdbRetentionSize, "storage.tsdb.retention.size", "", "Largest size of persisted blocks before the oldest are deleted (e.g. 512MB); empty means no limit.")
	ss.DurationVar(&o.futureTolerance, "storage.future-tolerance", o.futureTolerance, "How far ahead of kmetrics' clock a sample may be; later ones are refused (a kubelet whose clock runs further ahead is refused whole). At most 30m.")
	ss.StringVar(&o.remoteWriteConfig, "remote-write.config", "", "A Prometheus configuration file whose remote_write section (and global.external_labels) kmetrics sends everything it stores to, with Prometheus' own remote write (queues fed from the TSDB's WAL); may be the same file as --scrape.config. Reloaded when it changes and on SIGHUP; an invalid file stops kmetrics at start and is refused (the queues in force kept) later.")
	ss.IntVar(&o.namespaceSeriesLimit, "storage.namespace-series-limit", o.namespaceSeriesLimit, "Head series the application targets of one namespace may hold; a scrape whose new series would exceed it is refused whole. 0: no limit.")
	ss.IntVar(&o.applicationSeriesLimit, "storage.application-series-limit", o.applicationSeriesLimit, "Head series all application targets together may hold. 0: no limit.")
	ss.Float64Var(&o.memlimitRatio, "auto-gomemlimit.ratio", o.memlimitRatio, "GOMEMLIMIT as this share of the container's memory limit (unless GOMEMLIMIT is set); 0 turns it off.")

	qs := fss.FlagSet("query")
	qs.DurationVar(&o.queryTimeout, "query.timeout", o.queryTimeout, "Longest a PromQL query may run.")
	qs.IntVar(&o.queryMaxSamples, "query.max-samples", o.queryMaxSamples, "Most samples one query of the query API may load into memory; more is a 422 error, not an OOM.")
	qs.IntVar(&o.queryMaxConcurrency, "query.max-concurrency", o.queryMaxConcurrency, "Query API requests run at once; more wait for a slot until their request times out.")
	qs.DurationVar(&o.queryLookbackDelta, "query.lookback-delta", o.queryLookbackDelta, "How far back an instant selector looks for a sample.")
	qs.BoolVar(&o.queryScoped, "query.namespace-scopes", o.queryScoped, "Answer an authenticated caller who is not a cluster-wide reader (kmetrics:query-reader) from the namespaces where RBAC lets it get pods.metrics.k8s.io (what view grants), plus the series without a namespace if it may get nodes.metrics.k8s.io; false: such callers get 403.")
	qs.DurationVar(&o.queryScopeTTL, "query.scope-cache-ttl", o.queryScopeTTL, "How long a caller's namespaces are kept before RBAC is asked again: a revoked RoleBinding takes effect within it (plus the authorization webhook cache's TTL).")
	qs.StringVar(&o.queryScopeNamespaces, "query.scope-namespaces", o.queryScopeNamespaces, "Which namespaces a caller's scope is reviewed in: rolebindings (those with a RoleBinding naming the caller, its service account or a group of its, plus every namespace at once for a ClusterRoleBinding: a few SubjectAccessReviews per caller) or all (one review per namespace of the cluster: for grants made by an authorization webhook).")
	qs.IntVar(&o.queryScopeCacheSize, "query.scope-cache-size", o.queryScopeCacheSize, "Most callers whose namespaces are kept at once (least recently used go first).")

	rs := fss.FlagSet("rules and alerts")
	rs.StringSliceVar(&o.ruleFiles, "rules.file", nil, "Prometheus rule files or globs to evaluate (repeatable). Reloaded when they change and on SIGHUP; an invalid file is refused and the rules in force stay.")
	rs.DurationVar(&o.ruleInterval, "rules.evaluation-interval", o.ruleInterval, "Evaluation interval of rule groups that set none.")
	rs.IntVar(&o.rulesMaxSamples, "rules.max-samples", o.rulesMaxSamples, "Most samples one rule evaluation may load into memory.")
	rs.StringSliceVar(&o.alertmanagerURLs, "alertmanager.url", nil, "Alertmanager base URL alerts are sent to, e.g. http://alertmanager:9093 (repeatable).")
	rs.StringVar(&o.externalURL, "web.external-url", "", "URL alerts link back to (the query API as users reach it).")

	as := fss.FlagSet("application scraping")
	as.BoolVar(&o.scrapeAnnotated, "scrape.annotated", o.scrapeAnnotated, "Run the built-in kubernetes-pods and kubernetes-service-endpoints jobs: pods annotated prometheus.io/scrape=\"true\", and the pods of Services so annotated (prometheus.io/port, /path, /scheme, /param_*, as Prometheus' classic relabeling reads them), every --metric-resolution. Watches all pods and services.")
	as.StringVar(&o.scrapeConfig, "scrape.config", "", "A Prometheus configuration file whose scrape_configs (and scrape_config_files) kmetrics scrapes with Prometheus' own scrape manager and service discovery (kubernetes, file, http, dns); a job named like a built-in one replaces it. Reloaded on SIGHUP; an invalid file stops kmetrics at start and is refused (the running jobs kept) on reload.")
	as.DurationVar(&o.scrapeTimeout, "scrape.timeout", o.scrapeTimeout, "Timeout of one scrape of the built-in jobs; at most --metric-resolution.")
	as.Int64Var(&o.scrapeMaxResponseBytes, "scrape.max-response-bytes", o.scrapeMaxResponseBytes, "Largest application response accepted (body_size_limit of the built-in jobs and of every --scrape.config job that sets none); a larger one fails that target only.")
	as.StringSliceVar(&o.scrapePodLabels, "scrape.pod-labels", o.scrapePodLabels, "Pod labels copied onto application series (names sanitized: app.kubernetes.io/name becomes app_kubernetes_io_name); \"*\" copies all, \"\" none.")

	as.BoolVar(&o.scrapeNativeHistograms, "scrape.native-histograms", o.scrapeNativeHistograms, "Scrape native histograms (Prometheus' protobuf format negotiated first) in the built-in jobs and the monitors' jobs that do not say otherwise; --scrape.config jobs follow their own file.")

	ps := fss.FlagSet("prometheus-operator objects")
	ps.BoolVar(&o.operatorObjects, "operator.objects", o.operatorObjects, "Scrape what ServiceMonitors and PodMonitors select and evaluate PrometheusRules (monitoring.coreos.com/v1), as the prometheus-operator configures Prometheus. The CRDs are optional: kmetrics starts watching when they are installed.")
	ps.StringVar(&o.operatorMonitorSelector, "operator.monitor-selector", "", "Label selector of the ServiceMonitors and PodMonitors taken (a Prometheus object's serviceMonitorSelector); empty: all.")
	ps.StringVar(&o.operatorRuleSelector, "operator.rule-selector", "", "Label selector of the PrometheusRules taken (ruleSelector); empty: all.")
	ps.StringSliceVar(&o.operatorNamespaces, "operator.namespaces", nil, "Namespaces whose monitors and rules are taken; empty: all.")
	ps.StringSliceVar(&o.operatorPlatformRuleNS, "operator.platform-rule-namespaces", nil, "Namespaces whose PrometheusRules read and write every namespace (the platform's, e.g. kube-prometheus' monitoring with the kubernetes-mixin rules; the operator's excludedFromEnforcement). Any other namespace's PrometheusRules read only its series and write into it.")
	ps.StringSliceVar(&o.operatorTokenNamespaces, "operator.token-namespaces", nil, "Namespaces whose monitors may send kmetrics' own service-account token (bearerTokenFile, as kube-prometheus' monitors of kube-rbac-proxy ask). Empty: none — the token never goes to a pod because a tenant's monitor asked.")
	ps.StringSliceVar(&o.operatorIgnoredMonitors, "operator.ignore-monitors", nil, "ServiceMonitors and PodMonitors (namespace/name) left out: the chart's monitor of kmetrics for another Prometheus (kmetrics scrapes itself without it).")
	ps.BoolVar(&o.operatorReadSecrets, "operator.read-secrets", o.operatorReadSecrets, "Read the Secrets and ConfigMaps monitors name (TLS, bearer token, basic auth) in the monitor's namespace; needs get on secrets and configmaps.")

	cs := fss.FlagSet("custom and external metrics")
	cs.BoolVar(&o.customMetrics, "custom-metrics", o.customMetrics, "Serve custom.metrics.k8s.io (v1beta2, v1beta1).")
	cs.BoolVar(&o.externalMetrics, "external-metrics", o.externalMetrics, "Serve external.metrics.k8s.io (turn off where KEDA serves it).")
	cs.StringVar(&o.customMetricsConfig, "custom-metrics.config", "", "prometheus-adapter style rules (rules, externalRules) naming custom and external metrics; reloaded when it changes and on SIGHUP, an invalid file is refused and the config in force stays. Default: built-in rules for annotated applications and node usage.")
	cs.IntVar(&o.customMaxSamples, "custom-metrics.max-samples", o.customMaxSamples, "Most samples one custom or external metrics query may load; more is a 422 error.")
	cs.IntVar(&o.customMaxConcurrent, "custom-metrics.max-concurrency", o.customMaxConcurrent, "Custom and external metrics queries run at once, in slots of their own that the query API and rules cannot take; more wait.")
	cs.DurationVar(&o.customMetricsDiscovery, "custom-metrics.discovery-interval", o.customMetricsDiscovery, "How often the list of served metrics is rebuilt from the TSDB's series.")

	o.server.AddFlags(&fss)
	o.servingCert.addFlags(fss.FlagSet("secure serving"))
	logsapi.AddFlags(o.logging, fss.FlagSet("logging"))
	return fss
}

// retentionBytes parses --storage.tsdb.retention.size.
func (o *options) retentionBytes() (int64, error) {
	if strings.TrimSpace(o.tsdbRetentionSize) == "" {
		return 0, nil
	}
	b, err := units.ParseBase2Bytes(o.tsdbRetentionSize)
	if err != nil {
		return 0, fmt.Errorf("--storage.tsdb.retention.size: %w", err)
	}
	return int64(b), nil
}

func (o *options) validate() []error {
	var errs []error
	if o.metricResolution < 10*time.Second {
		errs = append(errs, fmt.Errorf("--metric-resolution must be at least 10s, got %v", o.metricResolution))
	}
	if o.selfMetricsInterval < 10*time.Second {
		errs = append(errs, fmt.Errorf("--self-metrics-interval must be at least 10s, got %v", o.selfMetricsInterval))
	}
	if o.kubeletRequestTimeout <= 0 || o.kubeletRequestTimeout > o.metricResolution*9/10 {
		errs = append(errs, fmt.Errorf("--kubelet-request-timeout must be positive and below 90%% of --metric-resolution, got %v", o.kubeletRequestTimeout))
	}
	if o.kubeletCAFile != "" && o.kubeletInsecureTLS {
		errs = append(errs, fmt.Errorf("cannot use both --kubelet-certificate-authority and --kubelet-insecure-tls"))
	}
	if (o.kubeletClientCertFile != "") != (o.kubeletClientKeyFile != "") {
		errs = append(errs, fmt.Errorf("need both --kubelet-client-certificate and --kubelet-client-key"))
	}
	if o.kubeletMaxResponseBytes <= 0 {
		errs = append(errs, fmt.Errorf("--kubelet-max-response-bytes must be positive"))
	}
	if o.maxConcurrentScrapes <= 0 {
		errs = append(errs, fmt.Errorf("--max-concurrent-scrapes must be positive"))
	}
	if o.queryScopeNamespaces != "rolebindings" && o.queryScopeNamespaces != "all" {
		errs = append(errs, fmt.Errorf("--query.scope-namespaces: %q, want rolebindings or all", o.queryScopeNamespaces))
	}
	if o.queryScopeTTL <= 0 || o.queryScopeCacheSize <= 0 {
		errs = append(errs, fmt.Errorf("--query.scope-cache-ttl and --query.scope-cache-size must be positive"))
	}
	if o.queryTimeout <= 0 || o.queryMaxSamples <= 0 || o.queryLookbackDelta <= 0 || o.queryMaxConcurrency <= 0 {
		errs = append(errs, fmt.Errorf("--query.timeout, --query.max-samples, --query.max-concurrency and --query.lookback-delta must be positive"))
	}
	if o.rulesMaxSamples <= 0 || o.customMaxSamples <= 0 || o.customMaxConcurrent <= 0 {
		errs = append(errs, fmt.Errorf("--rules.max-samples, --custom-metrics.max-samples and --custom-metrics.max-concurrency must be positive"))
	}
	if o.futureTolerance <= 0 || o.futureTolerance > storage.MaxFutureTolerance {
		errs = append(errs, fmt.Errorf("--storage.future-tolerance must be positive and at most %v, got %v", storage.MaxFutureTolerance, o.futureTolerance))
	}
	if o.namespaceSeriesLimit < 0 || o.applicationSeriesLimit < 0 {
		errs = append(errs, fmt.Errorf("--storage.namespace-series-limit and --storage.application-series-limit must not be negative"))
	}
	if o.memlimitRatio < 0 || o.memlimitRatio > 1 {
		errs = append(errs, fmt.Errorf("--auto-gomemlimit.ratio must be between 0 and 1, got %v", o.memlimitRatio))
	}
	if o.ruleInterval <= 0 {
		errs = append(errs, fmt.Errorf("--rules.evaluation-interval must be positive"))
	}
	if o.scrapeTimeout <= 0 || o.scrapeTimeout > o.metricResolution || o.scrapeMaxResponseBytes <= 0 {
		errs = append(errs, fmt.Errorf("--scrape.timeout must be positive and at most --metric-resolution, --scrape.max-response-bytes positive"))
	}
	if _, err := o.kubeStateConfig(); err != nil {
		errs = append(errs, err)
	}
	if _, err := o.kubeletEndpoints(); err != nil {
		errs = append(errs, err)
	}
	if o.customMetricsDiscovery <= 0 {
		errs = append(errs, fmt.Errorf("--custom-metrics.discovery-interval must be positive"))
	}
	if _, err := o.retentionBytes(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, o.server.Validate()...)
	errs = append(errs, o.servingCert.validate(o.server.SecureServing.ServerCert.CertKey.CertFile)...)
	return errs
}

// addAll registers every named flag set on fs, in order.
func addAll(fs *pflag.FlagSet, fss flag.NamedFlagSets) {
	for _, name := range fss.Order {
		fs.AddFlagSet(fss.FlagSets[name])
	}
}

// kubeletEndpoints are the further kubelet paths scraped (none by default).
func (o *options) kubeletEndpoints() ([]*scraper.KubeletEndpoint, error) {
	var eps []*scraper.KubeletEndpoint
	for _, e := range []struct {
		on                 bool
		name, prefix, path string
		allow, deny        string
		replaces           []string
	}{
		// cAdvisor's copies carry image, id and name, which the mixin's and
		// the community's queries select on: they are the ones stored.
		{o.cadvisor, "cAdvisor", "--kubelet-cadvisor", o.cadvisorPath, o.cadvisorAllow, o.cadvisorDeny,
			[]string{storage.MetricContainerCPU, storage.MetricContainerMem, storage.MetricContainerStart}},
		{o.kubeletMetrics, "kubelet", "--kubelet", "/metrics", o.kubeletMetricsAllow, o.kubeletMetricsDeny, nil},
	} {
		if !e.on {
			continue
		}
		ep := &scraper.KubeletEndpoint{Name: e.name, Path: e.path, Replaces: e.replaces}
		for _, f := range []struct {
			flag, expr string
			re         **regexp.Regexp
		}{{e.prefix + "-metrics-allow", e.allow, &ep.Allow}, {e.prefix + "-metrics-deny", e.deny, &ep.Deny}} {
			if f.expr == "" {
				continue
			}
			re, err := regexp.Compile("^(?:" + f.expr + ")$")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.flag, err)
			}
			*f.re = re
		}
		if !strings.HasPrefix(ep.Path, "/") {
			return nil, fmt.Errorf("%s-path must start with /", e.prefix)
		}
		eps = append(eps, ep)
	}
	return eps, nil
}

// kubeStateConfig reads the cluster-state flags.
func (o *options) kubeStateConfig() (kubestate.Config, error) {
	c := kubestate.Config{Resources: o.clusterStateResources}
	if o.clusterStateInterval < 10*time.Second {
		return c, fmt.Errorf("--cluster-state.interval must be at least 10s, got %v", o.clusterStateInterval)
	}
	if _, err := c.Enabled(); err != nil {
		return c, fmt.Errorf("--cluster-state.resources: %w", err)
	}
	var err error
	if c.Allowlist, err = kubestate.ParseFamilyList(o.clusterStateAllowlist); err != nil {
		return c, fmt.Errorf("--cluster-state.metric-allowlist: %w", err)
	}
	if c.Denylist, err = kubestate.ParseFamilyList(o.clusterStateDenylist); err != nil {
		return c, fmt.Errorf("--cluster-state.metric-denylist: %w", err)
	}
	if c.LabelsAllowlist, err = kubestate.ParseAllowlist(o.clusterStateLabels); err != nil {
		return c, fmt.Errorf("--cluster-state.metric-labels-allowlist: %w", err)
	}
	if c.AnnotationsAllowlist, err = kubestate.ParseAllowlist(o.clusterStateAnnotations); err != nil {
		return c, fmt.Errorf("--cluster-state.metric-annotations-allowlist: %w", err)
	}
	return c, nil
}
