//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Namespaces of the tenancy test: team A reads a1 and a2, team B reads b,
// nobody reads victim but the cluster reader.
const (
	tenA1, tenA2, tenB, tenVictim = "e2e-ten-a1", "e2e-ten-a2", "e2e-ten-b", "e2e-ten-victim"
)

// queryCaller calls the query API (below /prometheus/api/v1) with a token.
type queryCaller func(t *testing.T, method, path string, form url.Values) (int, string)

func callerWithToken(token string) queryCaller {
	return func(t *testing.T, method, path string, form url.Values) (int, string) {
		return directRequest(t, method, "/prometheus/api/v1"+path, form, token, nil)
	}
}

// TestNamespaceScopes: three users on the real control plane — team A with
// view on two namespaces, team B with view on one, a cluster reader — each
// see exactly their namespaces' series on every endpoint, by GET and form
// POST; a hostile team member's queries show nothing of the victim's; a
// ServiceMonitor with honorLabels cannot label series with another
// namespace; a PrometheusRule cannot copy another namespace's series into
// its own; a revoked RoleBinding takes effect; Grafana's client with a
// team's token sees the team's namespaces, and so does a person signed in
// through the cluster's identity provider, whose token Grafana forwards.
// Tokens the provider did not issue to kmetrics' audience are refused.
func TestNamespaceScopes(t *testing.T) {
	t.Parallel()
	for _, crd := range []string{"servicemonitors", "prometheusrules"} {
		mustKubectl(t, "apply", "--server-side", "-f", filepath.Join("..", "..", "deploy", "crds", "monitoring.coreos.com_"+crd+".yaml"))
	}
	mustKubectl(t, "wait", "--for=condition=Established", "--timeout=60s", "crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com")
	for _, ns := range []string{tenA1, tenA2, tenB, tenVictim} {
		deployment(t, ns, "app", 1, "100m", "32Mi", "50m")
	}
	t.Cleanup(func() { _, _ = kubectl("delete", "namespace", tenA1, tenA2, tenB, tenVictim, "--wait=false") })

	// The victim's own application, and team A's application exposing a
	// namespace of its choice, honoured by its monitor (honorLabels).
	hostIP := nonLoopbackIPv4(t)
	// OpenMetrics, so the victim's counter carries an exemplar (a trace ID
	// no other caller may learn).
	victimApp := listenOn(t, hostIP, nil, openMetricsHandler("# TYPE victim_secret counter\nvictim_secret_total 42 # {trace_id=\"victim-trace\"} 1.0\n# EOF\n"))
	spoofApp := listenOn(t, hostIP, nil, textHandler("tenancy_spoof{namespace=\""+tenVictim+"\"} 7\n"))
	kubectlApply(t, monitoredService(tenVictim, "secret", hostIP, victimApp, false)+"---\n"+monitoredService(tenA1, "spoof", hostIP, spoofApp, true)+
		"---\n"+tenancyRules())

	teamA := serviceAccountToken(t, tenA1, "team-a")
	for _, ns := range []string{tenA1, tenA2} {
		mustKubectl(t, "-n", ns, "create", "rolebinding", "team-a-view", "--clusterrole=view", "--serviceaccount="+tenA1+":team-a")
	}
	teamB := serviceAccountToken(t, tenB, "team-b")
	mustKubectl(t, "-n", tenB, "create", "rolebinding", "team-b-view", "--clusterrole=view", "--serviceaccount="+tenB+":team-b")
	reader := serviceAccountToken(t, "default", "e2e-ten-reader")
	nobody := serviceAccountToken(t, "default", "e2e-ten-nobody")
	mustKubectl(t, "create", "clusterrolebinding", "e2e-ten-reader", "--clusterrole=kmetrics:query-reader", "--serviceaccount=default:e2e-ten-reader")
	t.Cleanup(func() { _, _ = kubectl("delete", "clusterrolebinding", "e2e-ten-reader") })
	// A person of team C, signed in through the company's identity provider
	// (OIDC): the API server maps the token's groups to "oidc:<group>", and
	// the platform team binds that group, as for any OIDC cluster.
	teamC, err := oidc.token(idToken{email: "carol@team-c.example", groups: []string{"team-c"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{tenA1, tenB} {
		mustKubectl(t, "-n", ns, "create", "rolebinding", "team-c-view", "--clusterrole=view", "--group=oidc:team-c")
	}

	users := map[string]struct {
		call    queryCaller
		allowed []string // of the test's namespaces
	}{
		"team A":         {callerWithToken(teamA), []string{tenA1, tenA2}},
		"team B":         {callerWithToken(teamB), []string{tenB}},
		"cluster reader": {callerWithToken(reader), []string{tenA1, tenA2, tenB, tenVictim}},
		"team C (OIDC)":  {callerWithToken(teamC), []string{tenA1, tenB}},
	}
	// Everything the test asserts on is stored: each namespace's
	// containers, both monitors' targets, the rules' results.
	eventually(t, 3*time.Minute, "every namespace's series, both targets and the rules' results", func() error {
		code, body := users["cluster reader"].call(t, http.MethodGet, "/query?query="+url.QueryEscape(`count by (namespace) (container_cpu_usage_seconds_total{namespace=~"e2e-ten-.*"})`), nil)
		if got := namespacesIn(body); code != http.StatusOK || !slices.Equal(got, []string{tenA1, tenA2, tenB, tenVictim}) {
			return fmt.Errorf("containers of %d namespaces %v", code, got)
		}
		for _, expr := range []string{`up{job="secret",namespace="` + tenVictim + `"} == 1`, `up{job="spoof",namespace="` + tenA1 + `"} == 1`, `tenancy:own:count`, `tenancy:absent_victim`} {
			if got := instantQuery(readerGet(t, reader), expr); len(got) == 0 {
				return fmt.Errorf("%s: nothing yet", expr)
			}
		}
		// The victim's exemplar, which the checks below expect the reader
		// to see and the teams not to.
		exemplars := url.Values{"query": {"victim_secret_total"}, "start": {fmt.Sprint(time.Now().Add(-5 * time.Minute).Unix())}, "end": {fmt.Sprint(time.Now().Unix())}}
		if code, body := users["cluster reader"].call(t, http.MethodPost, "/query_exemplars", exemplars); code != http.StatusOK || !strings.Contains(body, "victim-trace") {
			return fmt.Errorf("the victim's exemplar: %d %.200s", code, body)
		}
		return nil
	})

	for name, u := range users {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(name+" "+method+" sees exactly its namespaces", func(t *testing.T) {
				call := func(path string, params url.Values) (int, string) {
					// Prometheus takes POST on query, query_range, series
					// and labels only; the others are GET for both.
					if method == http.MethodGet || !slices.Contains([]string{"/query", "/query_range", "/series", "/labels"}, path) {
						return u.call(t, http.MethodGet, path+"?"+params.Encode(), nil)
					}
					return u.call(t, method, path, params)
				}
				everything := url.Values{"query": {`count by (namespace) ({__name__=~".+",namespace=~"e2e-ten-.*"})`}}
				if code, body := call("/query", everything); code != 200 || !slices.Equal(namespacesIn(body), u.allowed) {
					t.Errorf("/query by namespace: %d %v, want %v", code, namespacesIn(body), u.allowed)
				}
				start, end := time.Now().Add(-5*time.Minute), time.Now()
				rangeQ := url.Values{"query": everything["query"], "start": {fmt.Sprint(start.Unix())}, "end": {fmt.Sprint(end.Unix())}, "step": {"30"}}
				if code, body := call("/query_range", rangeQ); code != 200 || !slices.Equal(namespacesIn(body), u.allowed) {
					t.Errorf("/query_range by namespace: %d %v, want %v", code, namespacesIn(body), u.allowed)
				}
				if code, body := call("/series", url.Values{"match[]": {`{__name__=~".+",namespace=~"e2e-ten-.*"}`}, "start": {fmt.Sprint(start.Unix())}}); code != 200 || !slices.Equal(namespacesIn(body), u.allowed) {
					t.Errorf("/series: %d %v, want %v", code, namespacesIn(body), u.allowed)
				}
				if code, body := call("/label/namespace/values", url.Values{}); code != 200 || !slices.Equal(oursOf(labelValues(body)), u.allowed) {
					t.Errorf("/label/namespace/values: %d %v, want %v", code, oursOf(labelValues(body)), u.allowed)
				}
				names := "absent"
				if code, body := call("/label/__name__/values", url.Values{}); code == 200 && slices.Contains(labelValues(body), "victim_secret_total") {
					names = "present"
				}
				if want := map[bool]string{true: "present", false: "absent"}[slices.Contains(u.allowed, tenVictim)]; names != want {
					t.Errorf("victim_secret_total %s in /label/__name__/values, want %s", names, want)
				}
				if code, body := call("/labels", url.Values{"match[]": {"victim_secret_total"}}); code != 200 || strings.Contains(body, "namespace") != slices.Contains(u.allowed, tenVictim) {
					t.Errorf("/labels of the victim's metric: %d %.200s", code, body)
				}
				if code, body := call("/metadata", url.Values{}); code != 200 || strings.Contains(body, "victim_secret") != slices.Contains(u.allowed, tenVictim) {
					t.Errorf("/metadata: %d, victim_secret listed: %v", code, strings.Contains(body, "victim_secret"))
				}
				if code, body := call("/query_exemplars", url.Values{"query": {"victim_secret_total"}, "start": {fmt.Sprint(start.Unix())}, "end": {fmt.Sprint(end.Unix())}}); code != 200 || strings.Contains(body, "victim-trace") != slices.Contains(u.allowed, tenVictim) {
					t.Errorf("/query_exemplars: %d %.200s", code, body)
				}
				code, body := call("/rules", url.Values{})
				if code != 200 || strings.Contains(body, `"name":"tenancy-steal"`) != (name != "team B") {
					t.Errorf("/rules: %d, team A's group listed: %v", code, strings.Contains(body, "tenancy-steal"))
				}
				if name != "cluster reader" {
					for _, file := range ruleFilesIn(body) {
						if ns, _, _ := strings.Cut(filepath.Base(file), "_"); !strings.Contains(file, "kmetrics-prometheusrules") || !slices.Contains(u.allowed, ns) {
							t.Errorf("/rules lists %s to %s", file, name)
						}
					}
				}
				wantTargets := map[bool]int{true: 200, false: 403}[name == "cluster reader"]
				if code, _ := call("/targets", url.Values{}); code != wantTargets {
					t.Errorf("/targets: %d, want %d", code, wantTargets)
				}
			})
		}
	}

	t.Run("a hostile member of team A sees nothing of the victim", func(t *testing.T) {
		call := users["team A"].call
		for _, expr := range []string{
			`{__name__=~".+"}`,
			`count by (namespace) ({__name__=~".+"})`,
			`label_replace(victim_secret_total, "namespace", "` + tenA1 + `", "", "")`,
			`label_join(container_cpu_usage_seconds_total{namespace="` + tenVictim + `"}, "namespace", "", "pod")`,
			`max_over_time(victim_secret_total[10m:15s] @ 0) or victim_secret_total offset 1m or victim_secret_total @ end()`,
			`container_cpu_usage_seconds_total{namespace="` + tenA1 + `"} * on() group_left(namespace) victim_secret_total`,
			`{namespace=~"` + tenA1 + `|` + tenVictim + `"}`,
			`{namespace=~".*victim.*"}`,
			`{__name__=~".+",namespace!="` + tenA1 + `"}`,
			`{__name__=~".+",namespace!~"` + tenA1 + `|` + tenA2 + `"}`,
			`tenancy_spoof{namespace="` + tenVictim + `"}`,
			`tenancy:stolen`,
		} {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				var code int
				var body string
				if method == http.MethodGet {
					code, body = call(t, method, "/query?query="+url.QueryEscape(expr), nil)
				} else {
					code, body = call(t, method, "/query", url.Values{"query": {expr}})
				}
				if code != 200 || slices.Contains(allNamespacesIn(body), tenVictim) || strings.Contains(body, `"42"`) {
					t.Errorf("%s %s: %d %.300s", method, expr, code, body)
				}
			}
		}
		// absent() as an existence oracle: the victim's series do not
		// exist for the team (1); they do for the reader (nothing).
		absent := url.QueryEscape(`absent(victim_secret_total{namespace="` + tenVictim + `"})`)
		if _, body := call(t, http.MethodGet, "/query?query="+absent, nil); len(samplesIn(body)) != 1 {
			t.Errorf("absent(victim's series) for team A: %.200s, want 1 (the series do not exist for it)", body)
		}
		if _, body := users["cluster reader"].call(t, http.MethodGet, "/query?query="+absent, nil); len(samplesIn(body)) != 0 {
			t.Errorf("absent(victim's series) for the reader: %.200s, want nothing", body)
		}
		// The same parameter in the URL and the body; a POST with the
		// query in the URL and an empty body.
		for _, c := range []struct {
			path string
			form url.Values
		}{
			{"/query?query=victim_secret_total", url.Values{"query": {`{namespace="` + tenVictim + `"}`}}},
			{"/query?query=victim_secret_total", url.Values{}},
			{"/series?match[]=victim_secret_total", url.Values{"match[]": {`{namespace="` + tenVictim + `"}`}}},
		} {
			if code, body := call(t, http.MethodPost, c.path, c.form); code != 200 || slices.Contains(allNamespacesIn(body), tenVictim) || slices.Contains(labelValues(body), tenVictim) {
				t.Errorf("POST %s with body %v: %d %.300s", c.path, c.form, code, body)
			}
		}
		// /series without match[] is a bad request, as in Prometheus.
		if code, _ := call(t, http.MethodGet, "/series", nil); code != http.StatusBadRequest {
			t.Errorf("/series without match[]: %d, want 400", code)
		}
	})

	t.Run("a monitor's honorLabels cannot label series with another namespace", func(t *testing.T) {
		got := instantQuery(readerGet(t, reader), `tenancy_spoof`)
		if len(got) != 1 || got[0].labels["namespace"] != tenA1 || got[0].labels["exported_namespace"] != tenVictim {
			t.Errorf("tenancy_spoof: %v, want namespace %s and exported_namespace %s", got, tenA1, tenVictim)
		}
		if code, body := callerWithToken(teamA)(t, http.MethodGet, "/query?query=tenancy_spoof", nil); code != 200 || len(samplesIn(body)) != 1 {
			t.Errorf("team A does not see its own application's series: %d %.200s", code, body)
		}
	})

	t.Run("a PrometheusRule reads and writes only its namespace", func(t *testing.T) {
		get := readerGet(t, reader)
		if got := instantQuery(get, `tenancy:stolen`); len(got) != 0 {
			t.Errorf("team A's rule copied the victim's series: %v", got)
		}
		for _, rec := range []string{"tenancy:own:count", "tenancy:absent_victim"} {
			got := instantQuery(get, rec)
			if len(got) != 1 || got[0].labels["namespace"] != tenA1 {
				t.Errorf("%s: %v, want one series in %s", rec, got, tenA1)
			}
		}
		if got := instantQuery(get, `tenancy:relabelled`); len(got) != 1 || got[0].labels["namespace"] != tenA1 {
			t.Errorf("a rule's namespace label wrote into another namespace: %v", got)
		}
	})

	t.Run("a caller with no namespace gets 403", func(t *testing.T) {
		if code, body := callerWithToken(nobody)(t, http.MethodGet, "/query?query=1", nil); code != http.StatusForbidden {
			t.Errorf("%d %.200s, want 403", code, body)
		}
	})

	t.Run("Grafana's client with a team's token sees the team's namespaces", func(t *testing.T) {
		expr := `sum(up{namespace=~"` + tenA1 + `|` + tenVictim + `",job=~"spoof|secret"})`
		// Grafana aligns a range query's last point down to the step: the
		// value must be there now and 20 s ago.
		eventually(t, 90*time.Second, "team A's value now and 20s ago", func() error {
			for _, e := range []string{expr, strings.Replace(expr, "})", "} offset 20s)", 1)} {
				if code, body := callerWithToken(teamA)(t, http.MethodGet, "/query?query="+url.QueryEscape(e), nil); code != 200 || !strings.Contains(body, `"1"]`) {
					return fmt.Errorf("%s: %d %.200s", e, code, body)
				}
			}
			return nil
		})
		runGrafanaClient(t, teamA, expr, "1")
	})

	t.Run("Grafana forwarding a signed-in user's OAuth identity sees the user's namespaces", func(t *testing.T) {
		expr := `count(count by (namespace) (container_cpu_usage_seconds_total{namespace=~"e2e-ten-.*"}))`
		eventually(t, 90*time.Second, "team C's two namespaces now and 20s ago", func() error {
			for _, e := range []string{expr, strings.Replace(expr, "}))", "} offset 20s))", 1)} {
				if code, body := callerWithToken(teamC)(t, http.MethodGet, "/query?query="+url.QueryEscape(e), nil); code != 200 || !strings.Contains(body, `"2"]`) {
					return fmt.Errorf("%s: %d %.200s", e, code, body)
				}
			}
			return nil
		})
		runGrafanaClient(t, teamC, expr, "2", "KMETRICS_FORWARD_OAUTH=1")
	})

	t.Run("tokens the identity provider did not issue to kmetrics' audience are refused", func(t *testing.T) {
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			tok  idToken
			want int
		}{
			// Signed with another key under the issuer's key ID.
			{"forged signature", idToken{email: "carol@team-c.example", groups: []string{"team-c"}, signer: other}, http.StatusUnauthorized},
			{"expired", idToken{email: "carol@team-c.example", groups: []string{"team-c"}, expiry: time.Now().Add(-10 * time.Minute)}, http.StatusUnauthorized},
			// Issued to another client of the same provider.
			{"another audience", idToken{email: "carol@team-c.example", groups: []string{"team-c"}, audience: "another-app"}, http.StatusUnauthorized},
			// The provider's groups are prefixed: no token can name
			// system:masters or a group the platform team bound.
			{"claiming system:masters", idToken{email: "mallory@team-c.example", groups: []string{"system:masters", "system:authenticated"}}, http.StatusForbidden},
		} {
			token, err := oidc.token(tc.tok)
			if err != nil {
				t.Fatal(err)
			}
			if code, body := callerWithToken(token)(t, http.MethodGet, "/query?query="+url.QueryEscape(`count(up)`), nil); code != tc.want {
				t.Errorf("%s: %d %.200s, want %d", tc.name, code, body, tc.want)
			}
		}
	})

	// Last: a revoked RoleBinding takes effect within the scope cache's TTL
	// (30 s) and the authorization webhook cache's (10 s).
	t.Run("a revoked RoleBinding takes effect", func(t *testing.T) {
		mustKubectl(t, "-n", tenB, "delete", "rolebinding", "team-b-view")
		revoked := time.Now()
		eventually(t, 2*time.Minute, "team B refused", func() error {
			if code, body := users["team B"].call(t, http.MethodGet, "/query?query=up", nil); code != http.StatusForbidden {
				return fmt.Errorf("%d %.100s", code, body)
			}
			return nil
		})
		t.Logf("team B refused %s after its RoleBinding was deleted", time.Since(revoked).Round(time.Second))
	})
}

