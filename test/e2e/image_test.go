//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var apiServiceNames = []string{"v1.metrics.k8s.io", "v1beta1.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io", "v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io"}

// TestImageUnderPodman runs kmetrics from the image `make image` built, the
// way a cluster would: under podman (runc) as the image's own user, with a
// read-only root filesystem and a memory limit, its serving certificate
// managed by itself. The APIServices trust nothing of kmetrics' when it
// starts: only the caBundle it injects makes the real aggregator accept it.
// Then its certificate and CA are renewed (short lifetimes) while kubectl
// top keeps working, with a second replica on the same Secret that must
// not fight it. It runs alone (not parallel): it takes the APIServices'
// port from the shared kmetrics.
func TestImageUnderPodman(t *testing.T) {
	archive := os.Getenv("KMETRICS_IMAGE")
	if archive == "" {
		t.Fatal("KMETRICS_IMAGE is not set: run through make e2e (make image builds it)")
	}
	podmanBin, err := exec.LookPath("podman")
	if err != nil {
		t.Fatal("podman not installed: hack/install-podman.sh installs it")
	}
	dir := filepath.Join(state, "podman")
	podman := func(args ...string) (string, error) {
		cmd := exec.Command(podmanBin, append([]string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}, args...)...)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+filepath.Join(root, "hack", "podman", "containers.conf"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	out, err := podman("load", "-i", archive)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`Loaded image(?:\(s\))?: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("podman load named no image:\n%s", out)
	}
	image := m[1]

	// What the container may read (as uid 65534) and write.
	kube := filepath.Join(dir, "kube")
	tsdb := filepath.Join(dir, "tsdb")
	for _, d := range []string{kube, tsdb} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.Chmod(tsdb, 0o777)
	kubeconfig, err := os.ReadFile(filepath.Join(state, "kmetrics.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kube, "config"), kubeconfig, 0o644); err != nil {
		t.Fatal(err)
	}

	// The shared kmetrics gives up the APIServices' port; afterwards the
	// APIServices trust the cluster CA again and it comes back.
	km.stop(syscall.SIGTERM)
	const container = "kmetrics-e2e"
	var replica *exec.Cmd
	defer func() {
		if t.Failed() {
			logs, _ := podman("logs", "--tail", "40", container)
			t.Logf("container log:\n%s", logs)
		}
		_, _ = podman("rm", "-f", "-t", "5", container)
		if replica != nil {
			_ = replica.Process.Kill()
			_ = replica.Wait()
		}
		ca, _ := os.ReadFile(filepath.Join(state, "certs", "ca.crt"))
		setCABundle(t, ca)
		_, _ = kubectl("-n", "kube-system", "delete", "secret", "kmetrics-serving", "--ignore-not-found")
		if km, err = startKmetrics(); err != nil {
			t.Fatalf("restarting the shared kmetrics: %v", err)
		}
	}()
	// What the certificate needs, and nothing more: its own Secret and
	// APIServices by name; no other Secret written, none created, no other
	// APIService touched.
	sa := "--as=system:serviceaccount:kube-system:kmetrics"
	for check, want := range map[string]string{
		"update secret/kmetrics-serving":                   "yes",
		"update apiservice/v1.metrics.k8s.io":              "yes",
		"update apiservice/v1beta1.metrics.k8s.io":         "yes",
		"update secret/extension-apiserver-authentication": "no",
		"create secrets":                                   "no",
		"update apiservice/v1.apps":                        "no",
		"delete secret/kmetrics-serving":                   "no",
	} {
		verb, resource, _ := strings.Cut(check, " ")
		got, _ := kubectl("auth", "can-i", verb, resource, "-n", "kube-system", sa)
		if strings.TrimSpace(got) != want {
			t.Errorf("kmetrics may %s: %q, want %q", check, strings.TrimSpace(got), want)
		}
	}
	stranger, _ := testServingCert(t, "stranger.example")
	setCABundle(t, []byte(stranger))
	_, _ = kubectl("-n", "kube-system", "delete", "secret", "kmetrics-serving", "--ignore-not-found")
	mustKubectl(t, "apply", "-f", filepath.Join(root, "deploy", "base", "serving-secret.yaml"))

	// A renewal every 40s, the CA's at 100s: a few minutes show both.
	certArgs := []string{"--serving-cert.secret=kmetrics-serving", "--serving-cert.namespace=kube-system",
		"--serving-cert.validity=1m", "--serving-cert.ca-validity=150s"}
	args := append([]string{"run", "-d", "--name", container, "--network=host", "--read-only", "--memory=1g", "--pids-limit=4096",
		"-v", kube + ":/etc/kmetrics/kube:ro", "-v", tsdb + ":/var/lib/kmetrics",
		image, "--kubeconfig=/etc/kmetrics/kube/config", "--bind-address=0.0.0.0", "--secure-port=" + kmetricsPort,
		"--storage.tsdb.path=/var/lib/kmetrics", "--metric-resolution=" + resolution.String(), "--kubelet-request-timeout=5s"}, certArgs...)
	if _, err := podman(args...); err != nil {
		t.Fatal(err)
	}
	pid, err := podman("inspect", "--format", "{{.State.Pid}}", container)
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/" + strings.TrimSpace(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if uid := regexp.MustCompile(`(?m)^Uid:\s+(\d+)`).FindSubmatch(status); uid == nil || string(uid[1]) != "65534" {
		t.Errorf("kmetrics runs as uid %s in the container, want the image's 65534", uid)
	}

	// No other help: the caBundle kmetrics injects is what makes the
	// aggregator accept it.
	mustKubectl(t, append([]string{"wait", "--for=condition=Available", "--timeout=120s"}, prefixed("apiservice/", apiServiceNames)...)...)
	bundle := secretBundle(t)
	for _, name := range apiServiceNames {
		got, err := base64.StdEncoding.DecodeString(mustKubectl(t, "get", "apiservice", name, "-o", "jsonpath={.spec.caBundle}"))
		if err != nil || string(got) != string(bundle) {
			t.Errorf("APIService %s: caBundle is not the Secret's CA", name)
		}
	}
	eventually(t, time.Minute, "kubectl top nodes from the container", func() error {
		_, err := kubectl("top", "nodes")
		return err
	})
	admin := adminCert(t)
	query := func() error {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pool(secretBundle(t)), ServerName: "kmetrics.kube-system.svc", Certificates: []tls.Certificate{admin}}}}
		body, err := httpGet(c, "https://127.0.0.1:"+kmetricsPort+"/prometheus/api/v1/query?"+url.Values{"query": {`count(node_cpu_usage_seconds_total)`}}.Encode())
		if err != nil {
			return err
		}
		if !strings.Contains(string(body), fmt.Sprintf(`"%d"`, nodeCount)) {
			return fmt.Errorf("count of nodes: %s", body)
		}
		return nil
	}
	eventually(t, time.Minute, "a PromQL query over TLS verified with the self-managed CA", query)

	// A second replica on the same Secret (the HA pair's situation).
	replicaPort := freePort(t)
	replica = exec.Command(filepath.Join(root, "bin", "kmetrics"), append([]string{"--kubeconfig", filepath.Join(state, "kmetrics.kubeconfig"),
		"--bind-address", "127.0.0.1", "--secure-port", replicaPort, "--storage.tsdb.path", t.TempDir(),
		"--metric-resolution", resolution.String(), "--kubelet-request-timeout", "5s"}, certArgs...)...)
	replicaLog, _ := os.Create(filepath.Join(state, "logs", "kmetrics-cert-replica.log"))
	defer replicaLog.Close()
	replica.Stdout, replica.Stderr = replicaLog, replicaLog
	if err := replica.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logTailOnFailure(t, replicaLog.Name()) })

	// Renewals while kubectl top is asked every 2s: none may fail.
	serials, issuers := map[string]bool{}, map[string]bool{}
	var failures []string
	asks := 0
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) && (len(issuers) < 2 || len(serials) < 4) {
		asks++
		if out, err := kubectl("top", "nodes"); err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v %s", time.Now().Format(time.TimeOnly), err, out))
		}
		if c, err := servedCert(kmetricsPort, secretBundle(t)); err != nil {
			failures = append(failures, fmt.Sprintf("%s: TLS: %v", time.Now().Format(time.TimeOnly), err))
		} else {
			serials[c.SerialNumber.String()] = true
			issuers[c.Issuer.CommonName] = true
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("kubectl top asked %d times over %d serving certificates from %d CAs", asks, len(serials), len(issuers))
	if len(issuers) < 2 || len(serials) < 4 {
		t.Errorf("in 4 minutes: %d certificates from %d CAs, want renewals and a CA rotation", len(serials), len(issuers))
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d kubectl top / TLS checks failed during renewals:\n%s", len(failures), asks, strings.Join(failures, "\n"))
	}
	if err := query(); err != nil {
		t.Errorf("PromQL after the renewals: %v", err)
	}
	// Both replicas serve the Secret's certificate: they did not fight.
	eventually(t, 30*time.Second, "both replicas serve the same certificate", func() error {
		bundle := secretBundle(t)
		a, err := servedCert(kmetricsPort, bundle)
		if err != nil {
			return err
		}
		b, err := servedCert(replicaPort, bundle)
		if err != nil {
			return err
		}
		if a.SerialNumber.Cmp(b.SerialNumber) != 0 {
			return fmt.Errorf("serials %v and %v", a.SerialNumber, b.SerialNumber)
		}
		return nil
	})
}

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

// setCABundle makes every kmetrics APIService trust ca (PEM).
func setCABundle(t *testing.T, ca []byte) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"caBundle":%q}}`, base64.StdEncoding.EncodeToString(ca))
	for _, name := range apiServiceNames {
		if out, err := kubectl("patch", "apiservice", name, "--type=merge", "-p", patch); err != nil {
			t.Errorf("patching %s: %v %s", name, err, out)
		}
	}
}

func secretBundle(t *testing.T) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(mustKubectl(t, "-n", "kube-system", "get", "secret", "kmetrics-serving", "-o", `jsonpath={.data.ca\.crt}`))
	if err != nil || len(b) == 0 {
		t.Fatalf("the Secret holds no CA bundle: %v", err)
	}
	return b
}

func pool(pemCerts []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pemCerts)
	return p
}

// servedCert is the certificate kmetrics presents on port, verified as the
// aggregator verifies it.
func servedCert(port string, bundle []byte) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+port,
		&tls.Config{RootCAs: pool(bundle), ServerName: "kmetrics.kube-system.svc"})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}
