package tenancy

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// NamespaceLabel is the label a series' namespace is read from.
const NamespaceLabel = "namespace"

type scopeKey struct{}

// WithScope is ctx carrying the caller's scope; every read through a
// Queryable of this package is limited to it.
func WithScope(ctx context.Context, s Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// ScopeFrom is the scope ctx carries.
func ScopeFrom(ctx context.Context) (Scope, bool) {
	s, ok := ctx.Value(scopeKey{}).(Scope)
	return s, ok
}

// errNoScope: a read without a scope in its context is refused, never
// answered whole (a path that forgot to set one fails closed).
var errNoScope = errors.New("tenancy: a read without the caller's scope")

// restriction is the matcher a read in ctx gets; nil with ok for a
// cluster-wide reader; !ok when nothing may be read.
func restriction(ctx context.Context) (m *labels.Matcher, ok bool, err error) {
	s, found := ScopeFrom(ctx)
	switch {
	case !found:
		return nil, false, errNoScope
	case s.All:
		return nil, true, nil
	case s.Empty():
		return nil, false, nil
	}
	alternatives := make([]string, 0, len(s.Namespaces)+1)
	for _, ns := range s.Namespaces {
		alternatives = append(alternatives, regexp.QuoteMeta(ns))
	}
	if s.Cluster {
		// A series without the label matches "".
		alternatives = append(alternatives, "")
	}
	// Anchored by Prometheus; a set of literals is matched as a set.
	m, err = labels.NewMatcher(labels.MatchRegexp, NamespaceLabel, strings.Join(alternatives, "|"))
	return m, err == nil, err
}

// Queryable is what the query API reads: samples and exemplars.
type Queryable interface {
	storage.SampleAndChunkQueryable
	storage.ExemplarQueryable
}

// NewQueryable limits every read of q — each Select of every evaluation
// path (selectors, subqueries, @ and offset, absent, info), series, label
// names and values, exemplars — to the scope its context carries, by a
// matcher on the namespace label added to the read's own. Nothing is
// rewritten in the query's text.
func NewQueryable(q Queryable) Queryable { return scopedQueryable{q} }

type scopedQueryable struct{ Queryable }

// NewSampleQueryable is NewQueryable for a reader of samples alone (rule
// evaluation).
func NewSampleQueryable(q storage.Queryable) storage.Queryable { return scopedSampleQueryable{q} }

type scopedSampleQueryable struct{ storage.Queryable }

func (s scopedSampleQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := s.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return scopedQuerier{q}, nil
}

func (s scopedQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := s.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return scopedQuerier{q}, nil
}

func (s scopedQueryable) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	q, err := s.Queryable.ChunkQuerier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return scopedChunkQuerier{q}, nil
}

func (s scopedQueryable) ExemplarQuerier(ctx context.Context) (storage.ExemplarQuerier, error) {
	m, ok, err := restriction(ctx)
	if err != nil {
		return nil, err
	}
	q, err := s.Queryable.ExemplarQuerier(ctx)
	if err != nil {
		return nil, err
	}
	return scopedExemplarQuerier{q: q, m: m, none: !ok}, nil
}

type scopedQuerier struct{ storage.Querier }

func (q scopedQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	m, ok, err := restriction(ctx)
	switch {
	case err != nil:
		return storage.ErrSeriesSet(err)
	case !ok:
		return storage.EmptySeriesSet()
	case m != nil:
		ms = append(ms[:len(ms):len(ms)], m)
	}
	return q.Querier.Select(ctx, sortSeries, hints, ms...)
}

func (q scopedQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	m, ok, err := restriction(ctx)
	switch {
	case err != nil:
		return nil, nil, err
	case !ok:
		return nil, nil, nil
	case m != nil:
		ms = append(ms[:len(ms):len(ms)], m)
	}
	return q.Querier.LabelValues(ctx, name, hints, ms...)
}

func (q scopedQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	m, ok, err := restriction(ctx)
	switch {
	case err != nil:
		return nil, nil, err
	case !ok:
		return nil, nil, nil
	case m != nil:
		ms = append(ms[:len(ms):len(ms)], m)
	}
	return q.Querier.LabelNames(ctx, hints, ms...)
}

type scopedChunkQuerier struct{ storage.ChunkQuerier }

func (q scopedChunkQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.ChunkSeriesSet {
	m, ok, err := restriction(ctx)
	switch {
	case err != nil:
		return storage.ErrChunkSeriesSet(err)
	case !ok:
		return storage.EmptyChunkSeriesSet()
	case m != nil:
		ms = append(ms[:len(ms):len(ms)], m)
	}
	return q.ChunkQuerier.Select(ctx, sortSeries, hints, ms...)
}

func (q scopedChunkQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	m, ok, err := restriction(ctx)
	switch {
	case err != nil:
		return nil, nil, err
	case !ok:
		return nil, nil, nil
	case m != nil:
		ms = append(ms[:len(ms):len(ms)], m)
	}
	return q.ChunkQuerier.LabelValues(ctx, name, hints, ms...)
}

func (q scopedChunkQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	m, ok, err := restriction(ctx)
	switch {
	case err != nil:
		return nil, nil, err
	case !ok:
		return nil, nil, nil
	case m != nil:
		ms = append(ms[:len(ms):len(ms)], m)
	}
	return q.ChunkQuerier.LabelNames(ctx, hints, ms...)
}

type scopedExemplarQuerier struct {
	q    storage.ExemplarQuerier
	m    *labels.Matcher
	none bool
}

func (e scopedExemplarQuerier) Select(start, end int64, sets ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	if e.none {
		return nil, nil
	}
	if e.m != nil {
		scoped := make([][]*labels.Matcher, len(sets))
		for i, ms := range sets {
			scoped[i] = append(ms[:len(ms):len(ms)], e.m)
		}
		sets = scoped
	}
	return e.q.Select(start, end, sets...)
}
