//go:build e2e

package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/transport"
)

// secondKmetrics is another kmetrics beside the one the APIServices point
// at: its own port and TSDB, its own flags, stopped when the test ends.
type secondKmetrics struct {
	t      *testing.T
	name   string
	port   string
	tsdb   string
	args   []string
	cmd    *exec.Cmd
	done   chan struct{}
	client *http.Client
}

func startSecondKmetrics(t *testing.T, name string, extra ...string) *secondKmetrics {
	t.Helper()
	cert := adminCert(t)
	log := filepath.Join(state, "logs", "kmetrics-"+name+".log")
	t.Cleanup(func() { logTailOnFailure(t, log) })
	k := &secondKmetrics{t: t, name: name, port: freePort(t), tsdb: t.TempDir(), args: extra,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: kmetricsTLS(t, &cert)}}}
	t.Cleanup(func() { k.stop(syscall.SIGKILL) })
	k.start()
	return k
}

// start runs the process (again, on the same TSDB) and waits until it
// answers queries.
func (k *secondKmetrics) start() {
	k.t.Helper()
	log := filepath.Join(state, "logs", "kmetrics-"+k.name+".log")
	logf, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		k.t.Fatal(err)
	}
	certs := filepath.Join(state, "certs")
	k.cmd = exec.Command(filepath.Join(root, "bin", "kmetrics"),
		"--kubeconfig", filepath.Join(state, "kmetrics.kubeconfig"),
		"--bind-address", "127.0.0.1", "--secure-port", k.port,
		"--tls-cert-file", filepath.Join(certs, "kmetrics.crt"), "--tls-private-key-file", filepath.Join(certs, "kmetrics.key"),
		"--storage.tsdb.path", k.tsdb, "--metric-resolution", resolution.String(), "--kubelet-request-timeout", "5s")
	k.cmd.Args = append(k.cmd.Args, k.args...)
	k.cmd.Stdout, k.cmd.Stderr = logf, logf
	if err := k.cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	done := make(chan struct{})
	k.done = done
	go func() { _ = k.cmd.Wait(); logf.Close(); close(done) }()
	eventually(k.t, time.Minute, "kmetrics "+k.name+" answers queries", func() error {
		_, err := k.query("/api/v1/query?query=1")
		return err
	})
}

// stop signals the process and waits for it to exit.
func (k *secondKmetrics) stop(sig syscall.Signal) {
	if k.cmd == nil || k.cmd.Process == nil {
		return
	}
	_ = k.cmd.Process.Signal(sig)
	select {
	case <-k.done:
	case <-time.After(90 * time.Second):
		_ = k.cmd.Process.Kill()
		<-k.done
	}
}

// query reads its query API (/prometheus/...) as the cluster admin.
func (k *secondKmetrics) query(path string) ([]byte, error) {
	if !strings.HasPrefix(path, "/prometheus") {
		path = "/prometheus" + path
	}
	return k.raw(path)
}

// queryAs reads its query API with a bearer token (a user or service
// account) instead of the admin's certificate.
func (k *secondKmetrics) queryAs(t *testing.T, token string) func(path string) ([]byte, error) {
	client := &http.Client{Timeout: 30 * time.Second,
		Transport: transport.NewBearerAuthRoundTripper(token, &http.Transport{TLSClientConfig: kmetricsTLS(t, nil)})}
	return func(path string) ([]byte, error) {
		return httpGet(client, "https://127.0.0.1:"+k.port+"/prometheus"+path)
	}
}

// raw reads any of its paths (/metrics, /apis/...) as the cluster admin.
func (k *secondKmetrics) raw(path string) ([]byte, error) {
	return httpGet(k.client, "https://127.0.0.1:"+k.port+path)
}

// logTailOnFailure shows the end of a process' log when the test failed
// (the cluster's state directory goes away with it).
func logTailOnFailure(t *testing.T, log string) {
	if !t.Failed() {
		return
	}
	out, _ := exec.Command("tail", "-n", "30", log).Output()
	t.Logf("%s:\n%s", filepath.Base(log), out)
}
