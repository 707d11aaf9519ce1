//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// webhook records the notifications Alertmanager delivers.
type webhook struct {
	mu       sync.Mutex
	received []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	}
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Alerts []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	_ = json.NewDecoder(r.Body).Decode(&msg)
	h.mu.Lock()
	h.received = append(h.received, msg.Alerts...)
	h.mu.Unlock()
}

// seen reports whether an alert named name for pod arrived with status.
func (h *webhook) seen(name, pod, status string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range h.received {
		if a.Labels["alertname"] == name && a.Labels["pod"] == pod && a.Status == status {
			return true
		}
	}
	return false
}

// TestAlertReachesAlertmanager: a kwok pod's CPU crosses the shipped
// ContainerHighCPU threshold, kmetrics' rule fires and Prometheus' notifier
// delivers it to a real Alertmanager (Debian's), which calls our webhook; the
// alert resolves once the usage annotation is lowered.
func TestAlertReachesAlertmanager(t *testing.T) {
	// Runs beside the other waiting tests, after the sequential ones that
	// restart kmetrics or stop a node.
	t.Parallel()
	hook := &webhook{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: hook}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
route:
  receiver: test
  group_by: [alertname, pod]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: test
  webhook_configs:
  - url: http://%s/
    send_resolved: true
`, ln.Addr())), 0o644); err != nil {
		t.Fatal(err)
	}
	am := exec.Command("prometheus-alertmanager", "--config.file", cfg, "--storage.path", dir,
		"--web.listen-address", "127.0.0.1:"+alertmanagerPort,
		// Clustering would bind 0.0.0.0:9094.
		"--cluster.listen-address", "")
	logf, _ := os.Create(filepath.Join(state, "logs", "alertmanager.log"))
	defer logf.Close()
	am.Stdout, am.Stderr = logf, logf
	if err := am.Start(); err != nil {
		t.Fatalf("starting Alertmanager: %v", err)
	}
	defer func() { _ = am.Process.Kill(); _ = am.Wait() }()

	deployment(t, "e2e-alert", "hot", 1, "1500m", "64Mi", "100m")
	var pod string
	eventually(t, 60*time.Second, "the hot pod running", func() error {
		out, err := kubectl("-n", "e2e-alert", "get", "pods", "-l", "app=hot", "-o", "jsonpath={.items[0].metadata.name}")
		pod = out
		return err
	})
	eventually(t, 4*time.Minute, "ContainerHighCPU firing at the webhook", func() error {
		if !hook.seen("ContainerHighCPU", pod, "firing") {
			return fmt.Errorf("not yet (received %d notifications)", len(hook.received))
		}
		return nil
	})
	mustKubectl(t, "-n", "e2e-alert", "annotate", "pods", "-l", "app=hot", "kwok.x-k8s.io/usage-cpu=100m", "--overwrite")
	eventually(t, 4*time.Minute, "ContainerHighCPU resolved at the webhook", func() error {
		if !hook.seen("ContainerHighCPU", pod, "resolved") {
			return fmt.Errorf("not resolved yet")
		}
		return nil
	})
	// The rules API lists the shipped groups, all healthy.
	admin := adminCert(t)
	code, body := direct(t, "/prometheus/api/v1/rules", "", &admin)
	var rules struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name   string `json:"name"`
					Health string `json:"health"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &rules); code != 200 || err != nil || len(rules.Data.Groups) == 0 {
		t.Fatalf("rules API: %d %v %.300s", code, err, body)
	}
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			if r.Health != "ok" {
				t.Errorf("rule %s/%s health %q", g.Name, r.Name, r.Health)
			}
		}
	}
}
