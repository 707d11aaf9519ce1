//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const hostileNS = "e2e-hostile"

// TestHostileTenants attacks kmetrics from every side at once — a pod with
// future timestamps, a pod exposing 200,000 new series every scrape,
// colliding pod labels, a redirect to a kubelet, an endless body and a
// kubelet two hours fast — while the real HPA scales a Deployment in
// another namespace on CPU and kubectl top is polled throughout. Each attack
// must cost its own target only.
func TestHostileTenants(t *testing.T) {
	t.Parallel()
	admin := adminCert(t)
	selfMetric := func(name string, labelParts ...string) float64 {
		code, body := direct(t, "/metrics", "", &admin)
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		return sumMetric(body, name, labelParts...)
	}
	ruleFailuresBefore := selfMetric("prometheus_rule_evaluation_failures_total")
	rssBefore := processRSS(t, km.cmd.Process.Pid)

	// The attackers.
	fleet := startAppFleet(t, hostileNS, "9100")
	fleet.serve("future", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# TYPE evil_metric gauge\nevil_metric 1 %d\n", time.Now().Add(2*time.Hour).UnixMilli())
	})
	var bombScrapes atomic.Int64
	fleet.serve("bomb", func(w http.ResponseWriter, r *http.Request) {
		n := bombScrapes.Add(1)
		var b strings.Builder
		b.Grow(7 << 20)
		for i := 0; i < 200000; i++ {
			fmt.Fprintf(&b, "bomb_series{scrape=\"%d\",id=\"%d\"} 1\n", n, i)
		}
		_, _ = w.Write([]byte(b.String()))
	})
	fleet.serve("collide", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "collide_requests_total 5\n")
	})
	fleet.serve("redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://"+nodeNet+".2:10250/metrics/resource", http.StatusFound)
	})
	fleet.serve("endless", func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("endless_metric 1\n", 4096))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	kubectlApply(t, hostileManifest())
	fast := startTestKubelet(t, "e2e-fast-kubelet", nodeNet+".50", func(w http.ResponseWriter, r *http.Request) {
		ts := time.Now().Add(2 * time.Hour).UnixMilli()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "node_cpu_usage_seconds_total %g %d\nnode_memory_working_set_bytes 1e9 %d\n"+
			"container_cpu_usage_seconds_total{container=\"main\",namespace=\"ghost\",pod=\"ghost\"} %g %d\n"+
			"container_memory_working_set_bytes{container=\"main\",namespace=\"ghost\",pod=\"ghost\"} 1e6 %d\n",
			float64(ts)/1e5, ts, ts, float64(ts)/1e5, ts, ts)
	})

	// The victim: an HPA on CPU in another namespace scales 1→4→1.
	const victimNS = "e2e-victim"
	deployment(t, victimNS, "victim", 1, "250m", "64Mi", "100m")
	eventually(t, 90*time.Second, "the victim pod served", podsServed(victimNS, 1))
	// From now on: kubectl top and the HPA's list answer, with fresh
	// timestamps, every 2 s.
	poll := startPoller(2*time.Second, freshMetrics)
	defer poll.stop()

	eventually(t, 90*time.Second, "every attacker scraped at least twice", func() error {
		if n := bombScrapes.Load(); n < 2 {
			return fmt.Errorf("bomb scraped %d times", n)
		}
		return nil
	})
	mustKubectl(t, "-n", victimNS, "autoscale", "deployment", "victim", "--cpu-percent=50", "--min=1", "--max=4")
	eventually(t, 3*time.Minute, "the victim's HPA scales up to 4", replicasOf(victimNS, "victim", "4"))
	mustKubectl(t, "-n", victimNS, "annotate", "pods", "-l", "app=victim", "kwok.x-k8s.io/usage-cpu=10m", "--overwrite")
	eventually(t, 3*time.Minute, "the victim's HPA scales down to 1", replicasOf(victimNS, "victim", "1"))
	if failed := mustKubectl(t, "-n", victimNS, "get", "events", "--field-selector", "involvedObject.kind=HorizontalPodAutoscaler,reason=FailedGetResourceMetric",
		"-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}"); failed != "" {
		t.Errorf("the victim's HPA failed to get metrics:\n%s", failed)
	}
	polls, pollErrs := poll.stop()
	if len(pollErrs) > 0 {
		t.Errorf("%d of %d polls of the metrics API failed or were stale:\n%s", len(pollErrs), polls, strings.Join(pollErrs, "\n"))
	}
	t.Logf("metrics API polled %d times during the attacks", polls)

	t.Run("future timestamps are stored at scrape time", func(t *testing.T) {
		ts := queryScalar(t, `max(timestamp(evil_metric{namespace="`+hostileNS+`"}))`)
		if ts < 0 {
			t.Fatal("evil_metric not stored")
		}
		if now := float64(time.Now().Unix()); ts > now+1 {
			t.Fatalf("evil_metric stored at %v, %v s in the future", ts, ts-now)
		}
		if fails := selfMetric("prometheus_rule_evaluation_failures_total"); fails > ruleFailuresBefore {
			t.Errorf("rule evaluations failed during the attacks: %v → %v", ruleFailuresBefore, fails)
		}
	})
	t.Run("the cardinality bomb is refused whole and named", func(t *testing.T) {
		if v := queryScalar(t, `count({__name__="bomb_series"})`); v > 0 {
			t.Errorf("%v bomb series stored", v)
		}
		refused := selfMetric("kmetrics_scrape_application_refused_total", `namespace="`+hostileNS+`"`, `pod="bomb-`, `reason="series_budget"`)
		if refused < 1 {
			t.Errorf("no refused scrape of the bomb pod counted")
		}
		if held := selfMetric("kmetrics_storage_application_series", `namespace="`+hostileNS+`"`); held > 20000 {
			t.Errorf("namespace %s holds %v series, over its budget", hostileNS, held)
		}
		log, _ := os.ReadFile(km.log)
		if !strings.Contains(string(log), `"Refused an application scrape"`) || !strings.Contains(string(log), `pod="bomb-`) {
			t.Errorf("the log does not name the bomb pod")
		}
		rss := processRSS(t, km.cmd.Process.Pid)
		t.Logf("kmetrics RSS %d MB before the attacks, %d MB after %d bomb scrapes", rssBefore>>20, rss>>20, bombScrapes.Load())
		if rss-rssBefore > 512<<20 {
			t.Errorf("RSS grew by %d MB during the attacks", (rss-rssBefore)>>20)
		}
	})
	t.Run("colliding pod labels do not cost the pod its scrapes", func(t *testing.T) {
		if up := queryScalar(t, `max(up{namespace="`+hostileNS+`",app="collide"})`); up != 1 {
			t.Errorf("collide up = %v, want 1", up)
		}
		if v := queryScalar(t, `max(collide_requests_total{namespace="`+hostileNS+`"})`); v != 5 {
			t.Errorf("collide_requests_total = %v, want 5", v)
		}
	})
	t.Run("a redirect to a kubelet is not followed", func(t *testing.T) {
		if up := queryScalar(t, `max(up{namespace="`+hostileNS+`",app="redirect"})`); up != 0 {
			t.Errorf("redirect up = %v, want 0", up)
		}
		if v := queryScalar(t, `count(container_cpu_usage_seconds_total{job="kubernetes-pods"})`); v > 0 {
			t.Errorf("%v kubelet series stored under an application's labels", v)
		}
	})
	t.Run("an endless body is cut", func(t *testing.T) {
		if up := queryScalar(t, `max(up{namespace="`+hostileNS+`",app="endless"})`); up != 0 {
			t.Errorf("endless up = %v, want 0", up)
		}
		if v := queryScalar(t, `count(endless_metric)`); v > 0 {
			t.Errorf("%v endless series stored", v)
		}
	})
	t.Run("a kubelet two hours fast affects its node alone", func(t *testing.T) {
		ahead := selfMetric("kmetrics_kubelet_clock_ahead_seconds", `node="`+fast.node+`"`)
		if ahead < 7000 || ahead > 7300 {
			t.Errorf("clock ahead of %s = %v s, want ≈7200", fast.node, ahead)
		}
		code, _ := direct(t, "/apis/metrics.k8s.io/v1beta1/nodes/"+fast.node, "", &admin)
		if code != http.StatusNotFound {
			t.Errorf("the fast node's metrics: %d, want 404", code)
		}
		if v := queryScalar(t, `count(node_cpu_usage_seconds_total{node="`+fast.node+`"})`); v > 0 {
			t.Errorf("the fast node's samples were stored")
		}
		rows := parseTop(mustKubectl(t, "top", "nodes"))
		served := 0
		for _, r := range rows {
			if strings.HasPrefix(r["NAME"], "kwok-node-") {
				served++
			}
		}
		if served != nodeCount {
			t.Errorf("kubectl top nodes serves %d kwok nodes, want %d:\n%v", served, nodeCount, rows)
		}
	})
}

