//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// direct calls kmetrics itself (not through the aggregator).
func direct(t *testing.T, path, token string, cert *tls.Certificate) (int, string) {
	return directRequest(t, http.MethodGet, path, nil, token, cert)
}

func directRequest(t *testing.T, method, path string, form url.Values, token string, cert *tls.Certificate) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: kmetricsTLS(t, cert)}}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, "https://127.0.0.1:"+kmetricsPort+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func serviceAccountToken(t *testing.T, ns, name string) string {
	t.Helper()
	_, _ = kubectl("-n", ns, "create", "serviceaccount", name)
	return strings.TrimSpace(mustKubectl(t, "-n", ns, "create", "token", name, "--duration", "1h"))
}

func TestDirectRequestsNeedAuth(t *testing.T) {
	const nodes, nodesV1 = "/apis/metrics.k8s.io/v1beta1/nodes", "/apis/metrics.k8s.io/v1/nodes"
	nobody := serviceAccountToken(t, "default", "e2e-nobody")
	viewer := serviceAccountToken(t, "default", "e2e-viewer")
	_, _ = kubectl("create", "clusterrolebinding", "e2e-viewer", "--clusterrole=view", "--serviceaccount=default:e2e-viewer")
	grafana := serviceAccountToken(t, "default", "e2e-grafana")
	_, _ = kubectl("create", "clusterrolebinding", "e2e-grafana", "--clusterrole=kmetrics:query-reader", "--serviceaccount=default:e2e-grafana")
	admin, err := tls.LoadX509KeyPair(filepath.Join(state, "certs", "admin.crt"), filepath.Join(state, "certs", "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	const query = "/prometheus/api/v1/query?query=up"
	tests := []struct {
		name, path, token string
		cert              *tls.Certificate
		form              url.Values
		want              int
	}{
		{name: "query API anonymous", path: query, want: http.StatusForbidden},
		{name: "query API forged token", path: query, token: "not-a-real-token", want: http.StatusUnauthorized},
		{name: "query API without any RBAC", path: query, token: nobody, want: http.StatusForbidden},
		{name: "query API with view on every namespace (answered from them)", path: query, token: viewer, want: http.StatusOK},
		{name: "query API with kmetrics:query-reader", path: query, token: grafana, want: http.StatusOK},
		{name: "query API POST (Grafana's default)", path: "/prometheus/api/v1/query", form: url.Values{"query": {"1+1"}, "time": {"4"}}, token: grafana, want: http.StatusOK},
		{name: "query API bad PromQL", path: "/prometheus/api/v1/query?query=sum(", token: grafana, want: http.StatusBadRequest},
		{name: "query API admin route", path: "/prometheus/api/v1/status/tsdb", token: grafana, want: http.StatusNotFound},
		{name: "anonymous", path: nodes, want: http.StatusForbidden},
		{name: "forged token", path: nodes, token: "not-a-real-token", want: http.StatusUnauthorized},
		{name: "service account without RBAC", path: nodes, token: nobody, want: http.StatusForbidden},
		{name: "view role (aggregated-metrics-reader)", path: nodes, token: viewer, want: http.StatusOK},
		{name: "v1 anonymous", path: nodesV1, want: http.StatusForbidden},
		{name: "v1 service account without RBAC", path: nodesV1, token: nobody, want: http.StatusForbidden},
		{name: "v1 view role (aggregated-metrics-reader)", path: nodesV1, token: viewer, want: http.StatusOK},
		{name: "cluster admin certificate", path: nodes, cert: &admin, want: http.StatusOK},
		{name: "self-metrics need rights", path: "/metrics", want: http.StatusForbidden},
		{name: "self-metrics for admin", path: "/metrics", cert: &admin, want: http.StatusOK},
		{name: "readyz for probes", path: "/readyz", want: http.StatusOK},
		{name: "livez for probes", path: "/livez", want: http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// RBAC and the token cache settle within seconds.
			eventually(t, 20*time.Second, tc.name, func() error {
				method := http.MethodGet
				if tc.form != nil {
					method = http.MethodPost
				}
				if code, body := directRequest(t, method, tc.path, tc.form, tc.token, tc.cert); code != tc.want {
					return fmt.Errorf("status %d, want %d: %.200s", code, tc.want, body)
				}
				return nil
			})
		})
	}
	t.Run("self-metrics content", func(t *testing.T) {
		_, body := direct(t, "/metrics", "", &admin)
		for _, m := range []string{"kmetrics_kubelet_scrape_duration_seconds_bucket{node=\"kwok-node-1\"", "prometheus_tsdb_head_series ", "kmetrics_index_pods ", "apiserver_request_duration_seconds"} {
			if !strings.Contains(body, m) {
				t.Errorf("/metrics lacks %s", m)
			}
		}
	})
}

func TestDeployManifests(t *testing.T) {
	out := mustKubectl(t, "apply", "-k", filepath.Join(root, "deploy"), "--dry-run=server")
	for _, kind := range []string{"serviceaccount/kmetrics", "clusterrole.rbac.authorization.k8s.io/system:kmetrics",
		"statefulset.apps/kmetrics", "apiservice.apiregistration.k8s.io/v1.metrics.k8s.io",
		"apiservice.apiregistration.k8s.io/v1beta1.metrics.k8s.io"} {
		if !strings.Contains(out, kind) {
			t.Errorf("dry-run output lacks %s:\n%s", kind, out)
		}
	}
	// The HA pair: two replicas, preferred (never required) anti-affinity,
	// a PodDisruptionBudget.
	ha := mustKubectl(t, "apply", "-k", filepath.Join(root, "deploy", "ha"), "--dry-run=server", "-o", "yaml")
	for _, want := range []string{"kind: PodDisruptionBudget", "minAvailable: 1", "replicas: 2", "preferredDuringSchedulingIgnoredDuringExecution", "whenUnsatisfiable: ScheduleAnyway"} {
		if !strings.Contains(ha, want) {
			t.Errorf("deploy/ha dry-run lacks %q", want)
		}
	}
	if strings.Contains(ha, "requiredDuringScheduling") {
		t.Error("deploy/ha requires anti-affinity: replicas stay Pending on small clusters")
	}
	// The RBAC was applied for real by hack/cluster.sh; check what it grants.
	sa := "system:serviceaccount:kube-system:kmetrics"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "nodes", "--subresource=metrics", "--as=" + sa}, "yes"},
		{[]string{"watch", "pods", "--as=" + sa}, "yes"},
		{[]string{"create", "tokenreviews.authentication.k8s.io", "--as=" + sa}, "yes"},
		{[]string{"get", "configmaps/extension-apiserver-authentication", "-n", "kube-system", "--as=" + sa}, "yes"},
		{[]string{"delete", "pods", "--as=" + sa}, "no"},
		{[]string{"list", "pods.metrics.k8s.io", "--as=system:serviceaccount:default:e2e-viewer"}, "yes"},
	} {
		got, _ := kubectl(append([]string{"auth", "can-i"}, c.args...)...)
		if strings.TrimSpace(got) != c.want {
			t.Errorf("auth can-i %v = %q, want %q", c.args, strings.TrimSpace(got), c.want)
		}
	}
}

