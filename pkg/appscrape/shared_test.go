package appscrape

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/kubernetes"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	corev1 "k8s.io/api/core/v1"
)

// A monitor's discovery over the shared informers sees only the namespaces
// it selects, marks the monitor's namespace as the tenant (a monitor in
// "team-a" selecting "team-b"'s pods spends team-a's budget), and leaves no
// event handler behind on the shared informers when it stops (monitors
// change often; every change restarts their discoverers).
func TestSharedDiscoveryScopeTenantAndCleanup(t *testing.T) {
	inA := appPod("web-a", "10.0.0.1", corev1.PodRunning, nil, nil, 8080)
	inA.Namespace = "team-a"
	inB := appPod("web-b", "10.0.0.2", corev1.PodRunning, nil, nil, 8080)
	inB.Namespace = "team-b"
	inf, _ := startInformers(t, inA, inB)

	sd := &informerSD{role: kubernetes.RolePod, namespaces: []string{"team-b"}, tenant: "team-a", informers: inf}
	d, err := sd.NewDiscoverer(discovery.DiscovererOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan []*targetgroup.Group, 10)
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx, ch) }()

	seen := map[string]*targetgroup.Group{}
	deadline := time.After(10 * time.Second)
	for seen["pod/team-a/web-a"] == nil || seen["pod/team-b/web-b"] == nil {
		select {
		case groups := <-ch:
			for _, g := range groups {
				seen[g.Source] = g
			}
		case <-deadline:
			t.Fatalf("discovered only %v", seen)
		}
	}
	if g := seen["pod/team-a/web-a"]; len(g.Targets) != 0 {
		t.Errorf("a pod outside the monitor's namespaces is a target: %v", g)
	}
	if g := seen["pod/team-b/web-b"]; len(g.Targets) != 1 || g.Labels[metaTenant] != "team-a" {
		t.Errorf("the selected pod: %v, want one target charged to team-a", g)
	}

	cancel()
	<-done
	for _, tr := range d.(*sharedDiscoverer).tracked {
		if len(tr.regs) != 0 {
			t.Errorf("%d event handlers left on a shared informer", len(tr.regs))
		}
	}
}
