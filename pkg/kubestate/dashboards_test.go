package kubestate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

// dashboardsDir holds the community's Kubernetes dashboards (dotdc's
// k8s-views-*, Apache-2.0), kept outside the repository with their licence;
// make test points KMETRICS_FIXTURES at them.
func dashboardsDir(t *testing.T) string {
	dir := os.Getenv("KMETRICS_FIXTURES")
	if dir == "" {
		t.Skip("KMETRICS_FIXTURES not set (make test sets it to ../shared/fixtures)")
	}
	return filepath.Join(dir, "community-dashboards")
}

// grafanaVariables substitutes what Grafana would for a single cluster (no
// cluster label: $cluster is empty), one namespace, pod and node, and "All"
// (.*) for the owner filter.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h", "${__range}", "1h",
	"$resolution", "30s", "$cluster", "", "$namespace", "shop", "$pod", "web-1", "$node", "n1",
	"$job", "kube-state-metrics", "$created_by", ".*", "$instance", "10.0.0.1:9100",
)

// bracedVariable is Grafana's ${name} form of $name.
var bracedVariable = regexp.MustCompile(`\$\{(\w+)\}`)

func substitute(q string) string {
	return grafanaVariables.Replace(bracedVariable.ReplaceAllString(q, "$$$1"))
}

var labelValuesQuery = regexp.MustCompile(`^label_values\((.*),\s*(\w+)\)$`)

// dashboardQueries returns every panel query and query variable of a
// dashboard, variables substituted, as PromQL.
func dashboardQueries(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, target := range p.Targets {
				if target.Expr != "" {
					out = append(out, substitute(target.Expr))
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if json.Unmarshal(v.Query, &q) != nil {
			var obj struct{ Query string }
			_ = json.Unmarshal(v.Query, &obj)
			q = obj.Query
		}
		if m := labelValuesQuery.FindStringSubmatch(q); m != nil {
			q = m[1]
		}
		out = append(out, substitute(q))
	}
	return out
}

// notWrittenByKubeStateMetrics are names the dashboards select that
// kube-state-metrics itself no longer writes; kmetrics writes what it does.
var notWrittenByKubeStateMetrics = map[string]string{
	"kube_hpa_labels": "renamed kube_horizontalpodautoscaler_labels in kube-state-metrics v2.0.0",
}

type panel struct {
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// Every kube-state-metrics selector of the four dashboards names a family
// kmetrics writes, on labels that family has: what kmetrics writes is
// enough for each such query to select data (the e2e run checks they do).
func TestDashboardSelectorsAreWritten(t *testing.T) {
	dir := dashboardsDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "k8s-views-*.json"))
	if len(files) != 4 {
		t.Fatalf("%d dashboards in %s, want the four k8s-views", len(files), dir)
	}
	written := NewRenderer(Config{}, everyResource()).Families()
	selectors := 0
	for _, f := range files {
		for _, q := range dashboardQueries(t, f) {
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
			if err != nil {
				t.Errorf("%s: %q does not parse: %v", filepath.Base(f), q, err)
				continue
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok || !strings.HasPrefix(vs.Name, "kube_") {
					return nil
				}
				selectors++
				if reason, ok := notWrittenByKubeStateMetrics[vs.Name]; ok {
					t.Logf("%s: %s stays empty, as with kube-state-metrics: %s", filepath.Base(f), vs.Name, reason)
					return nil
				}
				if !slices.Contains(written, vs.Name) {
					t.Errorf("%s: %s is not written (query %q)", filepath.Base(f), vs.Name, q)
					return nil
				}
				for _, m := range vs.LabelMatchers {
					switch m.Name {
					case "__name__", "job", "instance", "cluster":
						continue
					}
					// A matcher on a label the family lacks selects only
					// if it accepts the empty value (Grafana's "All" is .*).
					if !documentedLabel(documented[vs.Name], m.Name) && !m.Matches("") {
						t.Errorf("%s: %s has no label %q (query %q)", filepath.Base(f), vs.Name, m.Name, q)
					}
				}
				return nil
			})
		}
	}
	t.Logf("%d kube-state-metrics selectors checked", selectors)
}
