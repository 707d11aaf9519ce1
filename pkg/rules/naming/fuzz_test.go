package naming

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// FuzzConfig: any config file is either refused with an error or compiles
// into rules that name series and render queries without panicking.
func FuzzConfig(f *testing.F) {
	f.Add(string(DefaultConfig))
	f.Add("rules:\n- seriesQuery: '{a=\"b\"}'\n  resources: {template: \"kube_<<.Group>>_<<.Resource>>\"}\n  name: {matches: \"^(.*)_total$\", as: \"${1}_per_second\"}\n  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'\n")
	f.Add("externalRules:\n- seriesQuery: 'x{y!=\"\"}'\n  seriesFilters: [{is: 'a'}, {isNot: 'b'}]\n  metricsQuery: 'max(<<.Series>>{<<.LabelMatchers>>}) <<range .GroupBySlice>><<.>><<end>>'\n")
	m := mapper()
	f.Fuzz(func(t *testing.T, config string) {
		c, err := Parse([]byte(config))
		if err != nil {
			return
		}
		r, err := Compile(c, m)
		if err != nil {
			return
		}
		for _, n := range append(r.Custom, r.External...) {
			n.MetricName("http_requests_total")
			n.ResourceFor("pod")
			if label, err := n.LabelFor(schema.GroupResource{Resource: "pods"}); err == nil {
				_, _ = n.Query("http_requests_total", []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "namespace", "x")}, []string{label})
			}
		}
	})
}
