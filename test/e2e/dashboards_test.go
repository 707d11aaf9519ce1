//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// grafanaTemplating is a dashboard's variables.
type grafanaTemplating struct {
	List []struct {
		Name  string `json:"name"`
		Type  string `json:"type"`
		Query any    `json:"query"` // a string, or {"query": …}
	} `json:"list"`
}

type dashboard struct {
	UID        string            `json:"uid"`
	Title      string            `json:"title"`
	Templating grafanaTemplating `json:"templating"`
	Panels     []struct {
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestDashboardsRender: every panel query of the shipped dashboards
// (deploy/grafana/dashboards), with its variables set as Grafana would set
// them, answers with data from kmetrics alone — kubelet series, the shipped
// recording rules and the cluster-state series.
func TestDashboardsRender(t *testing.T) {
	t.Parallel()
	const ns = "e2e-dash"
	deployment(t, ns, "shop", 2, "300m", "96Mi", "100m")
	var pod string
	eventually(t, 2*time.Minute, "the recording rules cover the new pods", func() error {
		byPod, err := queryByPod(t, `sum by (pod) (node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m{namespace="`+ns+`"})`)
		if err == nil && len(byPod) != 2 {
			err = fmt.Errorf("%d pods recorded", len(byPod))
		}
		for p := range byPod {
			pod = p
		}
		return err
	})
	dashboardsAnswer(t, strings.NewReplacer("$cluster", ".*", "$namespace", ns, "$pod", pod, "$node", "kwok-node-1", "$__rate_interval", "1m", "$__interval", "15s"))
}

// dashboardsAnswer checks that every query of the shipped dashboards, its
// variables set by vars, answers with data from the suite's kmetrics.
func dashboardsAnswer(t *testing.T, vars *strings.Replacer) {
	t.Helper()
	for _, q := range shippedDashboardQueries(t) {
		expr := vars.Replace(q.expr)
		t.Run(q.dashboard+"/"+expr, func(t *testing.T) {
			eventually(t, time.Minute, "data for "+expr, func() error {
				admin := adminCert(t)
				code, body := direct(t, "/prometheus/api/v1/query?"+url.Values{"query": {expr}}.Encode(), "", &admin)
				if code != 200 {
					return fmt.Errorf("%d %.300s", code, body)
				}
				if strings.Contains(body, `"result":[]`) {
					return fmt.Errorf("no data")
				}
				return nil
			})
		})
	}
}

type dashboardQuery struct{ dashboard, expr string }

// shippedDashboardQueries are the queries of every shipped dashboard: its
// variables' series and every panel's, variables not substituted. It checks
// what every dashboard must have (a unique uid, the ${datasource} variable).
func shippedDashboardQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "deploy", "grafana", "dashboards", "*.json"))
	if len(files) < 5 {
		t.Fatalf("%d dashboards shipped, want cluster, node, namespace, pod and kmetrics", len(files))
	}
	var out []dashboardQuery
	uids := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || uids[d.UID] {
			t.Errorf("%s: uid %q missing or not unique", f, d.UID)
		}
		uids[d.UID] = true
		hasCluster := false
		for _, v := range d.Templating.List {
			if q, ok := v.Query.(map[string]any); ok && v.Type == "query" {
				// label_values(<selector>, <label>) is Grafana's series call.
				out = append(out, dashboardQuery{d.Title, labelValuesSelector(fmt.Sprint(q["query"]))})
			}
			hasCluster = hasCluster || v.Name == "cluster"
		}
		if !hasCluster {
			t.Errorf("%s: no cluster variable (a remote-write engine holds many clusters)", d.Title)
		}
		for _, p := range d.Panels {
			if p.Datasource.UID != "${datasource}" {
				t.Errorf("%s / %s: data source %q, want the ${datasource} variable", d.Title, p.Title, p.Datasource.UID)
			}
			for _, target := range p.Targets {
				out = append(out, dashboardQuery{d.Title, target.Expr})
			}
		}
	}
	return out
}

// labelValuesSelector turns label_values(sel, label) into sel.
func labelValuesSelector(q string) string {
	q = strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")")
	if i := strings.LastIndex(q, ","); i >= 0 {
		q = q[:i]
	}
	return strings.TrimSpace(q)
}
