package rules

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/prometheus/promql"
	promrules "github.com/prometheus/prometheus/rules"
	promstorage "github.com/prometheus/prometheus/storage"

	"github.com/kmetrics/kmetrics/pkg/tenancy"
)

// errNoGroup: an evaluation whose rule group is unknown could be a
// confined one; it reads nothing rather than everything.
var errNoGroup = errors.New("rule evaluation without its group's file in the context")

// confinedQueryFunc evaluates the rules of a confined file (a
// PrometheusRule's) on its namespace's series alone, every selector of
// every expression and of the templates' query calls, so a team's rule
// cannot copy another namespace's series into its own (what the
// prometheus-operator's rule enforcement does by rewriting expressions).
// The rule group's file comes from the context Prometheus' rule group
// evaluates in.
func confinedQueryFunc(engine *promql.Engine, db promstorage.Queryable, confine func(string) (string, bool)) promrules.QueryFunc {
	all := promrules.EngineQueryFunc(engine, db)
	if confine == nil {
		return all
	}
	scoped := promrules.EngineQueryFunc(engine, tenancy.NewSampleQueryable(db))
	return func(ctx context.Context, q string, t time.Time) (promql.Vector, error) {
		file, ok := groupFile(ctx)
		if !ok {
			return nil, errNoGroup
		}
		ns, confined := confine(file)
		if !confined {
			return all(ctx, q, t)
		}
		return scoped(tenancy.WithScope(ctx, tenancy.Scope{Namespaces: []string{ns}}), q, t)
	}
}

// groupFile is the file of the rule group evaluating in ctx.
func groupFile(ctx context.Context) (string, bool) {
	origin, _ := ctx.Value(promql.QueryOrigin{}).(map[string]any)
	group, _ := origin["ruleGroup"].(map[string]string)
	file, ok := group["file"]
	return file, ok
}
