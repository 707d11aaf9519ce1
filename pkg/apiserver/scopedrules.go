package apiserver

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
	v1 "github.com/prometheus/prometheus/web/api/v1"
	"k8s.io/klog/v2"

	"github.com/kmetrics/kmetrics/pkg/storage"
	"github.com/kmetrics/kmetrics/pkg/tenancy"
)

// scopedRules shows a namespace-scoped caller the rule groups of the
// PrometheusRules in its namespaces, and their alerts; the groups of
// --rules.file (the platform's own, over every namespace) and of other
// namespaces are not listed.
type scopedRules struct {
	all         v1.RulesRetriever
	scope       tenancy.Scope
	namespaceOf func(file string) (string, bool)
}

func (r scopedRules) RuleGroups() []*rules.Group {
	var out []*rules.Group
	for _, g := range r.all.RuleGroups() {
		if ns, ok := r.namespaceOf(g.File()); ok && ns != "" && r.scope.Allows(ns) {
			out = append(out, g)
		}
	}
	return out
}

func (r scopedRules) AlertingRules() []*rules.AlertingRule {
	var out []*rules.AlertingRule
	for _, g := range r.RuleGroups() {
		for _, rule := range g.Rules() {
			if a, ok := rule.(*rules.AlertingRule); ok {
				out = append(out, a)
			}
		}
	}
	return out
}

// rulesFor is the retriever of a request: everything for a cluster-wide
// reader, the scope's PrometheusRules for the others.
func rulesFor(ctx context.Context, all v1.RulesRetriever, namespaceOf func(string) (string, bool)) v1.RulesRetriever {
	s, ok := tenancy.ScopeFrom(ctx)
	if !ok || s.All {
		// Without scopes configured no scope is set: the API is all or
		// nothing, as authorized.
		return all
	}
	if namespaceOf == nil {
		namespaceOf = func(string) (string, bool) { return "", false }
	}
	return scopedRules{all: all, scope: s, namespaceOf: namespaceOf}
}

// metadataWindow is how far back a scoped caller's families are looked for:
// /metadata lists the families with a series in the scope in that window.
const metadataWindow = time.Hour

// visibleFamilies filters the metadata list to the families with a series
// the caller may read (a family is its metric name or that name's
// histogram, summary or counter series).
func visibleFamilies(ctx context.Context, db Queryable, list []storage.FamilyMetadata) ([]storage.FamilyMetadata, error) {
	now := time.Now()
	q, err := db.Querier(now.Add(-metadataWindow).UnixMilli(), now.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer q.Close()
	names, _, err := q.LabelValues(ctx, labels.MetricName, nil)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		seen[n] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count", "_total", "_created", "_info"} {
			if base, ok := strings.CutSuffix(n, suffix); ok {
				seen[base] = true
			}
		}
	}
	var out []storage.FamilyMetadata
	for _, f := range list {
		if seen[f.Family] {
			out = append(out, f)
		}
	}
	return out, nil
}

// scopedMetadata is /metadata for a namespace-scoped caller.
type scopedMetadata struct {
	ctx context.Context
	db  Queryable
	src MetadataLister
}

func (m scopedMetadata) List() []storage.FamilyMetadata {
	out, err := visibleFamilies(m.ctx, m.db, m.src.List())
	if err != nil {
		klog.ErrorS(err, "Listing the families a scoped caller may see")
		return nil
	}
	return out
}
