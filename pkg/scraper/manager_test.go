package scraper

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A node that leaves is retired (series stale, index forgets it); a
// shutdown retires nothing, so a restart can serve the last scrapes.
func TestLoopsFollowNodesAndShutdownKeepsSeries(t *testing.T) {
	clk := newClock()
	k := newFakeKubelet(t, clk.body("", 2, nil))
	env := newTestEnv(t, k, 1<<20)
	m := env.manager
	m.resolution = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.start(ctx)
	a, b := kubeletNode("a", k), kubeletNode("b", k)
	for _, n := range []string{"a", "b"} {
		node := a
		if n == "b" {
			node = b
		}
		if err := env.nodes.Add(node); err != nil {
			t.Fatal(err)
		}
		m.sync(n)
	}
	waitFor(t, "both nodes scraped", func() error {
		if n, _ := env.index.Size(); n != 2 {
			return fmt.Errorf("%d nodes indexed", n)
		}
		return nil
	})

	if err := env.nodes.Delete(b); err != nil {
		t.Fatal(err)
	}
	m.sync("b")
	waitFor(t, "deleted node retired", func() error {
		if _, ok := env.index.Node("b"); ok {
			return fmt.Errorf("b still indexed")
		}
		for lset, pts := range env.samples(t, eq("node", "b"), eq("__name__", "node_cpu_usage_seconds_total")) {
			if !isStale(pts[len(pts)-1]) {
				return fmt.Errorf("%s not marked stale", lset)
			}
		}
		return nil
	})

	cancel()
	m.shutdown()
	if _, ok := env.index.Node("a"); !ok {
		t.Fatal("shutdown dropped node a from the index")
	}
	for lset, pts := range env.samples(t, eq("node", "a")) {
		if isStale(pts[len(pts)-1]) {
			t.Fatalf("shutdown marked %s stale", lset)
		}
	}
}
