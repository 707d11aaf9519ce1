package provider

import (
	"context"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
)

// objectFilter restricts a query to the series of the objects a
// labelSelector chose (from the informer cache), in Go instead of a
// pod=~"a|b|…" regexp: series of other objects are dropped before any of
// their chunks is read. Like prometheus-adapter's regexp, it applies to the
// selectors that carry the rule's <<.LabelMatchers>> (recognised by the
// matchers injected there); other selectors of the query are untouched.
type objectFilter struct {
	promstorage.Queryable
	label    string
	names    map[string]struct{}
	injected []*labels.Matcher
}

func (f *objectFilter) Querier(mint, maxt int64) (promstorage.Querier, error) {
	q, err := f.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &filteredQuerier{Querier: q, f: f}, nil
}

type filteredQuerier struct {
	promstorage.Querier
	f *objectFilter
}

func (q *filteredQuerier) Select(ctx context.Context, sort bool, hints *promstorage.SelectHints, ms ...*labels.Matcher) promstorage.SeriesSet {
	set := q.Querier.Select(ctx, sort, hints, ms...)
	if !carries(ms, q.f.injected) {
		return set
	}
	return &filteredSet{SeriesSet: set, f: q.f}
}

// carries reports whether every injected matcher is among ms.
func carries(ms, injected []*labels.Matcher) bool {
	for _, want := range injected {
		found := false
		for _, m := range ms {
			if m.Name == want.Name && m.Type == want.Type && m.Value == want.Value {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

type filteredSet struct {
	promstorage.SeriesSet
	f *objectFilter
}

func (s *filteredSet) Next() bool {
	for s.SeriesSet.Next() {
		if _, ok := s.f.names[s.SeriesSet.At().Labels().Get(s.f.label)]; ok {
			return true
		}
	}
	return false
}
