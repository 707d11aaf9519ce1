package naming

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"text/template"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Rules are a compiled configuration.
type Rules struct {
	Custom, External []*Namer
}

// Compile checks and compiles every rule; the first invalid one is an error
// naming it.
func Compile(c *Config, mapper meta.RESTMapper) (*Rules, error) {
	var r Rules
	for i, rule := range c.Rules {
		n, err := newNamer(rule, mapper)
		if err != nil {
			return nil, fmt.Errorf("rules[%d]: %w", i, err)
		}
		r.Custom = append(r.Custom, n)
	}
	for i, rule := range c.ExternalRules {
		n, err := newNamer(rule, mapper)
		if err != nil {
			return nil, fmt.Errorf("externalRules[%d]: %w", i, err)
		}
		r.External = append(r.External, n)
	}
	return &r, nil
}

// Namer is one compiled rule.
type Namer struct {
	matchers   []*labels.Matcher
	filters    []filter
	name       *regexp.Regexp
	as         string
	query      *template.Template
	resources  *resourceConverter
	namespaced bool
}

type filter struct {
	re   *regexp.Regexp
	keep bool // keep names that match (is), or that do not (isNot)
}

func newNamer(r Rule, mapper meta.RESTMapper) (*Namer, error) {
	n := &Namer{namespaced: r.Resources.Namespaced == nil || *r.Resources.Namespaced}
	var err error
	if n.matchers, err = parser.NewParser(parser.Options{}).ParseMetricSelector(r.SeriesQuery); err != nil {
		return nil, fmt.Errorf("seriesQuery %q: %w", r.SeriesQuery, err)
	}
	for _, f := range r.SeriesFilters {
		for _, c := range []struct {
			expr string
			keep bool
		}{{f.Is, true}, {f.IsNot, false}} {
			if c.expr == "" {
				continue
			}
			re, err := regexp.Compile(c.expr)
			if err != nil {
				return nil, fmt.Errorf("seriesFilters %q: %w", c.expr, err)
			}
			n.filters = append(n.filters, filter{re: re, keep: c.keep})
		}
	}
	matches := r.Name.Matches
	if matches == "" {
		matches = ".*"
	}
	if n.name, err = regexp.Compile(matches); err != nil {
		return nil, fmt.Errorf("name.matches %q: %w", matches, err)
	}
	n.as = r.Name.As
	if n.as == "" {
		switch n.name.NumSubexp() {
		case 0:
			n.as = "$0"
		case 1:
			n.as = "$1"
		default:
			return nil, fmt.Errorf("name.matches %q has several capture groups: name.as is required", matches)
		}
	}
	if n.query, err = template.New("metricsQuery").Delims("<<", ">>").Parse(r.MetricsQuery); err != nil {
		return nil, fmt.Errorf("metricsQuery: %w", err)
	}
	if n.resources, err = newResourceConverter(r.Resources, mapper); err != nil {
		return nil, err
	}
	// A template that cannot render valid PromQL is refused now, with the
	// config, rather than at the first HPA request.
	q, err := n.Query("series_name", []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "namespace", "default")}, []string{"pod"})
	if err != nil {
		return nil, err
	}
	if _, err := parser.NewParser(parser.Options{}).ParseExpr(q); err != nil {
		return nil, fmt.Errorf("metricsQuery renders invalid PromQL %q: %w", q, err)
	}
	return n, nil
}

// Matchers select the rule's series (its seriesQuery).
func (n *Namer) Matchers() []*labels.Matcher { return n.matchers }

// Namespaced says whether an external metric is scoped to the request's
// namespace.
func (n *Namer) Namespaced() bool { return n.namespaced }

// MetricName is the metric a series name is served as; false when the
// series filters or the name pattern reject it.
func (n *Namer) MetricName(series string) (string, bool) {
	for _, f := range n.filters {
		if f.re.MatchString(series) != f.keep {
			return "", false
		}
	}
	m := n.name.FindStringSubmatchIndex(series)
	if m == nil {
		return "", false
	}
	return string(n.name.ExpandString(nil, n.as, series, m)), true
}

// ResourceFor is the resource a series label names, if any.
func (n *Namer) ResourceFor(label string) (schema.GroupResource, bool) {
	return n.resources.resourceFor(label)
}

// LabelFor is the series label naming objects of resource gr.
func (n *Namer) LabelFor(gr schema.GroupResource) (string, error) {
	return n.resources.labelFor(gr)
}

// QueryArgs fill a metricsQuery template, as prometheus-adapter names them.
type QueryArgs struct {
	Series            string
	LabelMatchers     string
	LabelValuesByName map[string][]string
	GroupBy           string
	GroupBySlice      []string
}

// Query renders the rule's metricsQuery for series, restricted by matchers
// and grouped by groupBy.
func (n *Namer) Query(series string, matchers []*labels.Matcher, groupBy []string) (string, error) {
	args := QueryArgs{Series: series, GroupBy: strings.Join(groupBy, ","), GroupBySlice: groupBy, LabelValuesByName: map[string][]string{}}
	exprs := make([]string, len(matchers))
	for i, m := range matchers {
		exprs[i] = m.String()
		if m.Type == labels.MatchEqual {
			args.LabelValuesByName[m.Name] = append(args.LabelValuesByName[m.Name], m.Value)
		}
	}
	args.LabelMatchers = strings.Join(exprs, ",")
	var b bytes.Buffer
	if err := n.query.Execute(&b, args); err != nil {
		return "", fmt.Errorf("rendering metricsQuery: %w", err)
	}
	return b.String(), nil
}
