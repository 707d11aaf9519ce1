package provider

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"k8s.io/apimachinery/pkg/runtime/schema"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/kmetrics/kmetrics/pkg/rules/naming"
)

// catalog is what the TSDB's recent series offer under the current rules:
// discovery lists it, requests look their metric up in it.
type catalog struct {
	custom       map[customKey][]source
	customList   []cmprovider.CustomMetricInfo
	external     map[string][]source
	externalList []cmprovider.ExternalMetricInfo
	// snapshot: the lists were loaded from disk at start; no series are
	// known yet (the TSDB is opening).
	snapshot bool
}

type customKey struct {
	gr     schema.GroupResource
	metric string
}

// source is one series name a rule serves a metric from.
type source struct {
	namer  *naming.Namer
	series string
}

// buildCatalog reads the names and label names of the series each rule
// selects in [start, end]. A series stays listed while it has a sample in
// the window, so discovery does not flap between scrapes.
func buildCatalog(ctx context.Context, db promstorage.Queryable, rules *naming.Rules, isNamespaced func(schema.GroupResource) bool, start, end time.Time) (*catalog, error) {
	q, err := db.Querier(start.UnixMilli(), end.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer q.Close()
	c := &catalog{custom: map[customKey][]source{}, external: map[string][]source{}}
	hints := &promstorage.SelectHints{Start: start.UnixMilli(), End: end.UnixMilli(), Func: "series"}
	for _, n := range rules.Custom {
		type nameLabel struct{ series, label string }
		seen := map[nameLabel]bool{}
		err := eachSeries(ctx, q, hints, n, func(name, metric string, lset labels.Labels) {
			lset.Range(func(l labels.Label) {
				if l.Name == labels.MetricName || seen[nameLabel{name, l.Name}] {
					return
				}
				seen[nameLabel{name, l.Name}] = true
				if gr, ok := n.ResourceFor(l.Name); ok {
					k := customKey{gr, metric}
					c.custom[k] = addSource(c.custom[k], source{n, name})
				}
			})
		})
		if err != nil {
			return nil, err
		}
	}
	for _, n := range rules.External {
		err := eachSeries(ctx, q, hints, n, func(name, metric string, _ labels.Labels) {
			c.external[metric] = addSource(c.external[metric], source{n, name})
		})
		if err != nil {
			return nil, err
		}
	}
	for k := range c.custom {
		c.customList = append(c.customList, cmprovider.CustomMetricInfo{GroupResource: k.gr, Metric: k.metric, Namespaced: isNamespaced(k.gr)})
	}
	sort.Slice(c.customList, func(i, j int) bool { return c.customList[i].String() < c.customList[j].String() })
	for m := range c.external {
		c.externalList = append(c.externalList, cmprovider.ExternalMetricInfo{Metric: m})
	}
	sort.Slice(c.externalList, func(i, j int) bool { return c.externalList[i].Metric < c.externalList[j].Metric })
	return c, nil
}

func eachSeries(ctx context.Context, q promstorage.Querier, hints *promstorage.SelectHints, n *naming.Namer, f func(name, metric string, lset labels.Labels)) error {
	set := q.Select(ctx, false, hints, n.Matchers()...)
	// Thousands of series share a few names: name each name once.
	metrics := map[string]string{}
	for set.Next() {
		lset := set.At().Labels()
		name := lset.Get(labels.MetricName)
		metric, seen := metrics[name]
		if !seen {
			metric, _ = n.MetricName(name)
			metrics[name] = metric
		}
		if metric != "" {
			f(name, metric, lset)
		}
	}
	if err := set.Err(); err != nil {
		return fmt.Errorf("listing series: %w", err)
	}
	return nil
}

func addSource(list []source, s source) []source {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// metricsFor names up to max metrics served for a resource, for messages:
// the nearest to asked first (a typo's fix leads, however many metrics the
// cluster serves), then by name.
func (c *catalog) metricsFor(gr schema.GroupResource, asked string, max int) []string {
	var names []string
	for _, info := range c.customList {
		if info.GroupResource == gr {
			names = append(names, info.Metric)
		}
	}
	// The name asked comes from the request's path: a caller could send a
	// megabyte of it. The distance costs len(asked) × len(name) per metric,
	// so only its first maxAskedLen bytes are compared (no metric name that
	// long is a typo's fix).
	if len(asked) > maxAskedLen {
		asked = asked[:maxAskedLen]
	}
	distance := make(map[string]int, len(names))
	for _, n := range names {
		distance[n] = editDistance(asked, n)
	}
	slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(distance[a], distance[b]) })
	if len(names) > max {
		names = append(names[:max], "…")
	}
	return names
}

// maxAskedLen bounds the part of an unknown metric's name compared with the
// served ones.
const maxAskedLen = 256

// editDistance is the Levenshtein distance between a and b, by bytes
// (metric names are ASCII).
func editDistance(a, b string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
