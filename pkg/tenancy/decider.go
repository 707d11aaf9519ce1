package tenancy

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// The permissions a scope is decided from. A namespace is readable by
// whoever may get pods.metrics.k8s.io in it — what the built-in view, edit
// and admin roles grant (kmetrics' system:aggregated-metrics-reader is
// aggregated to them), so a team that can `kubectl top pods` in a namespace
// reads its series there and nothing needs granting. The series without a
// namespace (nodes, kmetrics itself) need get nodes.metrics.k8s.io, what
// `kubectl top nodes` needs: cluster-scoped, as those series are.
var (
	namespaceRead = authorizer.AttributesRecord{Verb: "get", APIGroup: "metrics.k8s.io", APIVersion: "*", Resource: "pods", ResourceRequest: true}
	clusterRead   = authorizer.AttributesRecord{Verb: "get", APIGroup: "metrics.k8s.io", APIVersion: "*", Resource: "nodes", ResourceRequest: true}
)

// Decider decides scopes with the API server's authorizer (delegated:
// SubjectAccessReviews carrying the caller's user, groups, UID and extra).
type Decider struct {
	authz authorizer.UnconditionalAuthorizer
	// allPath: a caller allowed to get this non-resource path (the query
	// API, kmetrics:query-reader) reads everything.
	allPath string
	// namespaces lists the cluster's namespaces (an informer's).
	namespaces func() ([]string, error)
	// candidates, when set, are the namespaces where u may have been
	// granted something (RoleBindings naming it): only those are reviewed.
	candidates func(u user.Info) ([]string, error)
	// parallel bounds the reviews in flight for one decision.
	parallel int
}

// NewDecider decides with authz; allPath is the query API's path.
func NewDecider(authz authorizer.UnconditionalAuthorizer, allPath string, namespaces func() ([]string, error)) *Decider {
	return &Decider{authz: authz, allPath: allPath, namespaces: namespaces, parallel: 8}
}

// WithCandidates reviews only the namespaces candidates names for a caller
// (RoleBindingCandidates) instead of every namespace: a decision costs a
// few SubjectAccessReviews, not one per namespace of the cluster.
func (d *Decider) WithCandidates(candidates func(u user.Info) ([]string, error)) *Decider {
	d.candidates = candidates
	return d
}

// Decide is u's scope. An error of the authorizer is returned, never taken
// as a denial or an allowance.
func (d *Decider) Decide(ctx context.Context, u user.Info) (Scope, error) {
	all, err := d.allowed(ctx, authorizer.AttributesRecord{User: u, Verb: "get", Path: d.allPath})
	if err != nil || all {
		return Scope{All: all}, err
	}
	cluster := clusterRead
	cluster.User = u
	var s Scope
	if s.Cluster, err = d.allowed(ctx, cluster); err != nil {
		return Scope{}, err
	}
	// One review for every namespace at once (a ClusterRoleBinding of
	// view): then every namespace is in the scope.
	everywhere := namespaceRead
	everywhere.User = u
	allNamespaces, err := d.allowed(ctx, everywhere)
	if err != nil {
		return Scope{}, err
	}
	// Every namespace is listed only when needed: with candidates, a
	// decision reads the caller's RoleBindings alone.
	var names []string
	if allNamespaces || d.candidates == nil {
		if names, err = d.namespaces(); err != nil {
			return Scope{}, fmt.Errorf("listing namespaces: %w", err)
		}
	} else if names, err = d.candidates(u); err != nil {
		return Scope{}, fmt.Errorf("listing the caller's RoleBindings: %w", err)
	}
	if allNamespaces {
		s.Namespaces = slices.Sorted(slices.Values(names))
		return s, nil
	}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		slots    = make(chan struct{}, d.parallel)
	)
	for _, ns := range names {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			a := namespaceRead
			a.User, a.Namespace = u, ns
			ok, err := d.allowed(ctx, a)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && firstErr == nil:
				firstErr = err
			case ok:
				s.Namespaces = append(s.Namespaces, ns)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return Scope{}, firstErr
	}
	slices.Sort(s.Namespaces)
	return s, nil
}

func (d *Decider) allowed(ctx context.Context, a authorizer.AttributesRecord) (bool, error) {
	decision, _, err := d.authz.Authorize(ctx, a)
	if err != nil {
		return false, fmt.Errorf("authorizing %s %s/%s in %q for %q: %w", a.Verb, a.Resource, a.Path, a.Namespace, a.User.GetName(), err)
	}
	return decision == authorizer.DecisionAllow, nil
}
