package scraper

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sync/atomic"
	"testing"
	"time"
)

// cAdvisor scraping (opt-in) stores the allowed series under the kubelet
// job with metrics_path="/metrics/cadvisor", drops denied ones, keeps the
// index fed by /metrics/resource alone, and a failing cAdvisor endpoint ends
// its own series only. A fake kubelet: kwok v0.8 cannot serve
// /metrics/resource and /metrics/cadvisor for the same node at once.
func TestCadvisorScrape(t *testing.T) {
	clk := newClock()
	resource := clk.body("", 2, nil)
	var cadvisorDown atomic.Bool
	k := newFakeKubelet(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics/resource":
			resource(w, r)
		case "/metrics/cadvisor":
			if cadvisorDown.Load() {
				http.Error(w, "cadvisor broken", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			fmt.Fprint(w, `# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="c0",cpu="total",id="/kubepods/pod1/c0",image="app:1",name="c0",namespace="ns0",pod="cadvisor-only"} 12.5
container_cpu_usage_seconds_total{container="",cpu="total",id="/kubepods/pod1",image="",name="",namespace="ns0",pod="cadvisor-only"} 12.5
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="c0",id="/kubepods/pod1/c0",image="app:1",name="c0",namespace="ns0",pod="cadvisor-only"} 1048576
# TYPE container_tasks_state gauge
container_tasks_state{container="c0",namespace="ns0",pod="cadvisor-only",state="running"} 1
# TYPE container_spec_cpu_shares gauge
container_spec_cpu_shares{container="c0",namespace="ns0",pod="cadvisor-only"} 2
`)
		default:
			http.NotFound(w, r)
		}
	})
	env := scrapeNodeA(t, k, &KubeletEndpoint{Name: "cAdvisor", Path: "/metrics/cadvisor", Deny: regexp.MustCompile(`^(?:container_tasks_state|container_spec_.*)$`)})

	cadvisor := eq("metrics_path", "/metrics/cadvisor")
	waitFor(t, "cAdvisor series stored", func() error {
		if n := len(env.samples(t, cadvisor, eq("__name__", "container_memory_working_set_bytes"))); n != 1 {
			return fmt.Errorf("%d working-set series", n)
		}
		return nil
	})
	for lset := range env.samples(t, cadvisor, eq("__name__", "container_memory_working_set_bytes")) {
		want := `{__name__="container_memory_working_set_bytes", container="c0", id="/kubepods/pod1/c0", image="app:1", instance="127.0.0.1:` +
			fmt.Sprint(k.port()) + `", job="kubelet", metrics_path="/metrics/cadvisor", name="c0", namespace="ns0", node="a", pod="cadvisor-only"}`
		if lset != want {
			t.Errorf("series %s\nwant   %s", lset, want)
		}
	}
	if n := len(env.samples(t, cadvisor, eq("__name__", "container_cpu_usage_seconds_total"))); n != 2 {
		t.Errorf("%d cAdvisor CPU series, want 2 (container and pod cgroup)", n)
	}
	for _, denied := range []string{"container_tasks_state", "container_spec_cpu_shares"} {
		if got := env.samples(t, eq("__name__", denied)); len(got) != 0 {
			t.Errorf("denied %s stored: %v", denied, got)
		}
	}
	if _, ok := env.index.Pod("ns0", "cadvisor-only"); ok {
		t.Error("cAdvisor series reached the latest-value index")
	}

	cadvisorDown.Store(true)
	waitFor(t, "a failing cAdvisor endpoint ends its series, not the node's", func() error {
		for _, pts := range env.samples(t, cadvisor, eq("__name__", "container_memory_working_set_bytes")) {
			if !isStale(pts[len(pts)-1]) {
				return fmt.Errorf("not stale yet")
			}
		}
		up := env.samples(t, cadvisor, eq("__name__", "up"))
		for _, pts := range up {
			if pts[len(pts)-1].V != 0 {
				return fmt.Errorf("cadvisor up=%v", pts[len(pts)-1].V)
			}
		}
		return nil
	})
	if _, ok := env.index.Node("a"); !ok {
		t.Error("a cAdvisor failure dropped the node's resource metrics")
	}
}

// With cAdvisor storing container_cpu_usage_seconds_total and the working
// set, the resource endpoint's copies feed the index only: a query that
// filters on neither job nor metrics_path (Lens', Headlamp's) sees each
// container once. A family cAdvisor's allow list leaves out stays stored
// from the resource endpoint.
func TestCadvisorCopiesStoredOnce(t *testing.T) {
	clk := newClock()
	resource := clk.body("", 2, nil)
	k := newFakeKubelet(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics/resource":
			resource(w, r)
		case "/metrics/cadvisor":
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			fmt.Fprint(w, `# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="c0",cpu="total",id="/kubepods/pod1/c0",image="app:1",name="c0",namespace="ns0",pod="p0"} 12.5
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="c0",id="/kubepods/pod1/c0",image="app:1",name="c0",namespace="ns0",pod="p0"} 1048576
`)
		default:
			http.NotFound(w, r)
		}
	})
	env := scrapeNodeA(t, k, &KubeletEndpoint{Name: "cAdvisor", Path: "/metrics/cadvisor",
		Allow:    regexp.MustCompile(`^(?:container_cpu_usage_seconds_total|container_memory_working_set_bytes)$`),
		Replaces: []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_start_time_seconds"}})

	resourcePath := eq("metrics_path", "/metrics/resource")
	waitFor(t, "both endpoints scraped, the index fed", func() error {
		if len(env.samples(t, eq("metrics_path", "/metrics/cadvisor"), eq("__name__", "container_cpu_usage_seconds_total"))) != 1 {
			return fmt.Errorf("no cAdvisor series yet")
		}
		if len(env.samples(t, resourcePath, eq("__name__", "node_cpu_usage_seconds_total"))) != 1 {
			return fmt.Errorf("no node series yet")
		}
		if n, _ := env.index.Size(); n == 0 {
			return fmt.Errorf("index empty")
		}
		return nil
	})
	for name, wantStored := range map[string]bool{
		"container_cpu_usage_seconds_total":  false,
		"container_memory_working_set_bytes": false,
		"container_start_time_seconds":       true, // cAdvisor's allow list leaves it out here
		"pod_cpu_usage_seconds_total":        true,
	} {
		got := env.samples(t, resourcePath, eq("__name__", name))
		if wantStored != (len(got) > 0) {
			t.Errorf("%s from /metrics/resource: %d series stored, want stored=%v", name, len(got), wantStored)
		}
	}
	if _, ok := env.index.Pod("ns0", "p0"); ok {
		t.Error("cAdvisor series reached the latest-value index")
	}
}

// scrapeNodeA runs a manager with the further endpoints eps, scraping node
// "a" (served by k) every 50ms until the test ends.
func scrapeNodeA(t *testing.T, k *fakeKubelet, eps ...*KubeletEndpoint) *testEnv {
	t.Helper()
	env := newTestEnv(t, k, 1<<20)
	m := env.manager
	m.endpoints = eps
	m.resolution = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m.start(ctx)
	if err := env.nodes.Add(kubeletNode("a", k)); err != nil {
		t.Fatal(err)
	}
	m.sync("a")
	t.Cleanup(m.shutdown)
	return env
}
