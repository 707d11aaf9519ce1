//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKEDAPrometheusScaler: KEDA's Prometheus scaler (NewPrometheusScaler,
// unchanged, in test/keda's program; make e2e sets KEDA_PROMETHEUS) against
// kmetrics' query API with bearer authentication and kmetrics' CA, as a
// ScaledObject with a TriggerAuthentication configures it: the value and
// the activation of a query, and its refusal of a query returning two
// series.
func TestKEDAPrometheusScaler(t *testing.T) {
	t.Parallel()
	bin := peerBinary(t, "KEDA_PROMETHEUS", "hack/build-keda.sh")
	deployment(t, "e2e-keda", "web", 3, "100m", "32Mi", "50m")
	deployment(t, "e2e-keda", "worker", 1, "100m", "32Mi", "50m")
	token := serviceAccountToken(t, "default", "e2e-keda")
	mustKubectl(t, "create", "clusterrolebinding", "e2e-keda-query-reader", "--clusterrole=kmetrics:query-reader", "--serviceaccount=default:e2e-keda")
	t.Cleanup(func() { _, _ = kubectl("delete", "clusterrolebinding", "e2e-keda-query-reader") })
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	scale := func(query, activation, tokenFile string) answer {
		out, err := exec.Command(bin, "--server", "https://127.0.0.1:"+kmetricsPort+"/prometheus", "--query", query,
			"--threshold", "2", "--activation-threshold", activation,
			"--bearer-token-file", tokenFile, "--ca-file", filepath.Join(state, "certs", "ca.crt")).Output()
		var a answer
		if err != nil || json.Unmarshal(out, &a) != nil {
			a.Error = "running the scaler: " + string(out)
		}
		return a
	}
	replicas := `sum(kube_deployment_spec_replicas{namespace="e2e-keda", deployment="web"})`
	eventually(t, 2*time.Minute, "the scaler reads web's replicas", func() error {
		if a := scale(replicas, "2", tokenFile); a.Error != "" || a.Value == nil || *a.Value != 3 || !a.Active {
			return fmt.Errorf("got %s, want 3 and active", a)
		}
		return nil
	})
	t.Run("below the activation threshold: the value, not active", func(t *testing.T) {
		if a := scale(replicas, "5", tokenFile); a.Error != "" || a.Value == nil || *a.Value != 3 || a.Active {
			t.Errorf("got %s, want 3 and not active", a)
		}
	})
	t.Run("a query returning two series is the scaler's error", func(t *testing.T) {
		a := scale(`kube_deployment_spec_replicas{namespace="e2e-keda"}`, "0", tokenFile)
		if !strings.Contains(a.Error, "returned multiple elements") {
			t.Errorf("got %s, want KEDA's error for multiple elements", a)
		}
	})
	t.Run("a token kmetrics does not accept is an error, not a value", func(t *testing.T) {
		bad := filepath.Join(dir, "bad")
		_ = os.WriteFile(bad, []byte("not-a-token"), 0o600)
		if a := scale(replicas, "0", bad); a.Error == "" || a.Value != nil {
			t.Errorf("got %s with a bad token", a)
		}
	})
}

// answer is what KEDA's scaler made of a query.
type answer struct {
	Value  *float64
	Active bool
	Error  string
}

func (a answer) String() string {
	v := "none"
	if a.Value != nil {
		v = fmt.Sprint(*a.Value)
	}
	return fmt.Sprintf("value %s, active %v, error %q", v, a.Active, a.Error)
}
