//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

const haNS = "e2e-ha"

// quantity reads a Kubernetes quantity ("250m", "64Mi").
func quantity(t *testing.T, s string) float64 {
	t.Helper()
	q, err := resource.ParseQuantity(s)
	if err != nil {
		t.Fatalf("quantity %q: %v", s, err)
	}
	return q.AsApproximateFloat64()
}

// vmScalar runs an instant query on VictoriaMetrics and returns its one value.
func vmScalar(t *testing.T, vm *victoriaMetrics, expr string) float64 {
	t.Helper()
	body, err := httpGet(http.DefaultClient, "http://127.0.0.1:"+vm.port+"/api/v1/query?query="+url.QueryEscape(expr))
	if err != nil {
		t.Fatal(err)
	}
	return firstValue(t, body)
}

// firstValue reads the value of a one-element instant vector.
func firstValue(t *testing.T, body []byte) float64 {
	t.Helper()
	var resp struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || len(resp.Data.Result) != 1 {
		t.Fatalf("want one value: %s (%v)", body, err)
	}
	s, _ := resp.Data.Result[0].Value[1].(string)
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// TestHAPair puts two kmetrics behind the APIServices through a real L4
// load balancer (haproxy) and SIGKILLs one while the real HPA scales a
// Deployment on CPU and another on a custom metric: kubectl top and both
// HPAs keep working, and the two replicas' remote write to one
// VictoriaMetrics with deduplication holds one copy. It runs alone (not
// parallel): it takes the APIServices' port from the shared kmetrics.
func TestHAPair(t *testing.T) {
	vmBin := peerBinary(t, "VICTORIAMETRICS_BIN", "hack/build-victoriametrics.sh")
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy (Debian) not installed: hack/build-cluster-bins.sh installs it")
	}
	// One sample per series per scrape interval, whichever replica sent it.
	vm := startVictoriaMetrics(t, vmBin, "-dedup.minScrapeInterval="+resolution.String())
	dir := t.TempDir()
	rw := filepath.Join(dir, "remote-write.yml")
	// Identical labels from both replicas: VictoriaMetrics deduplicates them.
	if err := os.WriteFile(rw, []byte(fmt.Sprintf("global: {external_labels: {cluster: e2e}}\nremote_write:\n"+
		"- url: http://127.0.0.1:%s/api/v1/write\n  queue_config: {batch_send_deadline: 1s, max_backoff: 2s}\n", vm.port)), 0o600); err != nil {
		t.Fatal(err)
	}

	// The shared kmetrics gives up the APIServices' port to the balancer,
	// and is back for the tests after this one.
	km.stop(syscall.SIGTERM)
	var lb *exec.Cmd
	defer func() {
		if lb != nil {
			_ = lb.Process.Kill()
			_ = lb.Wait()
		}
		var err error
		if km, err = startKmetrics(); err != nil {
			t.Fatalf("restarting the shared kmetrics: %v", err)
		}
	}()
	replicaArgs := []string{"--remote-write.config", rw, "--custom-metrics.config", metricsConfig(), "--custom-metrics.discovery-interval", "5s"}
	started := time.Now()
	a := startSecondKmetrics(t, "ha-a", replicaArgs...)
	b := startSecondKmetrics(t, "ha-b", replicaArgs...)
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global
  maxconn 512
defaults
  mode tcp
  timeout connect 2s
  timeout client 5m
  timeout server 5m
  retries 3
  option redispatch
frontend kmetrics
  bind :%s
  default_backend replicas
backend replicas
  balance roundrobin
  server a 127.0.0.1:%s check inter 1s fall 1 rise 2
  server b 127.0.0.1:%s check inter 1s fall 1 rise 2
`, kmetricsPort, a.port, b.port)), 0o600); err != nil {
		t.Fatal(err)
	}
	lb = exec.Command(haproxy, "-f", cfg, "-db")
	lbLog, _ := os.Create(filepath.Join(state, "logs", "haproxy.log"))
	defer lbLog.Close()
	lb.Stdout, lb.Stderr = lbLog, lbLog
	if err := lb.Start(); err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, "wait", "--for=condition=Available", "apiservice/v1.metrics.k8s.io", "apiservice/v1beta1.metrics.k8s.io", "apiservice/v1beta2.custom.metrics.k8s.io", "--timeout=60s")

	// An HPA on CPU and one on a custom metric, both asked to scale 1 → 4.
	defer func() { _, _ = kubectl("delete", "namespace", haNS, "--wait=false") }()
	deployment(t, haNS, "cpu", 1, "250m", "64Mi", "100m")
	fleet := startAppFleet(t, haNS, "9100")
	fleet.set(35, 0)
	kubectlApply(t, scrapedDeployment(haNS, "web", 1, ""))
	eventually(t, 90*time.Second, "the pods served", podsServed(haNS, 2))
	kubectlApply(t, fmt.Sprintf(`
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: cpu, namespace: %[1]s}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: cpu}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
`, haNS)+"---"+webHPA(haNS))

	// kubectl top, every 2 s, from now on.
	poll := startPoller(2*time.Second, func() error {
		_, err := kubectl("top", "pods", "-n", haNS)
		return err
	})
	defer poll.stop()

	eventually(t, 3*time.Minute, "both HPAs compute their metrics", func() error {
		for _, name := range []string{"cpu", "web"} {
			out, err := kubectl("-n", haNS, "get", "hpa", name, "-o", "jsonpath={.status.currentMetrics}")
			if err != nil || !strings.Contains(out, "current") {
				return fmt.Errorf("hpa %s: no current metrics yet (%v)", name, err)
			}
		}
		return nil
	})
	// Each replica in turn: whichever holds the aggregator's connections
	// is killed once.
	for _, r := range []*secondKmetrics{a, b} {
		r.stop(syscall.SIGKILL)
		t.Logf("replica %s SIGKILLed at %s", r.name, time.Now().Format(time.TimeOnly))
		time.Sleep(15 * time.Second)
		r.start()
		t.Logf("replica %s back at %s", r.name, time.Now().Format(time.TimeOnly))
		time.Sleep(10 * time.Second)
	}

	eventually(t, 3*time.Minute, "the HPA scales cpu to 4", replicasOf(haNS, "cpu", "4"))
	eventually(t, 4*time.Minute, "the HPA scales web to 4", replicasOf(haNS, "web", "4"))
	polls, pollErrs := poll.stop()

	t.Run("kubectl top kept answering", func(t *testing.T) {
		if len(pollErrs) > 1 {
			t.Errorf("%d of %d kubectl top polls failed:\n%s", len(pollErrs), polls, strings.Join(pollErrs, "\n"))
		}
		t.Logf("kubectl top: %d of %d polls failed around the kills", len(pollErrs), polls)
	})
	t.Run("both replicas' metrics.k8s.io answers agree", func(t *testing.T) {
		// A kubelet stamps its resource samples itself, so two replicas
		// that scraped the same sample answer the same. kwok stamps them
		// at the request, so here they may differ by one scrape: the same
		// nodes, CPU within 2 %, timestamps within one resolution.
		type node struct {
			ts       time.Time
			cpu, mem float64
		}
		read := func(r *secondKmetrics) map[string]node {
			body, err := r.raw("/apis/metrics.k8s.io/v1beta1/nodes")
			if err != nil {
				t.Fatal(err)
			}
			var list struct {
				Items []struct {
					Metadata  struct{ Name string } `json:"metadata"`
					Timestamp time.Time             `json:"timestamp"`
					Usage     map[string]string     `json:"usage"`
				} `json:"items"`
			}
			if err := json.Unmarshal(body, &list); err != nil {
				t.Fatal(err)
			}
			out := map[string]node{}
			for _, it := range list.Items {
				out[it.Metadata.Name] = node{it.Timestamp, quantity(t, it.Usage["cpu"]), quantity(t, it.Usage["memory"])}
			}
			return out
		}
		na, nb := read(a), read(b)
		if len(na) == 0 || len(na) != len(nb) {
			t.Fatalf("replica a serves %d nodes, b %d", len(na), len(nb))
		}
		for name, x := range na {
			y, ok := nb[name]
			switch {
			case !ok:
				t.Errorf("%s: served by a only", name)
			case math.Abs(x.cpu-y.cpu) > 0.02*math.Max(x.cpu, y.cpu) || math.Abs(x.mem-y.mem) > 0.02*math.Max(x.mem, y.mem):
				t.Errorf("%s: a cpu %v memory %v, b cpu %v memory %v", name, x.cpu, x.mem, y.cpu, y.mem)
			case x.ts.Sub(y.ts).Abs() > resolution:
				t.Errorf("%s: timestamps %v and %v, more than %v apart", name, x.ts, y.ts, resolution)
			}
		}
	})
	t.Run("at most one failed HPA sync", func(t *testing.T) {
		for _, reason := range []string{"FailedGetResourceMetric", "FailedGetPodsMetric", "FailedComputeMetricsReplicas"} {
			out := mustKubectl(t, "-n", haNS, "get", "events", "--field-selector", "involvedObject.kind=HorizontalPodAutoscaler,reason="+reason,
				"-o", `jsonpath={range .items[*]}{.count} {.lastTimestamp} {.message}{"\n"}{end}`)
			n := 0
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if f := strings.Fields(line); len(f) > 0 {
					c, _ := strconv.Atoi(f[0])
					n += c
				}
			}
			if n > 1 {
				t.Errorf("%s %d times:\n%s", reason, n, out)
			}
		}
	})
	t.Run("VictoriaMetrics holds one copy", func(t *testing.T) {
		// Both replicas send every kubelet series; deduplicated, a series
		// has one sample per interval over the last two minutes, not two.
		vm.waitFor(t, "both replicas' samples in VictoriaMetrics", time.Now().Add(-5*time.Second))
		window := min(2*time.Minute, time.Since(started)).Truncate(time.Second)
		n := vmScalar(t, vm, fmt.Sprintf(`max(count_over_time(node_memory_working_set_bytes{job="kubelet"}[%ds]))`, int(window.Seconds())))
		if perInterval := float64(window/resolution) + 1; n > perInterval {
			t.Errorf("%v samples of one series in %v, more than one per %v (%v): not deduplicated", n, window, resolution, perInterval)
		}
		// A sum over the nodes is one replica's, not doubled.
		remote := vmScalar(t, vm, `sum(last_over_time(node_memory_working_set_bytes{job="kubelet"}[1m]))`)
		body, err := b.query("/api/v1/query?query=" + url.QueryEscape(`sum(last_over_time(node_memory_working_set_bytes{job="kubelet"}[1m]))`))
		if err != nil {
			t.Fatal(err)
		}
		local := firstValue(t, body)
		if remote <= 0 || remote > 1.2*local || remote < 0.8*local {
			t.Errorf("sum of the nodes' memory: VictoriaMetrics %v, a replica %v", remote, local)
		}
		t.Logf("one kubelet series: %v samples in %v from two replicas; node memory sum %v (a replica: %v)", n, window, remote, local)
	})
}
