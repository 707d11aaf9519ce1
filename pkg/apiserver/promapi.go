package apiserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	grafanaregexp "github.com/grafana/regexp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/route"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/notifications"
	v1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/kmetrics/kmetrics/pkg/storage"
	"github.com/kmetrics/kmetrics/pkg/tenancy"
)

// QueryPrefix is where the Prometheus HTTP API is served (Grafana's data
// source URL is https://<kmetrics>/prometheus). Not /api/v1: Kubernetes'
// default system:discovery role lets every authenticated user GET /api/*,
// which would open every query to every service account.
const QueryPrefix = "/prometheus/api/v1"

// QueryOptions bound what one query may cost.
type QueryOptions struct {
	Timeout        time.Duration
	MaxSamples     int
	MaxConcurrency int
	LookbackDelta  time.Duration
	Version        string
	// Rules and Alertmanagers back /rules and /alerts; nil serves none.
	Rules         v1.RulesRetriever
	Alertmanagers v1.AlertmanagerRetriever
	// Metadata backs /metadata; nil serves none.
	Metadata MetadataLister
	// Targets backs /targets and /targets/metadata (the application scrape
	// manager); nil serves none.
	Targets TargetRetriever
	// Scopes, when set, answers each caller from the namespaces RBAC lets
	// it read (pkg/tenancy); nil: every authorized caller reads everything.
	Scopes Scopes
	// RuleNamespace is the namespace a rule file's groups belong to (a
	// PrometheusRule's); false for --rules.file's.
	RuleNamespace func(file string) (string, bool)
}

// TargetRetriever is what Prometheus' API reads the scrape targets from.
type TargetRetriever = v1.TargetRetriever

// MetadataLister lists the scraped families' type, help and unit.
type MetadataLister interface {
	List() []storage.FamilyMetadata
}

// Queryable is the TSDB the query API reads.
type Queryable interface {
	promstorage.SampleAndChunkQueryable
	promstorage.ExemplarQueryable
}

// servedRoutes are the endpoints of Prometheus' API kmetrics serves, what
// Grafana's data source uses; everything else (admin, remote write, targets,
// config…) is 404.
var servedRoutes = []string{
	"/query", "/query_range", "/query_exemplars", "/series", "/labels",
	"/metadata", "/status/buildinfo", "/rules", "/alerts", "/alertmanagers", "/format_query", "/parse_query",
	"/targets", "/targets/metadata",
}

var labelValuesRoute = regexp.MustCompile(`^/label/[^/]+/values$`)

// NewQueryAPI serves the Prometheus HTTP API (Prometheus' own web/api/v1, so
// JSON, errors and parameter handling are exactly Prometheus') over db.
//
// Prometheus' API is built on the first request that reaches it, not here:
// its constructor renders an OpenAPI document (~80 MB allocated, a few
// hundred milliseconds of CPU, libopenapi's code paged in) that kmetrics does
// not serve, and a cluster that only runs `kubectl top` and the HPA never
// queries PromQL. The routes kmetrics refuses (allowListed) and a caller
// without a scope are answered without building it.
func NewQueryAPI(db Queryable, o QueryOptions, logger *slog.Logger) http.Handler {
	build := sync.OnceValue(func() http.Handler { return newPrometheusAPI(db, o, logger) })
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		build().ServeHTTP(w, r)
	})
	if o.Scopes != nil {
		h = scopeRequests(h, o.Scopes)
	}
	return limitConcurrency(allowListed(h), o.MaxConcurrency)
}

// newPrometheusAPI builds Prometheus' API and its router. This is the only
// place that knows NewAPI's long, version-specific signature.
func newPrometheusAPI(db Queryable, o QueryOptions, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	engine := promql.NewEngine(promql.EngineOpts{
		Logger:               logger,
		MaxSamples:           o.MaxSamples,
		Timeout:              o.Timeout,
		LookbackDelta:        o.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
	})
	var rr v1.RulesRetriever = noRules{}
	if o.Rules != nil {
		rr = o.Rules
	}
	var ar v1.AlertmanagerRetriever = noAlertmanagers{}
	if o.Alertmanagers != nil {
		ar = o.Alertmanagers
	}
	if o.Scopes != nil {
		// Every read of the API goes through the caller's scope.
		db = tenancy.NewQueryable(db)
	}
	reg := prometheus.NewRegistry()
	api := v1.NewAPI(
		engine, db, nil, nil, db,
		func(context.Context) v1.ScrapePoolsRetriever { return noTargets{} },
		func(ctx context.Context) v1.TargetRetriever {
			// /metadata lists every family kmetrics stores (kubelets,
			// cluster state, applications); /targets the scrape manager's.
			switch {
			case ctx.Value(metadataRequest{}) != nil:
				if s, ok := tenancy.ScopeFrom(ctx); ok && !s.All && o.Metadata != nil {
					return metadataTargets{src: scopedMetadata{ctx: ctx, db: db, src: o.Metadata}}
				}
				return metadataTargets{src: o.Metadata}
			case o.Targets != nil:
				return o.Targets
			}
			return noTargets{}
		},
		func(context.Context) v1.AlertmanagerRetriever { return ar },
		func() config.Config { return config.DefaultConfig },
		map[string]string{},
		v1.GlobalURLOptions{},
		func(f http.HandlerFunc) http.HandlerFunc { return f },
		noAdmin{},
		"", false, false, 0,
		logger,
		func(ctx context.Context) v1.RulesRetriever { return rulesFor(ctx, rr, o.RuleNamespace) },
		0, 0, 0,
		false,
		grafanaregexp.MustCompile(`^$`), // no CORS: Grafana queries from its backend
		func() (v1.RuntimeInfo, error) { return v1.RuntimeInfo{GoroutineCount: runtime.NumGoroutine()}, nil },
		&v1.PrometheusVersion{Version: o.Version, GoVersion: runtime.Version()},
		func() []notifications.Notification { return nil },
		func() (<-chan notifications.Notification, func(), bool) { return nil, func() {}, false },
		reg, reg,
		v1.DefaultStatsRenderer,
		false, nil,
		false, false, false,
		false,
		o.LookbackDelta,
		false, false,
		nil,
		nil,
		// The document is not served (not in servedRoutes); limited to the
		// routes that are, it costs half as much to render.
		v1.OpenAPIOptions{IncludePaths: servedRoutes},
		parser.NewParser(parser.Options{}),
	)
	router := route.New()
	api.Register(router)
	return router
}

