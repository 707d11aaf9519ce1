//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// kmetrics is the kmetrics binary running against the e2e cluster as its
// ServiceAccount (so deploy/'s RBAC is what it has).
type kmetrics struct {
	cmd  *exec.Cmd
	done chan error
	log  string
}

func tsdbDir() string { return filepath.Join(state, "tsdb") }

// startKmetrics starts kmetrics with the e2e flags; extra flags come last
// (and so win over the defaults they repeat).
func startKmetrics(extra ...string) (*kmetrics, error) {
	log := filepath.Join(state, "logs", "kmetrics.log")
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	certs := filepath.Join(state, "certs")
	cmd := exec.Command(filepath.Join(root, "bin", "kmetrics"),
		"--kubeconfig", filepath.Join(state, "kmetrics.kubeconfig"),
		// Every address: the APIServices reach it at this machine's (hack/cluster.sh register).
		"--bind-address", "0.0.0.0", "--secure-port", kmetricsPort,
		"--tls-cert-file", filepath.Join(certs, "kmetrics.crt"), "--tls-private-key-file", filepath.Join(certs, "kmetrics.key"),
		"--storage.tsdb.path", tsdbDir(),
		"--metric-resolution", resolution.String(), "--kubelet-request-timeout", "5s",
		// The shipped rules, alerts to the Alertmanager TestAlertReachesAlertmanager runs.
		"--rules.file", filepath.Join(root, "deploy", "base", "rules", "*.yaml"),
		"--alertmanager.url", "http://127.0.0.1:"+alertmanagerPort,
		"--custom-metrics.config", metricsConfig(), "--custom-metrics.discovery-interval", "5s",
	)
	cmd.Args = append(cmd.Args, extra...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting kmetrics: %w", err)
	}
	// Recorded with the cluster's processes: `hack/cluster.sh down` stops it
	// even if this test binary dies.
	_ = os.WriteFile(filepath.Join(state, "pids", "kmetrics.pid"), []byte(fmt.Sprint(cmd.Process.Pid)), 0o644)
	k := &kmetrics{cmd: cmd, done: make(chan error, 1), log: log}
	go func() { k.done <- cmd.Wait(); f.Close() }()
	if _, err := kubectl("wait", "--for=condition=Available", "apiservice/v1.metrics.k8s.io", "apiservice/v1beta1.metrics.k8s.io", "--timeout=60s"); err != nil {
		tail, _ := exec.Command("tail", "-n", "20", log).Output()
		return k, fmt.Errorf("kmetrics APIService not available (log %s): %w\n%s", log, err, tail)
	}
	return k, nil
}

// stop signals kmetrics and waits for it to exit.
func (k *kmetrics) stop(sig os.Signal) {
	_ = k.cmd.Process.Signal(sig)
	select {
	case <-k.done:
	case <-time.After(30 * time.Second):
		_ = k.cmd.Process.Signal(syscall.SIGKILL)
		<-k.done
	}
}
