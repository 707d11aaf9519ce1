package apiserver

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/union"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"

	"github.com/kmetrics/kmetrics/pkg/tenancy"
)

// Scopes decides what a caller of the query API may read (pkg/tenancy's
// cache of SubjectAccessReview decisions).
type Scopes interface {
	Scope(ctx context.Context, u user.Info) (tenancy.Scope, error)
}

// ReaderPath is the path whose get a cluster-wide reader holds
// (kmetrics:query-reader grants nonResourceURLs /prometheus/api/v1/*): the
// scope decision asks it first.
const ReaderPath = QueryPrefix + "/query"

// refusedWhenScoped are answered 403 to a caller reading only some
// namespaces: scrape targets name every namespace's pods and addresses,
// the Alertmanagers are the platform's.
var refusedWhenScoped = []string{"/targets", "/targets/metadata", "/alertmanagers"}

// withScopedQueries lets an authenticated caller who is not a cluster-wide
// reader through to the query API when RBAC lets them read metrics in some
// namespace (the query handler then answers from those); a caller with no
// namespace stays denied (403) by the server's own authorization filter.
func withScopedQueries(delegated authorizer.Authorizer, scopes Scopes) (authorizer.Authorizer, error) {
	scoped := authorizer.AuthorizerFunc(func(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
		if a.IsResourceRequest() || !strings.HasPrefix(a.GetPath(), QueryPrefix+"/") ||
			(a.GetVerb() != "get" && a.GetVerb() != "post") || anonymous(a.GetUser()) {
			return authorizer.DecisionNoOpinion, "", nil
		}
		s, err := scopes.Scope(ctx, a.GetUser())
		switch {
		case err != nil:
			return authorizer.DecisionNoOpinion, "", err
		case s.Empty():
			return authorizer.DecisionNoOpinion, "no namespace whose metrics (get pods.metrics.k8s.io) RBAC lets the caller read", nil
		}
		return authorizer.DecisionAllow, "", nil
	})
	return union.New(
		union.NamedAuthorizer{AuthorizerName: "delegated", Authorizer: delegated},
		union.NamedAuthorizer{AuthorizerName: "kmetrics-query-scope", Authorizer: scoped},
	)
}

// anonymous callers never get a scope, whatever RBAC grants
// system:unauthenticated: the query API's data is not public.
func anonymous(u user.Info) bool {
	return u == nil || u.GetName() == user.Anonymous || slices.Contains(u.GetGroups(), user.AllUnauthenticated)
}

// scopeRequests puts the caller's scope into every request's context, where
// the scoped Queryable, /rules, /alerts and /metadata read it (the path is
// already below QueryPrefix: allowListed stripped it).
func scopeRequests(next http.Handler, scopes Scopes) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := request.UserFrom(r.Context())
		if !ok || anonymous(u) {
			writeAPIError(w, http.StatusForbidden, "forbidden", "the query API needs an authenticated caller")
			return
		}
		s, err := scopes.Scope(r.Context(), u)
		switch {
		case err != nil:
			klog.ErrorS(err, "Deciding a query caller's scope", "user", u.GetName())
			writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "the caller's namespaces could not be decided; retry")
			return
		case s.Empty():
			writeAPIError(w, http.StatusForbidden, "forbidden", "no namespace whose metrics (get pods.metrics.k8s.io) RBAC lets the caller read")
			return
		case !s.All && slices.Contains(refusedWhenScoped, r.URL.Path):
			writeAPIError(w, http.StatusForbidden, "forbidden", r.URL.Path+" is served to cluster-wide readers only (kmetrics:query-reader)")
			return
		}
		next.ServeHTTP(w, r.WithContext(tenancy.WithScope(r.Context(), s)))
	})
}

// writeAPIError answers in Prometheus' error format, which Grafana shows.
func writeAPIError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": typ, "error": msg})
}