func allowListed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, QueryPrefix)
		ok := labelValuesRoute.MatchString(p)
		for _, s := range servedRoutes {
			ok = ok || p == s
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		ctx := r.Context()
		if p == "/metadata" {
			ctx = context.WithValue(ctx, metadataRequest{}, true)
		}
		r2 := r.Clone(ctx)
		r2.URL = &url.URL{Path: p, RawQuery: r.URL.RawQuery}
		next.ServeHTTP(w, r2)
	})
}

// limitConcurrency lets n requests run at once; the others wait for a slot
// as long as their request may last (--query.timeout plus a margin), then
// get a 503. Waiting costs a goroutine, not the memory of a running query.
func limitConcurrency(next http.Handler, n int) http.Handler {
	if n <= 0 {
		return next
	}
	sem := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			next.ServeHTTP(w, r)
		case <-r.Context().Done():
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"unavailable","error":"no query slot became free in time (--query.max-concurrency)"}`))
		}
	})
}

type noTargets struct{}

// metadataRequest marks a /metadata request's context.
type metadataRequest struct{}

// metadataTargets exposes the metadata store to web/api/v1's /metadata,
// which reads it from the active targets: one synthetic target carries it
// (/targets itself is not served).
type metadataTargets struct {
	noTargets
	src MetadataLister
}

func (m metadataTargets) TargetsActive() map[string][]*scrape.Target {
	if m.src == nil {
		return nil
	}
	t := scrape.NewTarget(labels.EmptyLabels(), &config.ScrapeConfig{}, nil, nil)
	t.SetMetadataStore(metadataStore{m.src})
	return map[string][]*scrape.Target{"kmetrics": {t}}
}

type metadataStore struct{ src MetadataLister }

func (s metadataStore) ListMetadata() []scrape.MetricMetadata {
	list := s.src.List()
	out := make([]scrape.MetricMetadata, len(list))
	for i, f := range list {
		out[i] = scrape.MetricMetadata{MetricFamily: f.Family, Type: f.Type, Help: f.Help, Unit: f.Unit}
	}
	return out
}

func (s metadataStore) GetMetadata(family string) (scrape.MetricMetadata, bool) {
	for _, m := range s.ListMetadata() {
		if m.MetricFamily == family {
			return m, true
		}
	}
	return scrape.MetricMetadata{}, false
}

func (s metadataStore) SizeMetadata() int   { return 0 }
func (s metadataStore) LengthMetadata() int { return len(s.src.List()) }

func (noTargets) ScrapePools() []string                                 { return nil }
func (noTargets) TargetsActive() map[string][]*scrape.Target            { return nil }
func (noTargets) TargetsDropped() map[string][]*scrape.Target           { return nil }
func (noTargets) TargetsDroppedCounts() map[string]int                  { return nil }
func (noTargets) ScrapePoolConfig(string) (*config.ScrapeConfig, error) { return nil, errNotServed }

type noAlertmanagers struct{}

func (noAlertmanagers) Alertmanagers() []*url.URL        { return nil }
func (noAlertmanagers) DroppedAlertmanagers() []*url.URL { return nil }

type noRules struct{}

func (noRules) RuleGroups() []*rules.Group           { return nil }
func (noRules) AlertingRules() []*rules.AlertingRule { return nil }

var errNotServed = errors.New("not served by kmetrics")

// noAdmin refuses the TSDB admin operations (their routes are not served).
type noAdmin struct{}

func (noAdmin) CleanTombstones() error                                         { return errNotServed }
func (noAdmin) Delete(context.Context, int64, int64, ...*labels.Matcher) error { return errNotServed }
func (noAdmin) Snapshot(string, bool) error                                    { return errNotServed }
func (noAdmin) Stats(string, int) (*tsdb.Stats, error)                         { return nil, errNotServed }
func (noAdmin) WALReplayStatus() (tsdb.WALReplayStatus, error) {
	return tsdb.WALReplayStatus{}, errNotServed
}
func (noAdmin) BlockMetas() ([]tsdb.BlockMeta, error) { return nil, errNotServed }
