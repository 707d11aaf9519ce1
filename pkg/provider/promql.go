package provider

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	promstorage "github.com/prometheus/prometheus/storage"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
)

type labeledSample struct {
	labels labels.Labels
	sample
}

// evaluate renders the source's metricsQuery and runs it at the current
// time. Each result carries the time of the newest raw sample of its group
// (a second, cheap query), not the evaluation time, and the query's range.
func (p *MetricsProvider) evaluate(ctx context.Context, db promstorage.Queryable, src source, matchers []*labels.Matcher, groupBy []string) ([]labeledSample, error) {
	q, err := src.namer.Query(src.series, matchers, groupBy)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("metricsQuery renders invalid PromQL %q: %w", q, err))
	}
	window := maxRange(expr)
	now := p.now()
	vec, err := p.instant(ctx, db, q, now)
	if err != nil {
		return nil, err
	}
	if len(vec) == 0 {
		return nil, nil
	}
	selector := append([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, src.series)}, matchers...)
	tsVec, err := p.instant(ctx, db, fmt.Sprintf("max by (%s) (timestamp(%s))", strings.Join(groupBy, ","), vectorSelector(selector)), now)
	if err != nil {
		return nil, err
	}
	newest := map[string]int64{}
	latest := int64(math.MinInt64)
	for _, s := range tsVec {
		t := int64(s.F * 1000)
		newest[groupKey(s.Metric, groupBy)] = t
		latest = max(latest, t)
	}
	if latest == math.MinInt64 {
		latest = now.UnixMilli()
	}
	out := make([]labeledSample, 0, len(vec))
	for _, s := range vec {
		if s.H != nil || math.IsNaN(s.F) || math.IsInf(s.F, 0) {
			continue
		}
		t, ok := newest[groupKey(s.Metric, groupBy)]
		if !ok {
			t = latest
		}
		out = append(out, labeledSample{labels: s.Metric, sample: sample{v: s.F, t: t, window: window}})
	}
	return out, nil
}

func (p *MetricsProvider) instant(ctx context.Context, db promstorage.Queryable, q string, at time.Time) (promql.Vector, error) {
	// The HPA's requests have slots of their own: no dashboard or rule
	// takes them. A request waits for one as long as its context allows.
	if p.slots != nil {
		select {
		case p.slots <- struct{}{}:
			defer func() { <-p.slots }()
		case <-ctx.Done():
			return nil, apierrors.NewServiceUnavailable("no custom metrics query slot became free in time (--custom-metrics.max-concurrency)")
		}
	}
	qry, err := p.engine.NewInstantQuery(ctx, db, nil, q, at)
	if err != nil {
		return nil, queryError(q, err)
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, queryError(q, res.Err)
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		return v, nil
	case promql.Scalar:
		return promql.Vector{{T: v.T, F: v.V}}, nil
	default:
		return nil, apierrors.NewInternalError(fmt.Errorf("query %q returned a %s, not an instant vector", q, res.Value.Type()))
	}
}

func groupKey(l labels.Labels, names []string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(l.Get(n))
		b.WriteByte(0xff)
	}
	return b.String()
}

func vectorSelector(ms []*labels.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// maxRange is the longest range selector or subquery in expr: the window a
// rate is computed over.
func maxRange(expr parser.Expr) time.Duration {
	var longest time.Duration
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.MatrixSelector:
			longest = max(longest, n.Range)
		case *parser.SubqueryExpr:
			longest = max(longest, n.Range)
		}
		return nil
	})
	return longest
}

func windowSeconds(d time.Duration) *int64 {
	if d <= 0 {
		return nil
	}
	s := int64(d / time.Second)
	return &s
}

// metricQuantity keeps milli precision (a rate of 0.25/s is "250m") while it fits.
func metricQuantity(v float64) resource.Quantity {
	if math.Abs(v) < 9e15 {
		return *resource.NewMilliQuantity(int64(math.Round(v*1000)), resource.DecimalSI)
	}
	return *resource.NewQuantity(int64(math.Max(math.Min(v, math.MaxInt64), math.MinInt64)), resource.DecimalSI)
}

// selectorMatchers turns a metricLabelSelector into PromQL matchers on the
// series' labels. Set-based requirements become anchored regexps.
func selectorMatchers(sel k8slabels.Selector) ([]*labels.Matcher, error) {
	if sel == nil {
		return nil, nil
	}
	reqs, selectable := sel.Requirements()
	if !selectable {
		return nil, nil
	}
	out := make([]*labels.Matcher, 0, len(reqs))
	for _, r := range reqs {
		// A Kubernetes label key ("queue-name", "app.kubernetes.io/name")
		// is not always a series label name; the rules' templates would
		// render it into a query (by (queue-name)) that cannot parse.
		if !model.LegacyValidation.IsValidLabelName(r.Key()) {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("metricLabelSelector: %q is not a series label name (letters, digits and _ only; series labels are the application's, e.g. queue_name)", r.Key()))
		}
		values := r.Values().UnsortedList()
		var m *labels.Matcher
		var err error
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals:
			m, err = labels.NewMatcher(labels.MatchEqual, r.Key(), values[0])
		case selection.NotEquals:
			m, err = labels.NewMatcher(labels.MatchNotEqual, r.Key(), values[0])
		case selection.In:
			m, err = labels.NewMatcher(labels.MatchRegexp, r.Key(), alternatives(values))
		case selection.NotIn:
			m, err = labels.NewMatcher(labels.MatchNotRegexp, r.Key(), alternatives(values))
		case selection.Exists:
			m, err = labels.NewMatcher(labels.MatchNotEqual, r.Key(), "")
		case selection.DoesNotExist:
			m, err = labels.NewMatcher(labels.MatchEqual, r.Key(), "")
		default:
			return nil, apierrors.NewBadRequest(fmt.Sprintf("metricLabelSelector: operator %q is not supported on series labels", r.Operator()))
		}
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("metricLabelSelector: %v", err))
		}
		out = append(out, m)
	}
	return out, nil
}

func alternatives(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = regexp.QuoteMeta(v)
	}
	return strings.Join(quoted, "|")
}

// queryError maps an engine error to the status that says whose problem it
// is: a query the request's names or selectors made invalid, or one too
// large, is the caller's (4xx); a timeout or cancellation is 503/504. An
// engine error is never a 500.
func queryError(q string, err error) error {
	msg := fmt.Sprintf("query %q: %v", q, err)
	var (
		parseErrs   parser.ParseErrors
		parseErr    *parser.ParseErr
		timeout     promql.ErrQueryTimeout
		canceled    promql.ErrQueryCanceled
		tooMany     promql.ErrTooManySamples
		storageFail promql.ErrStorage
	)
	switch {
	case errors.As(err, &parseErrs), errors.As(err, &parseErr):
		return apierrors.NewBadRequest(msg)
	case errors.As(err, &tooMany):
		return apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "get", schema.GroupResource{}, "", msg+" (--custom-metrics.max-samples): select fewer objects or a shorter range", 0, false)
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		return apierrors.NewTimeoutError(msg, 0)
	case errors.As(err, &canceled), errors.Is(err, context.Canceled), errors.As(err, &storageFail):
		return apierrors.NewServiceUnavailable(msg)
	default:
		return apierrors.NewBadRequest(msg)
	}
}
