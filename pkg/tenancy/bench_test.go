package tenancy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
)

// BenchmarkScopedQuery: a dashboard query of one team (two namespaces of
// 200) through the scoped Queryable, beside the same query naming the two
// namespaces itself on the TSDB directly (what the scope adds), and
// beside a cluster-wide reader's unscoped query (what the team is spared).
func BenchmarkScopedQuery(b *testing.B) {
	db, err := tsdb.Open(b.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UnixMilli()
	app := db.Appender(context.Background())
	for ns := range 200 {
		for pod := range 20 {
			lset := labels.FromStrings("__name__", "container_cpu_usage_seconds_total", "namespace", fmt.Sprintf("ns-%03d", ns), "pod", fmt.Sprintf("p%d", pod))
			for i, ts := 0, now-30*60*1000; ts <= now; i, ts = i+1, ts+15000 {
				if _, err := app.Append(0, lset, ts, float64(i)); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e8, Timeout: time.Minute})
	scoped := NewQueryable(db)
	team := WithScope(context.Background(), Scope{Namespaces: []string{"ns-007", "ns-123"}})
	at := time.UnixMilli(now)
	run := func(b *testing.B, ctx context.Context, q Queryable, expr string) {
		for b.Loop() {
			query, err := engine.NewRangeQuery(ctx, q, nil, expr, at.Add(-30*time.Minute), at, 15*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			if res := query.Exec(ctx); res.Err != nil {
				b.Fatal(res.Err)
			}
			query.Close()
		}
	}
	const dashboard = `sum by (namespace, pod) (rate(container_cpu_usage_seconds_total[5m]))`
	b.Run("scoped", func(b *testing.B) { run(b, team, scoped, dashboard) })
	b.Run("same-namespaces-unscoped", func(b *testing.B) {
		run(b, context.Background(), db, `sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{namespace=~"ns-007|ns-123"}[5m]))`)
	})
	b.Run("cluster-wide", func(b *testing.B) { run(b, context.Background(), db, dashboard) })
}
