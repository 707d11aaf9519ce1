package tenancy

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
)

// victimValue is the only sample value the victim's series have: a result
// holding it leaked them.
const victimValue = 4242

func scopedTSDB(t *testing.T) (Queryable, int64) {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	now := time.Now().UnixMilli()
	app := db.Appender(context.Background())
	series := []struct {
		lset  labels.Labels
		value float64
	}{
		{labels.FromStrings("__name__", "requests_total", "namespace", "team-a", "pod", "a1"), 1},
		{labels.FromStrings("__name__", "requests_total", "namespace", "team-a2", "pod", "a2"), 2},
		{labels.FromStrings("__name__", "requests_total", "namespace", "victim", "pod", "v1"), victimValue},
		{labels.FromStrings("__name__", "secret_total", "namespace", "victim", "pod", "v1", "victim_only", "yes"), victimValue},
		{labels.FromStrings("__name__", "node_cpu_seconds_total", "node", "n1", "node_only", "yes"), 3},
	}
	for ts := now - 10*60*1000; ts <= now; ts += 15000 {
		for _, s := range series {
			if _, err := app.Append(0, s.lset, ts, s.value); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	return NewQueryable(db), now
}

func TestHostileQueriesSeeNoVictimData(t *testing.T) {
	q, now := scopedTSDB(t)
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, EnableAtModifier: true, EnableNegativeOffset: true})
	team := WithScope(context.Background(), Scope{Namespaces: []string{"team-a"}})
	at := time.UnixMilli(now)
	for _, expr := range []string{
		`{__name__=~".+"}`,
		`count by (namespace) ({__name__=~".+"})`,
		`secret_total`,
		`requests_total{namespace="victim"}`,
		`requests_total{namespace=~"vic.*"}`,
		`requests_total{namespace=~".*"}`,
		`requests_total{namespace!="team-a"}`,
		`requests_total{namespace=~"team-a|victim"}`,
		`requests_total{namespace=~"team-a.*"}`,
		`{__name__=~".+", namespace=""}`,
		`label_replace(requests_total, "namespace", "victim", "", "")`,
		`label_join(requests_total, "namespace", "", "pod")`,
		`requests_total @ 0`,
		`requests_total offset 5m`,
		`requests_total offset -1m`,
		`max_over_time(requests_total{namespace="victim"}[10m:15s])`,
		`sum(rate(requests_total[5m]))`,
		`requests_total + on() group_left sum(secret_total)`,
		`requests_total * on(pod) group_left(victim_only) secret_total`,
		`node_cpu_seconds_total`,
		`sum(node_cpu_seconds_total) or vector(0)`,
	} {
		for name, qry := range map[string]func() (promql.Query, error){
			"instant": func() (promql.Query, error) { return engine.NewInstantQuery(team, q, nil, expr, at) },
			"range": func() (promql.Query, error) {
				return engine.NewRangeQuery(team, q, nil, expr, at.Add(-10*time.Minute), at, 15*time.Second)
			},
		} {
			query, err := qry()
			if err != nil {
				t.Fatalf("%s: %v", expr, err)
			}
			res := query.Exec(team)
			if res.Err != nil {
				t.Fatalf("%s (%s): %v", expr, name, res.Err)
			}
			out := res.String()
			if strings.Contains(out, "4242") || strings.Contains(out, "victim_only") || strings.Contains(out, "team-a2") || strings.Contains(out, "node_only") {
				t.Errorf("%s (%s) leaked: %s", expr, name, out)
			}
			query.Close()
		}
	}
	// absent() is no oracle: the victim's series is as absent as one that
	// never existed.
	for _, expr := range []string{`absent(secret_total{namespace="victim"})`, `absent(secret_total{namespace="nobody"})`} {
		query, _ := engine.NewInstantQuery(team, q, nil, expr, at)
		if res := query.Exec(team); res.Err != nil || !strings.Contains(res.String(), "=> 1") {
			t.Errorf("%s: %v %v, want 1", expr, res.String(), res.Err)
		}
	}
}

func TestLabelsAndSeriesFollowTheScope(t *testing.T) {
	q, now := scopedTSDB(t)
	querier, err := q.Querier(now-3600*1000, now)
	if err != nil {
		t.Fatal(err)
	}
	defer querier.Close()
	for _, c := range []struct {
		scope      Scope
		namespaces []string
		nodeLabel  bool
	}{
		{Scope{Namespaces: []string{"team-a"}}, []string{"team-a"}, false},
		{Scope{Namespaces: []string{"team-a", "team-a2"}}, []string{"team-a", "team-a2"}, false},
		{Scope{Cluster: true}, nil, true},
		{Scope{All: true}, []string{"team-a", "team-a2", "victim"}, true},
		{Scope{}, nil, false},
	} {
		ctx := WithScope(context.Background(), c.scope)
		values, _, err := querier.LabelValues(ctx, "namespace", nil)
		if err != nil || !slices.Equal(values, c.namespaces) {
			t.Errorf("%+v: namespace values %v, %v, want %v", c.scope, values, err, c.namespaces)
		}
		names, _, err := querier.LabelNames(ctx, nil)
		if err != nil || slices.Contains(names, "node_only") != c.nodeLabel || (slices.Contains(names, "victim_only") != c.scope.All) {
			t.Errorf("%+v: label names %v, %v", c.scope, names, err)
		}
		matchAll := labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")
		set := querier.Select(ctx, false, nil, matchAll)
		for set.Next() {
			if ns := set.At().Labels().Get("namespace"); !c.scope.Allows(ns) {
				t.Errorf("%+v: series %s", c.scope, set.At().Labels())
			}
		}
		if set.Err() != nil {
			t.Error(set.Err())
		}
	}
	// A read whose context carries no scope fails closed.
	if set := querier.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "requests_total")); set.Next() || set.Err() == nil {
		t.Error("a read without a scope was answered")
	}
	if _, _, err := querier.LabelValues(context.Background(), "namespace", nil); err == nil {
		t.Error("label values without a scope were answered")
	}
}

// A namespace's name is matched as a literal: one named "team-a|victim"
// or ".*" does not widen the scope.
func TestNamespaceNamesAreLiterals(t *testing.T) {
	for _, ns := range []string{"team-a|victim", ".*", "team-a)|(.*", `team-\w+`} {
		m, ok, err := restriction(WithScope(context.Background(), Scope{Namespaces: []string{ns}}))
		if err != nil || !ok {
			t.Fatalf("%q: %v", ns, err)
		}
		if !m.Matches(ns) || m.Matches("victim") || m.Matches("team-a") || m.Matches("") {
			t.Errorf("scope of %q: matcher %s", ns, m)
		}
	}
}
