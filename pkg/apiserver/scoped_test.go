package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kmetrics/kmetrics/pkg/storage"
	"github.com/kmetrics/kmetrics/pkg/tenancy"
)

// fakeScopes stands in for the SubjectAccessReview decisions (decided by
// the real API server in the end-to-end suite).
type fakeScopes map[string]tenancy.Scope

func (f fakeScopes) Scope(_ context.Context, u user.Info) (tenancy.Scope, error) {
	if u.GetName() == "broken" {
		return tenancy.Scope{}, errors.New("the API server is unreachable")
	}
	return f[u.GetName()], nil
}

var testScopes = fakeScopes{
	"admin":  {All: true},
	"team-a": {Namespaces: []string{"shop", "team-a"}},
	"nodes":  {Cluster: true, Namespaces: []string{"team-a"}},
	"nobody": {},
}

// scopedQueryServer serves the query API with scopes over a TSDB holding
// series of namespaces shop, team-a and victim and of a node (no
// namespace). The caller is named by a header here; the server's
// authentication filter sets it in production.
func scopedQueryServer(t *testing.T) *httptest.Server {
	t.Helper()
	db, err := storage.Open(storage.Options{Path: t.TempDir(), MaxExemplars: 100}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	now := time.Now()
	app := db.Appender(context.Background())
	// Each namespace's counter carries an exemplar whose trace_id names it.
	for _, ns := range []string{"shop", "team-a", "victim"} {
		l := labels.FromStrings("__name__", "app_requests_total", "namespace", ns, "pod", "exemplar-"+ns)
		ref, err := app.Append(0, l, now.UnixMilli(), 1)
		if err == nil {
			_, err = app.AppendExemplar(ref, l, exemplar.Exemplar{Labels: labels.FromStrings("trace_id", "trace-of-"+ns), Value: 1, Ts: now.UnixMilli(), HasTs: true})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []labels.Labels{
		labels.FromStrings("__name__", "app_requests_total", "namespace", "shop", "pod", "web"),
		labels.FromStrings("__name__", "app_requests_total", "namespace", "team-a", "pod", "api"),
		labels.FromStrings("__name__", "app_requests_total", "namespace", "victim", "pod", "secret-pod"),
		labels.FromStrings("__name__", "victim_only_metric", "namespace", "victim", "pod", "secret-pod"),
		labels.FromStrings("__name__", "node_memory_working_set_bytes", "node", "node-1"),
	} {
		for ts := now.Add(-5 * time.Minute); !ts.After(now); ts = ts.Add(15 * time.Second) {
			if _, err := app.Append(0, l, ts.UnixMilli(), 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	meta := storage.NewMetadata()
	meta.Apply([]storage.MetadataUpdate{
		{Kind: storage.MetadataType, Family: "app_requests", Value: string(model.MetricTypeCounter)},
		{Kind: storage.MetadataType, Family: "victim_only_metric", Value: string(model.MetricTypeGauge)},
	}, true)
	groups := testRuleGroups(t)
	o := QueryOptions{Timeout: 10 * time.Second, MaxSamples: 50000, MaxConcurrency: 4, LookbackDelta: 5 * time.Minute, Version: "test",
		Metadata: meta, Scopes: testScopes, Rules: groups,
		RuleNamespace: func(file string) (string, bool) {
			ns, ok := strings.CutPrefix(file, "/rules/")
			return ns, ok
		}}
	api := NewQueryAPI(db.TSDB(), o, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name := r.Header.Get("X-Test-User"); name != "" {
			r = r.WithContext(request.WithUser(r.Context(), &user.DefaultInfo{Name: name}))
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type fixedRules []*rules.Group

func (f fixedRules) RuleGroups() []*rules.Group { return f }
func (f fixedRules) AlertingRules() []*rules.AlertingRule {
	var out []*rules.AlertingRule
	for _, g := range f {
		for _, r := range g.Rules() {
			if a, ok := r.(*rules.AlertingRule); ok {
				out = append(out, a)
			}
		}
	}
	return out
}

// testRuleGroups: one group of a PrometheusRule in shop, one in victim,
// one of the platform's --rules.file.
func testRuleGroups(t *testing.T) fixedRules {
	var out fixedRules
	for _, g := range []struct{ file, name string }{{"/rules/shop", "shop-rules"}, {"/rules/victim", "victim-rules"}, {"/etc/kmetrics/mixin.yaml", "platform-rules"}} {
		expr, err := parser.NewParser(parser.Options{}).ParseExpr("vector(1)")
		if err != nil {
			t.Fatal(err)
		}
		r := rules.NewAlertingRule(g.name+"-alert", expr, 0, 0, labels.EmptyLabels(), labels.EmptyLabels(), labels.EmptyLabels(), "", true, nil)
		// One evaluation makes the alert active (for: 0).
		one := func(context.Context, string, time.Time) (promql.Vector, error) {
			return promql.Vector{{F: 1, T: time.Now().UnixMilli(), Metric: labels.EmptyLabels()}}, nil
		}
		if _, err := r.Eval(context.Background(), 0, time.Now(), one, nil, 0); err != nil {
			t.Fatal(err)
		}
		out = append(out, rules.NewGroup(rules.GroupOptions{Name: g.name, File: g.file, Rules: []rules.Rule{r}, Opts: &rules.ManagerOptions{}}))
	}
	return out
}

type scopedCall struct {
	code int
	body string
}

func callAs(t *testing.T, srv *httptest.Server, who, method, path string, form url.Values) scopedCall {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, srv.URL+QueryPrefix+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if who != "" {
		req.Header.Set("X-Test-User", who)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return scopedCall{resp.StatusCode, string(b)}
}

func TestScopedQueryAPI(t *testing.T) {
	srv := scopedQueryServer(t)
	q := url.QueryEscape
	tests := []struct {
		name, who, method, path string
		form                    url.Values
		code                    int
		has, lacks              []string
	}{
		{name: "a cluster-wide reader reads everything", who: "admin", method: "GET", path: "/query?query=" + q(`count by (namespace) ({__name__=~".+"})`),
			code: 200, has: []string{`"victim"`, `"shop"`, `"team-a"`}},
		{name: "every series of a team", who: "team-a", method: "GET", path: "/query?query=" + q(`{__name__=~".+"}`),
			code: 200, has: []string{`"shop"`, `"team-a"`}, lacks: []string{"victim", "node-1"}},
		{name: "count by namespace, by form POST", who: "team-a", method: "POST", path: "/query", form: url.Values{"query": {`count by (namespace) ({__name__=~".+"})`}},
			code: 200, has: []string{`"shop"`}, lacks: []string{"victim"}},
		{name: "absent as an oracle", who: "team-a", method: "GET", path: "/query?query=" + q(`absent(victim_only_metric{namespace="victim"})`),
			code: 200, has: []string{`"value":[`}},
		{name: "label_replace forging a namespace", who: "team-a", method: "GET", path: "/query?query=" + q(`label_replace(app_requests_total{namespace="victim"}, "namespace", "shop", "", "")`),
			code: 200, has: []string{`"result":[]`}},
		{name: "subquery and @ 0", who: "team-a", method: "GET", path: "/query?query=" + q(`max_over_time(app_requests_total{namespace=~"vic.*"}[10m:15s] @ end()) or app_requests_total offset 1m`),
			code: 200, lacks: []string{"victim"}},
		{name: "parameter in the URL and the body", who: "team-a", method: "POST", path: "/query?query=" + q(`victim_only_metric`), form: url.Values{"query": {`app_requests_total{namespace="victim"}`}},
			code: 200, lacks: []string{"victim"}},
		{name: "a POST with the query in the URL and an empty body", who: "team-a", method: "POST", path: "/query?query=" + q(`victim_only_metric`), form: url.Values{},
			code: 200, has: []string{`"result":[]`}},
		{name: "query_range", who: "team-a", method: "GET", path: "/query_range?step=15&start=" + q(time.Now().Add(-5*time.Minute).Format(time.RFC3339)) + "&end=" + q(time.Now().Format(time.RFC3339)) + "&query=" + q(`sum by (namespace) (app_requests_total)`),
			code: 200, has: []string{"shop"}, lacks: []string{"victim"}},
		// info() is experimental in Prometheus 3.15 and kmetrics does not
		// enable experimental functions: a clear 400, nothing read.
		{name: "info() joining the victim's series", who: "team-a", method: "GET", path: "/query?query=" + q(`info(app_requests_total{namespace="shop"}, {__name__="victim_only_metric"})`),
			code: 400, lacks: []string{"secret-pod"}},
		{name: "series without match[] is refused as in Prometheus", who: "team-a", method: "GET", path: "/series", code: 400},
		{name: "series", who: "team-a", method: "GET", path: "/series?match[]=" + q(`{__name__=~".+"}`), code: 200, has: []string{"shop"}, lacks: []string{"victim", "node-1"}},
		{name: "namespace values", who: "team-a", method: "GET", path: "/label/namespace/values", code: 200, has: []string{`"shop"`, `"team-a"`}, lacks: []string{"victim"}},
		{name: "metric names", who: "team-a", method: "GET", path: "/label/__name__/values", code: 200, has: []string{"app_requests_total"}, lacks: []string{"victim_only_metric", "node_memory"}},
		{name: "label names with match[]", who: "team-a", method: "GET", path: "/labels?match[]=victim_only_metric", code: 200, has: []string{`"data":[]`}},
		{name: "exemplars", who: "team-a", method: "GET", path: "/query_exemplars?query=" + q(`app_requests_total`), code: 200, has: []string{"trace-of-shop", "trace-of-team-a"}, lacks: []string{"victim"}},
		{name: "exemplars naming the victim", who: "team-a", method: "POST", path: "/query_exemplars", form: url.Values{"query": {`app_requests_total{namespace=~"vic.*"} or victim_only_metric`}}, code: 200, has: []string{`"data":[]`}},
		{name: "the admin's exemplars", who: "admin", method: "GET", path: "/query_exemplars?query=" + q(`app_requests_total`), code: 200, has: []string{"trace-of-shop", "trace-of-victim"}},
		{name: "metadata lists the scope's families", who: "team-a", method: "GET", path: "/metadata", code: 200, has: []string{"app_requests"}, lacks: []string{"victim_only_metric"}},
		{name: "rules of the scope's PrometheusRules", who: "team-a", method: "GET", path: "/rules", code: 200, has: []string{"shop-rules"}, lacks: []string{"victim-rules", "platform-rules"}},
		{name: "alerts of the scope's PrometheusRules", who: "team-a", method: "GET", path: "/alerts", code: 200, has: []string{"shop-rules-alert"}, lacks: []string{"victim-rules", "platform-rules"}},
		{name: "targets refused", who: "team-a", method: "GET", path: "/targets", code: 403, has: []string{"cluster-wide readers"}},
		{name: "alertmanagers refused", who: "team-a", method: "GET", path: "/alertmanagers", code: 403},
		{name: "the admin's rules", who: "admin", method: "GET", path: "/rules", code: 200, has: []string{"shop-rules", "victim-rules", "platform-rules"}},
		{name: "node series for a node reader", who: "nodes", method: "GET", path: "/query?query=" + q(`{__name__=~".+"}`), code: 200, has: []string{"node-1", "team-a"}, lacks: []string{"victim", `"shop"`}},
		{name: "no namespace: 403", who: "nobody", method: "GET", path: "/query?query=1", code: 403, has: []string{`"errorType":"forbidden"`}},
		{name: "no user: 403", who: "", method: "GET", path: "/query?query=1", code: 403},
		{name: "anonymous: 403", who: user.Anonymous, method: "GET", path: "/query?query=1", code: 403},
		{name: "undecidable: 503, not everything", who: "broken", method: "GET", path: "/query?query=1", code: 503, has: []string{"retry"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := callAs(t, srv, tc.who, tc.method, tc.path, tc.form)
			if got.code != tc.code {
				t.Fatalf("status %d, want %d: %.300s", got.code, tc.code, got.body)
			}
			for _, s := range tc.has {
				if !strings.Contains(got.body, s) {
					t.Errorf("answer lacks %s: %.500s", s, got.body)
				}
			}
			for _, s := range tc.lacks {
				if strings.Contains(got.body, s) {
					t.Errorf("answer has %s: %.500s", s, got.body)
				}
			}
		})
	}
}

// Two callers sending the same query never share an answer.
func TestScopedAnswersNotShared(t *testing.T) {
	srv := scopedQueryServer(t)
	path := "/query?query=" + url.QueryEscape(`count by (namespace) (app_requests_total)`)
	count := func(who string) int {
		var r struct {
			Data struct{ Result []json.RawMessage } `json:"data"`
		}
		if err := json.Unmarshal([]byte(callAs(t, srv, who, "GET", path, nil).body), &r); err != nil {
			t.Fatal(err)
		}
		return len(r.Data.Result)
	}
	for range 3 {
		if a, b, c := count("admin"), count("team-a"), count("nodes"); a != 3 || b != 2 || c != 1 {
			t.Fatalf("namespaces seen: admin %d, team-a %d, nodes %d; want 3, 2, 1", a, b, c)
		}
	}
}

func TestScopedAuthorizer(t *testing.T) {
	deny := authorizer.AuthorizerFunc(func(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
		return authorizer.DecisionNoOpinion, "", nil
	})
	a, err := withScopedQueries(deny, testScopes)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		attrs authorizer.AttributesRecord
		want  authorizer.Decision
		err   bool
	}{
		{"a team's query", authorizer.AttributesRecord{User: &user.DefaultInfo{Name: "team-a"}, Verb: "post", Path: QueryPrefix + "/query"}, authorizer.DecisionAllow, false},
		{"no namespace", authorizer.AttributesRecord{User: &user.DefaultInfo{Name: "nobody"}, Verb: "get", Path: QueryPrefix + "/query"}, authorizer.DecisionNoOpinion, false},
		{"anonymous", authorizer.AttributesRecord{User: &user.DefaultInfo{Name: "team-a", Groups: []string{user.AllUnauthenticated}}, Verb: "get", Path: QueryPrefix + "/query"}, authorizer.DecisionNoOpinion, false},
		{"another path", authorizer.AttributesRecord{User: &user.DefaultInfo{Name: "team-a"}, Verb: "get", Path: "/apis"}, authorizer.DecisionNoOpinion, false},
		{"a prefix look-alike", authorizer.AttributesRecord{User: &user.DefaultInfo{Name: "team-a"}, Verb: "get", Path: QueryPrefix + "x/query"}, authorizer.DecisionNoOpinion, false},
		{"a resource", authorizer.AttributesRecord{User: &user.DefaultInfo{Name: "team-a"}, Verb: "get", Resource: "pods", ResourceRequest: true, Path: QueryPrefix + "/query"}, authorizer.DecisionNoOpinion, false},
		{"a write verb", authorizer.AttributesRecord{User: &user.DefaultInfo{Name: "team-a"}, Verb: "delete", Path: QueryPrefix + "/query"}, authorizer.DecisionNoOpinion, false},
		{"undecidable", authorizer.AttributesRecord{User: &user.DefaultInfo{Name: "broken"}, Verb: "get", Path: QueryPrefix + "/query"}, authorizer.DecisionNoOpinion, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, _, err := a.Authorize(context.Background(), tc.attrs)
			if d != tc.want || (err != nil) != tc.err {
				t.Fatalf("decision %v, err %v; want %v, error %v", d, err, tc.want, tc.err)
			}
		})
	}
}
