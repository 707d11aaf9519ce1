package appscrape

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/config"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// A monitor's target in namespace attacker exposes namespace="victim" with
// honor_labels, and the monitor's relabelings write namespace="victim"
// too: its series and its up are labelled attacker, the exposed value kept
// as exported_namespace. The same target in a job of --scrape.config (the
// operator's own) keeps what it exposes.
func TestNamespaceIsTheTargetsForGeneratedJobs(t *testing.T) {
	db := openDB(t)
	app := serveApp(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `spoofed{namespace="victim"} 1`)
		fmt.Fprintln(w, `plain 2`)
	})
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets.json")
	if err := os.WriteFile(targets, []byte(fmt.Sprintf(`[{"targets": [%q], "labels": {"__meta_kubernetes_namespace": "attacker"}}]`,
		app.host+":"+app.port)), 0o600); err != nil {
		t.Fatal(err)
	}
	job := func(name string) string {
		return fmt.Sprintf(`
- job_name: %s
  honor_labels: true
  scrape_interval: 200ms
  scrape_timeout: 100ms
  file_sd_configs: [{files: [%q]}]
  relabel_configs:
  - {target_label: namespace, replacement: victim}
  metric_relabel_configs:
  - {target_label: namespace, replacement: victim, source_labels: [__name__], regex: plain}
`, name, targets)
	}
	file := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(file, []byte("scrape_configs:"+job("operators-own")), 0o600); err != nil {
		t.Fatal(err)
	}
	s := runScraper(t, Config{File: file, Interval: time.Second, Timeout: time.Second, MaxBodyBytes: 1 << 20},
		Deps{Storage: storage.NewGuard(db, 0)})
	monitor, err := config.Load("scrape_configs:"+job("serviceMonitor/attacker/spoof/0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetJobs("servicemonitors", []Job{{Config: monitor.ScrapeConfigs[0], Tenant: "attacker"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ job, namespace, exported string }{
		{"serviceMonitor/attacker/spoof/0", "attacker", "victim"},
		{"operators-own", "victim", ""},
	} {
		for _, name := range []string{"spoofed", "plain", "up"} {
			waitUntil(t, tc.job+"'s "+name, func() bool { return len(samples(t, db, eq("__name__", name), eq("job", tc.job))) > 0 })
			for series := range samples(t, db, eq("__name__", name), eq("job", tc.job)) {
				if want := fmt.Sprintf(`namespace="%s"`, tc.namespace); !strings.Contains(series, want) {
					t.Errorf("%s: want %s", series, want)
				}
				if name == "spoofed" && tc.exported != "" && !strings.Contains(series, fmt.Sprintf(`exported_namespace="%s"`, tc.exported)) {
					t.Errorf("%s: the exposed namespace is not kept as exported_namespace", series)
				}
			}
		}
	}
}