func hostileManifest() string {
	var b strings.Builder
	for _, app := range []string{"future", "bomb", "collide", "redirect", "endless"} {
		labels := ""
		if app == "collide" {
			labels = "app.kubernetes.io/name: collide-a, app_kubernetes_io_name: collide-b"
		}
		b.WriteString(scrapedDeployment(hostileNS, app, 1, labels))
	}
	return b.String()
}

// freshMetrics lists every pod's metrics as kubectl top and the HPA do and
// checks that the list is there and every timestamp is recent.
func freshMetrics() error {
	out, err := kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/pods")
	if err != nil {
		return err
	}
	var list struct {
		Items []struct {
			Metadata  struct{ Namespace, Name string }
			Timestamp time.Time
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return err
	}
	if len(list.Items) == 0 {
		return fmt.Errorf("no pod metrics at all")
	}
	for _, it := range list.Items {
		if age := time.Since(it.Timestamp); age > 4*resolution {
			return fmt.Errorf("pod %s/%s: timestamp %v old", it.Metadata.Namespace, it.Metadata.Name, age.Round(time.Second))
		}
	}
	if _, err := kubectl("top", "pods", "-A"); err != nil {
		return err
	}
	return nil
}

// sumMetric adds up the samples of a metric in a text exposition whose
// labels contain every one of labelParts.
func sumMetric(body, name string, labelParts ...string) float64 {
	sum := 0.0
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, p := range labelParts {
			ok = ok && strings.Contains(line, p)
		}
		if !ok {
			continue
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil && !math.IsNaN(v) {
			sum += v
		}
	}
	return sum
}

// processRSS reads a process's resident set size in bytes.
func processRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
