// Package benchcluster brings up a real control plane (hack/cluster.sh) of
// its own for a benchmark that needs one, on ports no other suite uses,
// and reads a benchmark's settings from the environment.
package benchcluster

import (
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Config is hack/cluster.sh's settings for one benchmark's cluster.
type Config struct {
	Name                                  string // state under .state/<Name>
	APIServerPort, EtcdPort, KmetricsPort string
	NodeNet, PodNet                       string // e.g. 127.0.4, 127.130
	Nodes                                 int
}

// Cluster is a running control plane.
type Cluster struct {
	Root, State string
	Admin       *kubernetes.Clientset
	cfg         Config
}

// KubeletAddresses are the nodes' kubelets, host:port (hack/cluster.sh
// numbers node i at NodeNet.(i+1)).
func (c *Cluster) KubeletAddresses() []string {
	out := make([]string, c.cfg.Nodes)
	for i := range out {
		out[i] = fmt.Sprintf("%s.%d:10250", c.cfg.NodeNet, i+2)
	}
	return out
}

// KmetricsFlags are bin/kmetrics' flags to run against the cluster as its
// ServiceAccount, serving on 127.0.0.1:KmetricsPort the certificate the
// cluster CA signed for it.
func (c *Cluster) KmetricsFlags() []string {
	return []string{"--kubeconfig", c.Kubeconfig(), "--bind-address", "127.0.0.1", "--secure-port", c.cfg.KmetricsPort,
		"--tls-cert-file", filepath.Join(c.Certs(), "kmetrics.crt"), "--tls-private-key-file", filepath.Join(c.Certs(), "kmetrics.key")}
}

// RootCAs holds the cluster CA, which signed kmetrics' and the kubelets'
// serving certificates.
func (c *Cluster) RootCAs(t testing.TB) *x509.CertPool {
	pem, err := os.ReadFile(filepath.Join(c.Certs(), "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in the cluster's ca.crt")
	}
	return pool
}

// Certs is the cluster's certificate directory (ca.crt, admin.*, kmetrics.*).
func (c *Cluster) Certs() string { return filepath.Join(c.State, "certs") }

// Kubeconfig is kmetrics' (its ServiceAccount's token, deploy/'s RBAC).
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.State, "kmetrics.kubeconfig") }

// Up starts the cluster (after tearing down what a killed run left) and
// tears it down when the test ends.
func Up(t testing.TB, cfg Config) *Cluster {
	wd, _ := os.Getwd()
	root := filepath.Clean(filepath.Join(wd, "..", ".."))
	state := filepath.Join(root, ".state", cfg.Name)
	env := []string{"KMETRICS_STATE=" + state, "KMETRICS_APISERVER_PORT=" + cfg.APIServerPort, "KMETRICS_ETCD_PORT=" + cfg.EtcdPort,
		"KMETRICS_NODE_NET=" + cfg.NodeNet, "KMETRICS_POD_NET=" + cfg.PodNet, "KMETRICS_NODES=" + strconv.Itoa(cfg.Nodes), "KMETRICS_PORT=" + cfg.KmetricsPort}
	script := func(arg string) error {
		cmd := exec.Command("bash", filepath.Join(root, "hack", "cluster.sh"), arg)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("hack/cluster.sh %s: %v\n%s", arg, err, out)
		}
		return err
	}
	_ = script("down")
	if err := script("up"); err != nil {
		t.FailNow()
	}
	t.Cleanup(func() { _ = script("down") })
	rest, err := clientcmd.BuildConfigFromFlags("", filepath.Join(state, "admin.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	rest.QPS, rest.Burst = 200, 400
	return &Cluster{Root: root, State: state, Admin: kubernetes.NewForConfigOrDie(rest), cfg: cfg}
}

// DurationEnv is $name as a duration, def when unset.
func DurationEnv(t testing.TB, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// IntEnv is $name as an integer, def when unset.
func IntEnv(t testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// Eventually retries f every 2 s until it succeeds, failing the test with
// f's last error after timeout.
func Eventually(t testing.TB, what string, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(2 * time.Second)
	}
}
