package apiserver

import (
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	cmapiserver "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/kmetrics/kmetrics/pkg/apiserver/metricsapi"
)

// Deps are what the server serves from.
type Deps struct {
	// Resource answers metrics.k8s.io (v1 and v1beta1).
	Resource metricsapi.MetricsGetter
	// Pods is a metadata lister of running pods, Nodes a node lister: the
	// API lists objects from them and asks Resource for their usage.
	Pods         cache.GenericLister
	Nodes        corelisters.NodeLister
	NodeSelector []labels.Requirement
	// Custom and External answer custom.metrics.k8s.io (v1beta2, v1beta1)
	// and external.metrics.k8s.io; nil leaves a group out.
	Custom   cmprovider.CustomMetricsProvider
	External cmprovider.ExternalMetricsProvider
	// Query, when set, is the Prometheus HTTP API, mounted at QueryPrefix
	// behind the same authentication and authorization (a non-resource
	// path: RBAC nonResourceURLs /prometheus/api/v1/*, verbs get and post).
	Query http.Handler
	// Ready and Live back /readyz and /livez beyond the server's own checks.
	Ready, Live []Check
	// Scopes, when set, lets an authenticated caller who is not a
	// cluster-wide reader query from the namespaces RBAC lets it read (the
	// query API given the same Scopes answers from those).
	Scopes Scopes
	// QueryTimeout is the longest a query may run: the server's request
	// timeout is raised above it, so a slow query ends with Prometheus' JSON
	// error rather than the generic server's 504.
	QueryTimeout time.Duration
}

// Check is one named health condition.
type Check struct {
	Name string
	Fn   func() error
}

// New builds the server with metrics.k8s.io and the custom and external
// metrics groups installed. Run it with
// PrepareRun().RunWithContext.
func New(cfg *genericapiserver.Config, deps Deps) (*genericapiserver.GenericAPIServer, error) {
	if minimum := deps.QueryTimeout + 10*time.Second; cfg.RequestTimeout < minimum {
		cfg.RequestTimeout = minimum
	}
	for _, c := range deps.Ready {
		cfg.AddReadyzChecks(namedCheck(c))
	}
	for _, c := range deps.Live {
		cfg.AddLivezChecks(namedCheck(c))
	}
	if deps.Scopes != nil && cfg.Authorization.Authorizer != nil {
		a, err := withScopedQueries(cfg.Authorization.Authorizer, deps.Scopes)
		if err != nil {
			return nil, err
		}
		cfg.Authorization.Authorizer = a
	}
	cfg.BuildHandlerChainFunc = func(apiHandler http.Handler, c *genericapiserver.Config) http.Handler {
		return genericapiserver.DefaultBuildHandlerChain(validateSelectors(apiHandler), c)
	}
	// custom-metrics-apiserver installs its groups only through its own
	// server type; metrics.k8s.io goes onto the same generic server.
	cm, err := (&cmapiserver.Config{GenericConfig: cfg}).Complete(nil).New("kmetrics", deps.Custom, deps.External)
	if err != nil {
		return nil, err
	}
	srv := cm.GenericAPIServer
	if err := metricsapi.Install(srv, deps.Resource, deps.Pods, deps.Nodes, deps.NodeSelector); err != nil {
		return nil, err
	}
	if deps.Query != nil {
		srv.Handler.NonGoRestfulMux.HandlePrefix(QueryPrefix+"/", deps.Query)
	}
	return srv, nil
}

func namedCheck(c Check) healthz.HealthChecker {
	return healthz.NamedCheck(c.Name, func(*http.Request) error { return c.Fn() })
}
