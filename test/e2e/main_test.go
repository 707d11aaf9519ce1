//go:build e2e

// Package e2e runs kmetrics in a real control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok kubelets over TLS) brought
// up by hack/cluster.sh, and drives it with the real kubectl and the real HPA.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmetrics/kmetrics/test/internal/peers"
)

// The e2e cluster has its own ports and node addresses, so it runs beside
// `make demo`.
const (
	apiserverPort    = "16443"
	etcdPort         = "12379"
	nodeNet          = "127.0.1"
	podNet           = "127.110"
	nodeCount        = 3
	kmetricsPort     = "18443"
	alertmanagerPort = "19093"
	resolution       = 10 * time.Second
)

var (
	// k8sMinor is the cluster's Kubernetes minor (K8S_VERSION), that of
	// the kubectl first on PATH too.
	k8sMinor int
	root     string // repository root
	state    string // the cluster's state directory
	km       *kmetrics
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	wd, _ := os.Getwd()
	root = filepath.Clean(filepath.Join(wd, "..", ".."))
	state = filepath.Join(root, ".state", "e2e")
	for k, v := range map[string]string{
		"KMETRICS_STATE": state, "KMETRICS_APISERVER_PORT": apiserverPort, "KMETRICS_ETCD_PORT": etcdPort,
		"KMETRICS_NODE_NET": nodeNet, "KMETRICS_POD_NET": podNet, "KMETRICS_NODES": fmt.Sprint(nodeCount), "KMETRICS_PORT": kmetricsPort,
	} {
		os.Setenv(k, v)
	}
	os.Setenv("KUBECONFIG", filepath.Join(state, "admin.kubeconfig"))
	// The cluster's own kubectl (K8S_VERSION's) comes first on PATH, as
	// for hack/cluster.sh.
	k8s, err := exec.Command("bash", "-c", "source "+filepath.Join(root, "hack", "k8s-version.sh")+` && echo "$K8S_BIN $K8S_VERSION"`).Output()
	var k8sBin string
	if err == nil {
		_, err = fmt.Sscanf(string(k8s), "%s v1.%d.", &k8sBin, &k8sMinor)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: reading hack/k8s-version.sh (%q): %v\n", k8s, err)
		return 1
	}
	os.Setenv("PATH", k8sBin+string(os.PathListSeparator)+os.Getenv("PATH"))
	// Every run starts from an empty cluster and TSDB: an earlier run's
	// samples must not satisfy this run's waits.
	_ = cluster("down")
	// The cluster trusts an identity provider, as one whose users sign in
	// to Grafana with OIDC does; it serves for as long as the cluster runs.
	if err := startClusterIdentityProvider(filepath.Join(root, ".state", "e2e-authentication.yaml")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the identity provider:", err)
		return 1
	}
	defer oidc.close()
	if err := cluster("up"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: bringing up the control plane:", err)
		return 1
	}
	defer func() {
		if km != nil {
			km.stop(os.Interrupt)
		}
		if os.Getenv("KMETRICS_E2E_KEEP") == "" {
			_ = cluster("down")
		}
	}()
	config, err := defaultMetricsConfig()
	if err == nil {
		err = os.WriteFile(metricsConfig(), config, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: writing the metrics config:", err)
		return 1
	}
	if km, err = startKmetrics(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

func cluster(args ...string) error {
	_, err := hackScript("cluster.sh", args...)
	return err
}

// hackScript runs hack/<script> with args; it returns the script's
// standard output, and on failure an error holding both its outputs.
func hackScript(script string, args ...string) (string, error) {
	cmd := exec.Command("bash", append([]string{filepath.Join(root, "hack", script)}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("hack/%s %s: %v\n%s%s", script, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

// kubectl runs the real kubectl of the cluster's release (first on PATH)
// against the e2e cluster.
func kubectl(args ...string) (string, error) {
	out, _, err := kubectlBinary("kubectl", args...)
	return out, err
}

// kubectlBinary runs the kubectl at bin; it returns its standard output and
// error apart (kubectl logs requests to the latter).
func kubectlBinary(bin string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), errb.String(), fmt.Errorf("%s %s: %v: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(lastLines(errb.String(), 5)))
	}
	return out.String(), errb.String(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := kubectl(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// kubectlApply applies a manifest given as text.
func kubectlApply(t *testing.T, manifest string) {
	t.Helper()
	cmd := exec.Command("kubectl", "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v: %s", err, out)
	}
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v: %v", what, timeout, err)
		}
		time.Sleep(time.Second)
	}
}

// peerBinary is the path of a peer or client built outside the suite: make
// e2e builds it with script (cached by version) in the background, maybe
// while the suite already runs, so the test that needs it waits here for
// its build; a developer's run may name it in env instead.
func peerBinary(t *testing.T, env, script string) string {
	t.Helper()
	bin, err := peers.Binary(env, peers.Wait, t.Logf)
	if err != nil {
		t.Fatalf("%v (make e2e builds it with %s)", err, script)
	}
	return bin
}
