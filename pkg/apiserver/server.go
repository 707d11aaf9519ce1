package apiserver

import (
	"net/http"

	"k8s.io/apimachinery/pkg/labels"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/metrics-server/pkg/api"
)

// Deps are what the server serves from.
type Deps struct {
	// Resource answers metrics.k8s.io.
	Resource api.MetricsGetter
	// Pods is a metadata lister of running pods, Nodes a node lister: the
	// API lists objects from them and asks Resource for their usage.
	Pods         cache.GenericLister
	Nodes        corelisters.NodeLister
	NodeSelector []labels.Requirement
	// Query, when set, is the Prometheus HTTP API, mounted at QueryPrefix
	// behind the same authentication and authorization (a non-resource
	// path: RBAC nonResourceURLs /prometheus/api/v1/*, verbs get and post).
	Query http.Handler
	// Ready and Live back /readyz and /livez beyond the server's own checks.
	Ready, Live []Check
}

// Check is one named health condition.
type Check struct {
	Name string
	Fn   func() error
}

// New builds the server with metrics.k8s.io installed. Run it with
// PrepareRun().RunWithContext.
func New(cfg *genericapiserver.Config, deps Deps) (*genericapiserver.GenericAPIServer, error) {
	for _, c := range deps.Ready {
		cfg.AddReadyzChecks(namedCheck(c))
	}
	for _, c := range deps.Live {
		cfg.AddLivezChecks(namedCheck(c))
	}
	cfg.BuildHandlerChainFunc = func(apiHandler http.Handler, c *genericapiserver.Config) http.Handler {
		return genericapiserver.DefaultBuildHandlerChain(validateSelectors(apiHandler), c)
	}
	srv, err := cfg.Complete(nil).New("kmetrics", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, err
	}
	if err := api.Install(deps.Resource, deps.Pods, deps.Nodes, srv, deps.NodeSelector); err != nil {
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