// readerGet is instantQuery's getter with the cluster reader's token.
func readerGet(t *testing.T, token string) func(string) ([]byte, error) {
	return func(path string) ([]byte, error) {
		code, body := directRequest(t, http.MethodGet, "/prometheus"+path, nil, token, nil)
		if code != 200 {
			return nil, fmt.Errorf("%d %s", code, body)
		}
		return []byte(body), nil
	}
}

// namespacesIn lists the test's namespaces of an answer's series (sorted,
// each once).
func namespacesIn(body string) []string { return oursOf(allNamespacesIn(body)) }

// allNamespacesIn lists the namespace of every series of an answer (a
// vector, a matrix or /series).
func allNamespacesIn(body string) []string {
	var r struct {
		Data json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal([]byte(body), &r)
	var series []map[string]string
	var result struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
		} `json:"result"`
	}
	if json.Unmarshal(r.Data, &result) == nil && result.Result != nil {
		for _, s := range result.Result {
			series = append(series, s.Metric)
		}
	} else {
		_ = json.Unmarshal(r.Data, &series)
	}
	var out []string
	for _, s := range series {
		out = append(out, s["namespace"])
	}
	return out
}

// ruleFilesIn lists the files of /rules' groups.
func ruleFilesIn(body string) []string {
	var r struct {
		Data struct {
			Groups []struct {
				File string `json:"file"`
			} `json:"groups"`
		} `json:"data"`
	}
	_ = json.Unmarshal([]byte(body), &r)
	var out []string
	for _, g := range r.Data.Groups {
		out = append(out, g.File)
	}
	return out
}