// kmetricsTLS verifies kmetrics' serving certificate (the cluster CA, its
// Service name) and presents cert, if any.
func kmetricsTLS(t *testing.T, cert *tls.Certificate) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: clusterCAPool(t), ServerName: "kmetrics.kube-system.svc"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

// clusterCAPool trusts the cluster CA (kmetrics', the kubelets' serving
// certificates are signed by it).
func clusterCAPool(t *testing.T) *x509.CertPool {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(state, "certs", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return pool
}

func adminCert(t *testing.T) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(state, "certs", "admin.crt"), filepath.Join(state, "certs", "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// queryByPod runs an instant PromQL query on kmetrics (as cluster admin) and
// returns each result's value by its pod label.
func queryByPod(t *testing.T, expr string) (map[string]float64, error) {
	t.Helper()
	admin := adminCert(t)
	code, body := direct(t, "/prometheus/api/v1/query?"+url.Values{"query": {expr}}.Encode(), "", &admin)
	var resp struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); code != 200 || err != nil {
		return nil, fmt.Errorf("query: %d %v %.200s", code, err, body)
	}
	out := map[string]float64{}
	for _, r := range resp.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("value %v: %w", r.Value[1], err)
		}
		out[r.Metric["pod"]] = v
	}
	return out, nil
}

// queryScalar is the value of a one-series instant query; -1 when it has no
// result or fails (callers poll).
func queryScalar(t *testing.T, expr string) float64 {
	t.Helper()
	byPod, err := queryByPod(t, expr)
	if err != nil || len(byPod) != 1 {
		return -1
	}
	for _, v := range byPod {
		return v
	}
	return -1
}
