package main

import (
	"errors"
	"slices"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/informers"

	"github.com/kmetrics/kmetrics/pkg/apiserver"
	"github.com/kmetrics/kmetrics/pkg/promoperator"
	"github.com/kmetrics/kmetrics/pkg/tenancy"
)

// newQueryScopes decides each query API caller's namespaces with the
// server's own (delegated) authorizer; nil when scopes are off or nothing
// authorizes (a test server).
func newQueryScopes(o *options, cfg *genericapiserver.Config, factory informers.SharedInformerFactory) apiserver.Scopes {
	if !o.queryScoped || cfg.Authorization.Authorizer == nil {
		return nil
	}
	informer := factory.Core().V1().Namespaces()
	namespaces := informer.Lister()
	list := func() ([]string, error) {
		if !informer.Informer().HasSynced() {
			// Not an empty scope (kept for the TTL): a 503 to retry.
			return nil, errors.New("the namespaces are not listed yet")
		}
		all, err := namespaces.List(labels.Everything())
		if err != nil {
			return nil, err
		}
		names := make([]string, len(all))
		for i, ns := range all {
			names[i] = ns.Name
		}
		return names, nil
	}
	decider := tenancy.NewDecider(cfg.Authorization.Authorizer, apiserver.ReaderPath, list)
	if o.queryScopeNamespaces == "rolebindings" {
		rolebindings := factory.Rbac().V1().RoleBindings().Informer()
		_ = rolebindings.AddIndexers(tenancy.SubjectIndexers)
		candidates := tenancy.RoleBindingCandidates(rolebindings.GetIndexer())
		decider.WithCandidates(func(u user.Info) ([]string, error) {
			if !rolebindings.HasSynced() {
				return nil, errors.New("the RoleBindings are not listed yet")
			}
			return candidates(u)
		})
	}
	return tenancy.NewCache(decider.Decide, o.queryScopeTTL, o.queryScopeCacheSize)
}

// ruleNamespace names the namespace a rule file is confined to: a
// PrometheusRule's, unless that namespace is the platform's.
func ruleNamespace(o *options) func(string) (string, bool) {
	dir := operatorRuleDir(o)
	return func(file string) (string, bool) {
		ns, ok := promoperator.RuleFileNamespace(dir, file)
		if !ok || slices.Contains(o.operatorPlatformRuleNS, ns) {
			return "", false
		}
		return ns, true
	}
}
