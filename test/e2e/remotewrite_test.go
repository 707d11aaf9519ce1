//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const remoteNS = "e2e-remote"

// kmetrics remote-writes to a real VictoriaMetrics: every kind of series it
// stores arrives, and over fixed windows the raw samples read back from
// VictoriaMetrics equal kmetrics' own. The receiver stopped (SIGSTOP) for
// two minutes loses nothing once resumed; a receiver answering 400 is
// counted and logged and costs nothing else; kmetrics restarted during an
// outage sends the gap from its TSDB once the receiver is back.
func TestRemoteWriteToVictoriaMetrics(t *testing.T) {
	t.Parallel()
	vmBin := peerBinary(t, "VICTORIAMETRICS_BIN", "hack/build-victoriametrics.sh")
	vm := startVictoriaMetrics(t, vmBin)
	var refused atomic.Int64
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refused.Add(1)
		http.Error(w, "tenant unknown", http.StatusBadRequest)
	}))
	t.Cleanup(refusing.Close)

	fleet := startAppFleet(t, remoteNS, "9100")
	fleet.serve("shipped", textHandler("# TYPE shipped_requests_total counter\nshipped_requests_total{code=\"200\"} 42\n"))
	kubectlApply(t, scrapedDeployment(remoteNS, "shipped", 1, ""))
	t.Cleanup(func() { _, _ = kubectl("delete", "namespace", remoteNS, "--wait=false") })

	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	config := filepath.Join(dir, "prometheus.yml")
	write := func(file, body string) {
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(rules, "groups:\n- name: e2e-remote\n  interval: 5s\n  rules:\n  - record: e2e_remote:up:count\n    expr: count(up)\n")
	write(config, fmt.Sprintf(`global:
  scrape_interval: 5s
  scrape_timeout: 4s
  external_labels: {cluster: e2e}
scrape_configs:
- job_name: e2e-remote-app
  kubernetes_sd_configs:
  - {role: pod, kubeconfig_file: %s, namespaces: {names: [%s]}}
  relabel_configs:
  - {source_labels: [__meta_kubernetes_pod_ip], replacement: "$1:9100", target_label: __address__}
  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
remote_write:
- name: vm
  url: http://127.0.0.1:%s/api/v1/write
  queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 2s}
- name: refusing
  url: %s/api/v1/write
  queue_config: {batch_send_deadline: 1s}
`, filepath.Join(state, "kmetrics.kubeconfig"), remoteNS, vm.port, refusing.URL))
	km2 := startSecondKmetrics(t, "remote-write", "--scrape.annotated=false", "--scrape.config", config,
		"--remote-write.config", config, "--rules.file", rules, "--rules.evaluation-interval", "5s")
	start := time.Now()

	kinds := map[string]string{
		"kubelet":         `{job="kubelet"}`,
		"applications":    `{job="e2e-remote-app"}`,
		"cluster state":   `{job="kube-state-metrics"}`,
		"recording rules": `{__name__="e2e_remote:up:count"}`,
		"kmetrics itself": `{job="kmetrics"}`,
	}
	for kind, sel := range kinds {
		eventually(t, 2*time.Minute, kind+" series in VictoriaMetrics", func() error {
			if n := len(vm.export(t, sel, start.Add(-time.Minute), time.Now())); n == 0 {
				return fmt.Errorf("none yet")
			}
			return nil
		})
	}

	// A window of normal operation.
	time.Sleep(time.Until(start.Add(75 * time.Second)))
	end := time.Now().Add(-15 * time.Second)
	// The queues send on their own schedule: compare once the receiver holds
	// samples past the window, not while the window's last batch is in flight.
	vm.waitFor(t, "VictoriaMetrics caught up with the steady window", end.Add(5*time.Second))
	compareWindow(t, "steady", km2, vm, kinds, end.Add(-45*time.Second), end)

	// The receiver stopped for two minutes while scraping goes on.
	outageStart := time.Now()
	vm.signal(t, syscall.SIGSTOP)
	time.Sleep(2 * time.Minute)
	vm.signal(t, syscall.SIGCONT)
	outageEnd := time.Now()
	vm.waitFor(t, "VictoriaMetrics caught up after the outage", outageEnd.Add(5*time.Second))
	compareWindow(t, "over the outage", km2, vm, kinds, outageStart.Add(-10*time.Second), outageEnd)
	metrics, err := km2.raw("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if failed := sumMetric(string(metrics), "prometheus_remote_storage_samples_failed_total", `remote_name="vm"`); failed != 0 {
		t.Errorf("%v samples failed to reach VictoriaMetrics", failed)
	}
	if retried := sumMetric(string(metrics), "prometheus_remote_storage_samples_retried_total", `remote_name="vm"`); retried == 0 {
		t.Errorf("no sample was retried: the outage did not happen")
	}

	t.Run("a receiver answering 400 is counted and logged, nothing else", func(t *testing.T) {
		if failed := sumMetric(string(metrics), "prometheus_remote_storage_samples_failed_total", `remote_name="refusing"`); failed == 0 || refused.Load() == 0 {
			t.Errorf("refused batches: %d requests, %v samples counted failed", refused.Load(), failed)
		}
		log, _ := os.ReadFile(filepath.Join(state, "logs", "kmetrics-remote-write.log"))
		if !bytes.Contains(log, []byte("refusing")) || !bytes.Contains(log, []byte("400")) {
			t.Errorf("the log does not name the refusing receiver and its 400")
		}
		if _, err := km2.raw("/apis/metrics.k8s.io/v1beta1/nodes"); err != nil {
			t.Errorf("metrics.k8s.io: %v", err)
		}
	})

	t.Run("kmetrics restarted during an outage", func(t *testing.T) {
		down := time.Now()
		vm.signal(t, syscall.SIGSTOP)
		time.Sleep(20 * time.Second)
		km2.stop(syscall.SIGTERM)
		km2.start()
		time.Sleep(20 * time.Second)
		vm.signal(t, syscall.SIGCONT)
		up := time.Now()
		vm.waitFor(t, "VictoriaMetrics receives again after the restart", up.Add(5*time.Second))
		sel := `{job="kubelet"}`
		// Prometheus' WAL watcher starts at the restart (prometheus#8809):
		// kmetrics sends the gap from its TSDB once the receiver is back.
		eventually(t, 2*time.Minute, "every kubelet sample of the outage in VictoriaMetrics", func() error {
			local := rawSamples(t, km2, sel, down, up)
			remote := vm.export(t, sel, down, up)
			lost, total := 0, 0
			for series, pts := range local {
				total += len(pts)
				have := map[int64]bool{}
				for _, p := range remote[series] {
					have[p.t] = true
				}
				for _, p := range pts {
					if !have[p.t] {
						lost++
					}
				}
			}
			if total == 0 {
				return fmt.Errorf("kmetrics stored no kubelet samples during the outage")
			}
			if lost > 0 {
				return fmt.Errorf("%d of %d kubelet samples of the %v outage not in VictoriaMetrics", lost, total, up.Sub(down).Round(time.Second))
			}
			t.Logf("restart during a %v outage: all %d kubelet samples of it reached VictoriaMetrics", up.Sub(down).Round(time.Second), total)
			return nil
		})
		// The gap's samples may have arrived while the backfill still sends
		// other series: the counter follows request by request.
		eventually(t, time.Minute, "the gap sent from the TSDB (backfill)", func() error {
			metrics, err := km2.raw("/metrics")
			if err != nil {
				return err
			}
			if n := sumMetric(string(metrics), "kmetrics_remote_write_backfilled_samples_total"); n == 0 {
				return fmt.Errorf("nothing was backfilled: the gap was not there, or not sent from the TSDB")
			}
			return nil
		})
	})
}

