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
	root  string // repository root
	state string // the cluster's state directory
	km    *kmetrics
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
	// Every run starts from an empty cluster and TSDB: an earlier run's
	// samples must not satisfy this run's waits.
	_ = cluster("down")
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

// kubectl runs the real kubectl against the e2e cluster.
func kubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
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
