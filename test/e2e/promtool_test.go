//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPromtool runs Debian's promtool (2.42) query commands against
// kmetrics. promtool 2.42 cannot send a bearer token or trust a CA, so a
// reverse proxy in the test adds what Grafana would send: the token of a
// service account bound to kmetrics:query-reader, over verified TLS.
func TestPromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool (Debian's prometheus package) not installed: hack/build-cluster-bins.sh installs it")
	}
	token := serviceAccountToken(t, "default", "e2e-promtool")
	_, _ = kubectl("create", "clusterrolebinding", "e2e-promtool", "--clusterrole=kmetrics:query-reader", "--serviceaccount=default:e2e-promtool")
	ca, err := os.ReadFile(filepath.Join(state, "certs", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	target, _ := url.Parse("https://127.0.0.1:" + kmetricsPort)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "kmetrics.kube-system.svc"}}
	director := proxy.Director
	proxy.Director = func(r *http.Request) {
		director(r)
		r.Header.Set("Authorization", "Bearer "+token)
	}
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	server := srv.URL + "/prometheus"

	run := func(args ...string) (string, error) {
		out, err := exec.Command(promtool, append([]string{"query"}, args...)...).CombinedOutput()
		return string(out), err
	}
	eventually(t, time.Minute, "every kubelet scraped", func() error {
		if out, err := run("instant", server, `count(up{job="kubelet",metrics_path="/metrics/resource",node=~"kwok-node-.*"})`); err != nil || !strings.Contains(out, "=> 3 @") {
			return &promtoolError{out: out, err: err, want: "=> 3 @"}
		}
		return nil
	})
	now := time.Now()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"instant", "--time=" + now.Format(time.RFC3339), server, `sum by (node) (up{job="kubelet",node="kwok-node-2"})`}, `{node="kwok-node-2"} => 1 @`},
		{[]string{"range", "--start=" + strconv.FormatInt(now.Add(-2*time.Minute).Unix(), 10), "--end=" + strconv.FormatInt(now.Unix(), 10), "--step=30s", server, `count(node_cpu_usage_seconds_total{node=~"kwok-node-.*"})`}, "3 @["},
		{[]string{"series", "--match=node_memory_working_set_bytes", server}, `node="kwok-node-1"`},
		{[]string{"labels", server, "node"}, "kwok-node-3"},
	}
	for _, tt := range tests {
		eventually(t, time.Minute, "promtool query "+strings.Join(tt.args, " "), func() error {
			out, err := run(tt.args...)
			if err != nil || !strings.Contains(out, tt.want) {
				return &promtoolError{out: out, err: err, want: tt.want}
			}
			return nil
		})
	}
	// A malformed query is Prometheus' error, reported by promtool.
	if out, err := run("instant", server, "sum(up"); err == nil || !strings.Contains(out, "bad_data") {
		t.Errorf("malformed query: %v %s", err, out)
	}
}

type promtoolError struct {
	out, want string
	err       error
}

func (e *promtoolError) Error() string {
	return "output lacks " + strconv.Quote(e.want) + ": " + strings.TrimSpace(e.out) + " (" + errString(e.err) + ")"
}

func errString(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}