type vmPoint struct {
	t int64
	v float64
}

type victoriaMetrics struct {
	port string
	cmd  *exec.Cmd
}

// startVictoriaMetrics runs VictoriaMetrics single-node; extra flags come
// last (and win).
func startVictoriaMetrics(t *testing.T, bin string, extra ...string) *victoriaMetrics {
	t.Helper()
	port := freePort(t)
	logf, err := os.Create(filepath.Join(state, "logs", "victoria-metrics.log"))
	if err != nil {
		t.Fatal(err)
	}
	// A batch VictoriaMetrics stored but could not acknowledge (stopped)
	// is sent again: at least once. Identical samples are one.
	cmd := exec.Command(bin, "-httpListenAddr=127.0.0.1:"+port, "-storageDataPath="+t.TempDir(),
		"-search.latencyOffset=0", "-dedup.minScrapeInterval=1ms", "-loggerLevel=WARN")
	cmd.Args = append(cmd.Args, extra...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		logTailOnFailure(t, logf.Name())
	})
	eventually(t, time.Minute, "VictoriaMetrics healthy", func() error {
		_, err := httpGet(http.DefaultClient, "http://127.0.0.1:"+port+"/health")
		return err
	})
	return &victoriaMetrics{port: port, cmd: cmd}
}

func (v *victoriaMetrics) signal(t *testing.T, sig syscall.Signal) {
	if err := v.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// export reads the raw samples of the series matching sel in [from, to],
// by series (labels without the external label cluster).
func (v *victoriaMetrics) export(t *testing.T, sel string, from, to time.Time) map[string][]vmPoint {
	t.Helper()
	u := fmt.Sprintf("http://127.0.0.1:%s/api/v1/export?match[]=%s&start=%d&end=%d", v.port, url.QueryEscape(sel), from.UnixMilli(), to.UnixMilli())
	body, err := httpGet(&http.Client{Timeout: 30 * time.Second}, u)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]vmPoint{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []json.RawMessage `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("VictoriaMetrics export: %v", err)
		}
		if line.Metric["cluster"] != "e2e" {
			t.Errorf("series without the external label: %v", line.Metric)
		}
		delete(line.Metric, "cluster")
		key := labelString(line.Metric)
		for i, raw := range line.Values {
			// A staleness marker is exported as null; VictoriaMetrics keeps
			// no other NaN.
			var f *float64
			if json.Unmarshal(raw, &f) != nil || f == nil || math.IsNaN(*f) {
				continue
			}
			out[key] = append(out[key], vmPoint{line.Timestamps[i], *f})
		}
	}
	for k, pts := range out {
		sort.SliceStable(pts, func(i, j int) bool { return pts[i].t < pts[j].t })
		// A retried batch VictoriaMetrics had stored: the same sample
		// twice (at-least-once delivery); a different value is kept and
		// fails the comparison.
		uniq := pts[:0]
		for i, p := range pts {
			if i > 0 && p == pts[i-1] {
				continue
			}
			uniq = append(uniq, p)
		}
		out[k] = uniq
	}
	return out
}

// waitFor waits until VictoriaMetrics holds kmetrics' own samples up to
// after (the queue has caught up).
func (v *victoriaMetrics) waitFor(t *testing.T, what string, after time.Time) {
	t.Helper()
	eventually(t, 3*time.Minute, what, func() error {
		var newest int64
		for _, pts := range v.export(t, `{job="kmetrics"}`, time.Now().Add(-10*time.Minute), time.Now()) {
			newest = max(newest, pts[len(pts)-1].t)
		}
		if time.UnixMilli(newest).Before(after) {
			return fmt.Errorf("newest sample at %v", time.UnixMilli(newest).Format(time.TimeOnly))
		}
		return nil
	})
}

// rawSamples reads the raw samples of sel in [from, to] from kmetrics' own
// query API (a range selector evaluated at to).
func rawSamples(t *testing.T, k *secondKmetrics, sel string, from, to time.Time) map[string][]vmPoint {
	t.Helper()
	window := to.Sub(from).Truncate(time.Millisecond)
	// A range selector is open on the left: start 1 ms earlier.
	expr := fmt.Sprintf("%s[%dms]", sel, window.Milliseconds()+1)
	body, err := k.query(fmt.Sprintf("/api/v1/query?query=%s&time=%.3f", url.QueryEscape(expr), float64(to.UnixMilli())/1000))
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	out := map[string][]vmPoint{}
	for _, r := range resp.Data.Result {
		key := labelString(r.Metric)
		for _, p := range r.Values {
			ts, _ := p[0].(float64)
			s, _ := p[1].(string)
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(f) {
				continue // NaN values are not compared: VictoriaMetrics keeps none
			}
			out[key] = append(out[key], vmPoint{int64(math.Round(ts * 1000)), f})
		}
	}
	return out
}

// compareWindow checks, for every kind of series, that VictoriaMetrics
// holds exactly kmetrics' raw samples of [from, to].
func compareWindow(t *testing.T, what string, k *secondKmetrics, vm *victoriaMetrics, kinds map[string]string, from, to time.Time) {
	t.Helper()
	for kind, sel := range kinds {
		// The queues' shards deliver on their own schedules: a series of
		// another shard can still be in flight when the receiver already
		// holds newer samples of others. Compare until they agree; a
		// difference that lasts a minute is a real one.
		var series, samples int
		eventually(t, time.Minute, what+", "+kind+": VictoriaMetrics holds kmetrics' raw samples", func() error {
			local := rawSamples(t, k, sel, from, to)
			remote := vm.export(t, sel, from, to)
			var diffs []string
			series, samples = len(local), 0
			for name, pts := range local {
				samples += len(pts)
				if !sameSamples(pts, remote[name]) {
					diffs = append(diffs, fmt.Sprintf("%s: kmetrics %v, VictoriaMetrics %v", name, pts, remote[name]))
				}
			}
			for name := range remote {
				if _, ok := local[name]; !ok {
					diffs = append(diffs, name+": only in VictoriaMetrics")
				}
			}
			if samples == 0 {
				return fmt.Errorf("kmetrics has no samples in the window")
			}
			if len(diffs) > 0 {
				sort.Strings(diffs)
				return fmt.Errorf("%d of %d series differ, e.g.\n  %s", len(diffs), len(local), strings.Join(diffs[:min(3, len(diffs))], "\n  "))
			}
			return nil
		})
		t.Logf("%s, %s: %d series, %d samples equal", what, kind, series, samples)
	}
}

// sameSamples: same timestamps, values equal up to VictoriaMetrics'
// decimal encoding of floats (12 significant digits and more are kept).
func sameSamples(a, b []vmPoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].t != b[i].t {
			return false
		}
		if a[i].v != b[i].v && math.Abs(a[i].v-b[i].v) > 1e-12*math.Max(math.Abs(a[i].v), math.Abs(b[i].v)) {
			return false
		}
	}
	return true
}