func oursOf(namespaces []string) []string {
	var out []string
	for _, ns := range namespaces {
		if strings.HasPrefix(ns, "e2e-ten-") && !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return out
}

func labelValues(body string) []string {
	var r struct {
		Data []string `json:"data"`
	}
	_ = json.Unmarshal([]byte(body), &r)
	return r.Data
}

func samplesIn(body string) []json.RawMessage {
	var r struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	_ = json.Unmarshal([]byte(body), &r)
	return r.Data.Result
}

// monitoredService is a Service in ns whose Endpoints are host:port (this
// machine: kwok pods serve nothing) and a ServiceMonitor of it.
func monitoredService(ns, name, host, port string, honorLabels bool) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Service
metadata: {name: %[2]s, namespace: %[1]s, labels: {app: %[2]s}}
spec: {ports: [{name: web, port: %[4]s}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: %[2]s, namespace: %[1]s, labels: {app: %[2]s}}
subsets: [{addresses: [{ip: %[3]s}], ports: [{name: web, port: %[4]s}]}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  selector: {matchLabels: {app: %[2]s}}
  endpoints:
  - port: web
    interval: 5s
    honorLabels: %[5]v
    relabelings:
    - {targetLabel: namespace, replacement: %[6]s}
`, ns, name, host, port, honorLabels, tenVictim)
}

// tenancyRules is team A's PrometheusRule trying to copy the victim's
// series into its namespace, beside what it may read.
func tenancyRules() string {
	return fmt.Sprintf(`
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: steal, namespace: %[1]s}
spec:
  groups:
  - name: tenancy-steal
    interval: 5s
    rules:
    - record: tenancy:stolen
      expr: victim_secret_total{namespace="%[2]s"} or label_replace(victim_secret_total, "namespace", "%[1]s", "", "")
    - record: tenancy:relabelled
      expr: count(container_cpu_usage_seconds_total)
      labels: {namespace: %[2]s}
    - record: tenancy:own:count
      expr: count(container_cpu_usage_seconds_total)
    - record: tenancy:absent_victim
      expr: absent(victim_secret_total{namespace="%[2]s"})
`, tenA1, tenVictim)
}

// openMetricsHandler serves body as OpenMetrics text (exemplars included).
func openMetricsHandler(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
		fmt.Fprint(w, body)
	}
}
