//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGrafanaClient runs test/grafana (Grafana's own Prometheus data source
// code, a separate module) against this kmetrics: Save & test, panel and
// alerting queries by POST and GET, and the editor's resource calls.
func TestGrafanaClient(t *testing.T) {
	t.Parallel()
	deployment(t, "e2e-grafana", "panel", 1, "400m", "64Mi", "100m")
	const expr = `sum(irate(container_cpu_usage_seconds_total{namespace="e2e-grafana"}[1m]))`
	// Grafana's client is run once the expression has its value now and 20s
	// ago: Grafana aligns a range query's last point down to the step.
	eventually(t, 90*time.Second, "the panel pod's usage queryable now and 20s ago", func() error {
		for _, e := range []string{expr, strings.Replace(expr, "[1m]", "[1m] offset 20s", 1)} {
			if v := queryScalar(t, e); !within(v, 0.4) {
				return fmt.Errorf("%s = %v, want 0.4", e, v)
			}
		}
		return nil
	})
	token := serviceAccountToken(t, "default", "e2e-promlib")
	_, _ = kubectl("create", "clusterrolebinding", "e2e-promlib", "--clusterrole=kmetrics:query-reader", "--serviceaccount=default:e2e-promlib")

	runGrafanaClient(t, token, expr, "0.4")
}

// runGrafanaClient runs test/grafana (Grafana's Prometheus data source
// code) against kmetrics with token; expr must have the value want.
func runGrafanaClient(t *testing.T, token, expr, want string, env ...string) {
	t.Helper()
	cmd := exec.Command("go", "test", "-count=1", "-v", ".")
	cmd.Dir = filepath.Join(root, "test", "grafana")
	cmd.Env = append(append(os.Environ(), env...),
		"KMETRICS_PROM_URL=https://127.0.0.1:"+kmetricsPort+"/prometheus",
		"KMETRICS_CA="+filepath.Join(state, "certs", "ca.crt"),
		"KMETRICS_TOKEN="+token,
		"KMETRICS_EXPR="+expr,
		"KMETRICS_WANT="+want,
	)
	out, err := cmd.CombinedOutput()
	var summary []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "--- ") || strings.Contains(l, "_test.go") || strings.HasPrefix(l, "ok") || strings.HasPrefix(l, "FAIL") {
			summary = append(summary, l)
		}
	}
	t.Log("\n" + strings.Join(summary, "\n"))
	if err != nil {
		t.Fatalf("Grafana's client against kmetrics: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Fatal("the Grafana test skipped")
	}
}
