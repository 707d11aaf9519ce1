package scraper

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/metrics-server/pkg/utils"

	"github.com/kmetrics/kmetrics/pkg/provider"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

// steadyCPU: container c of pod p runs at (p+1)*100m + c*10m.
func steadyCPU(ts int64) func(p, c int) float64 {
	return func(p, c int) float64 { return float64(ts) / 1000 * (float64(p+1)*0.1 + float64(c)*0.01) }
}

// clock serves bodies whose timestamps advance 15s per request.
type clock struct{ ts atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ts.Store(time.Now().Add(-time.Minute).UnixMilli())
	return c
}

func (c *clock) body(prefix string, pods int, mutate func([]byte) []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ts := c.ts.Load()
		b := kubeletBody(prefix, pods, 2, ts, steadyCPU(ts))
		if mutate != nil {
			b = mutate(b)
		}
		serveBody(b)(w, r)
	}
}

func (c *clock) tick() { c.ts.Add(15000) }

func TestBadKubeletsFailOnlyThemselves(t *testing.T) {
	clk := newClock()
	ctx := context.Background()
	kubelets := map[string]http.HandlerFunc{
		"good": clk.body("", 3, nil),
		// A container series without its container label: skipped, the
		// node's other series still served.
		"labelless": clk.body("l-", 3, func(b []byte) []byte {
			return append(b, "container_cpu_usage_seconds_total{namespace=\"x\",pod=\"y\"} 1\n"...)
		}),
		"slow": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		},
		"error500": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) },
		"garbage":  serveBody([]byte("<html>this is { not prometheus\n")),
		"empty":    serveBody(nil),
		// Valid first half, then garbage: nothing of it may be stored.
		"garbage-tail": clk.body("g-", 3, func(b []byte) []byte { return append(b[:len(b)/2:len(b)/2], "\n}{ garbage\n"...) }),
		"nul": clk.body("n-", 3, func(b []byte) []byte {
			b = append([]byte(nil), b...)
			b[len(b)/2] = 0
			return b
		}),
		// Announces more bytes than it sends, then closes: a cut transfer.
		"truncated": func(w http.ResponseWriter, r *http.Request) {
			b := kubeletBody("t-", 3, 2, clk.ts.Load(), steadyCPU(clk.ts.Load()))
			w.Header().Set("Content-Length", "100000")
			_, _ = w.Write(b[:len(b)/2])
		},
		"oversized": clk.body("o-", 400, nil),
		"wrong-token": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=metrics)", http.StatusForbidden)
		},
	}
	var env *testEnv
	names := []string{}
	for name, h := range kubelets {
		k := newFakeKubelet(t, h)
		if env == nil {
			env = newTestEnv(t, k, 64<<10)
		}
		if err := env.nodes.Add(kubeletNode(name, k)); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}

	targets := map[string]*target{}
	for round := 0; round < 2; round++ {
		for _, name := range names {
			targets[name] = env.manager.scrapeNode(ctx, name, targets[name])
		}
		clk.tick()
	}

	served := map[string]bool{"good": true, "labelless": true}
	res := provider.NewResourceProvider(env.index, 15*time.Second)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			nm, err := res.GetNodeMetrics(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(nm) == 1; got != served[name] {
				t.Fatalf("node served = %v, want %v", got, served[name])
			}
			up := env.samples(t, eq("__name__", "up"), eq("node", name))
			if len(up) != 1 {
				t.Fatalf("want one up series, got %v", up)
			}
			for _, pts := range up {
				want := 0.0
				if served[name] {
					want = 1
				}
				if last := pts[len(pts)-1]; last.V != want {
					t.Fatalf("up = %v, want %v", last.V, want)
				}
			}
			stored := env.samples(t, eq("__name__", "container_cpu_usage_seconds_total"), eq("node", name))
			if !served[name] && len(stored) != 0 {
				t.Fatalf("a failed scrape stored %d container series", len(stored))
			}
			if served[name] && len(stored) < 6 {
				t.Fatalf("stored %d container CPU series, want ≥ 6", len(stored))
			}
		})
	}
	// The good node's pods carry the expected rate: pod-2/c1 = 300m + 10m.
	pm, _ := res.GetPodMetrics(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "ns2", Name: "pod-2"}})
	if len(pm) != 1 {
		t.Fatalf("pod-2 not served: %v", pm)
	}
	for _, c := range pm[0].Containers {
		want := int64(300_000_000)
		if c.Name == "c1" {
			want = 310_000_000
		}
		// Nanocores from float counters: allow a microcore of rounding.
		if got := c.Usage.Cpu().ScaledValue(-9); got < want-1000 || got > want+1000 {
			t.Errorf("container %s cpu = %dn, want %dn", c.Name, got, want)
		}
	}
	if pm[0].Window.Duration != 15*time.Second {
		t.Errorf("window = %v, want 15s", pm[0].Window.Duration)
	}
}

func TestDisappearedSeriesAreMarkedStaleAndPruned(t *testing.T) {
	clk := newClock()
	pods := atomic.Int64{}
	pods.Store(3)
	k := newFakeKubelet(t, func(w http.ResponseWriter, r *http.Request) {
		clk.body("", int(pods.Load()), nil)(w, r)
	})
	env := newTestEnv(t, k, 1<<20)
	if err := env.nodes.Add(kubeletNode("n1", k)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tg := env.manager.scrapeNode(ctx, "n1", nil)
	clk.tick()
	pods.Store(2) // pod-2 deleted
	env.manager.scrapeNode(ctx, "n1", tg)

	if _, ok := env.index.Pod("ns2", "pod-2"); ok {
		t.Fatal("deleted pod still in the index")
	}
	if _, ok := env.index.Pod("ns1", "pod-1"); !ok {
		t.Fatal("remaining pod missing from the index")
	}
	gone := env.samples(t, eq("__name__", "container_memory_working_set_bytes"), eq("pod", "pod-2"))
	if len(gone) != 2 {
		t.Fatalf("want 2 series of pod-2, got %d", len(gone))
	}
	for lset, pts := range gone {
		if !isStale(pts[len(pts)-1]) {
			t.Errorf("%s: last sample %v is not a staleness marker", lset, pts[len(pts)-1])
		}
	}
}

func TestRestartServesFromDiskWithoutAnotherScrape(t *testing.T) {
	clk := newClock()
	k := newFakeKubelet(t, clk.body("", 4, nil))
	dir := t.TempDir()
	env := newTestEnvAt(t, dir, k, 1<<20)
	if err := env.nodes.Add(kubeletNode("n1", k)); err != nil {
		t.Fatal(err)
	}
	tg := env.manager.scrapeNode(context.Background(), "n1", nil)
	clk.tick()
	env.manager.scrapeNode(context.Background(), "n1", tg)
	before, _ := provider.NewResourceProvider(env.index, 15*time.Second).GetPodMetrics(podMeta("ns3", "pod-3"))
	if err := env.db.Close(); err != nil {
		t.Fatal(err)
	}
	requests := k.requests.Load()

	db, err := storage.Open(storage.Options{Path: dir}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	index := storage.NewIndex()
	now := time.Now()
	if err := storage.RebuildIndex(context.Background(), db, index, now.Add(-10*time.Minute).UnixMilli(), now.Add(time.Minute).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	after, _ := provider.NewResourceProvider(index, 15*time.Second).GetPodMetrics(podMeta("ns3", "pod-3"))
	if k.requests.Load() != requests {
		t.Fatal("the kubelet was scraped again")
	}
	if len(before) != 1 || len(after) != 1 {
		t.Fatalf("pod served before=%d after=%d, want 1 and 1", len(before), len(after))
	}
	b, a := before[0], after[0]
	if !b.Timestamp.Equal(&a.Timestamp) || b.Window != a.Window {
		t.Errorf("timestamp/window changed over restart: %v/%v → %v/%v", b.Timestamp, b.Window, a.Timestamp, a.Window)
	}
	for i := range b.Containers {
		if b.Containers[i].Usage.Cpu().Cmp(*a.Containers[i].Usage.Cpu()) != 0 || b.Containers[i].Usage.Memory().Cmp(*a.Containers[i].Usage.Memory()) != 0 {
			t.Errorf("container %s usage changed over restart: %v → %v", b.Containers[i].Name, b.Containers[i].Usage, a.Containers[i].Usage)
		}
	}
}

func podMeta(ns, name string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func TestEndpoint(t *testing.T) {
	node := func(mod func(*corev1.Node)) *corev1.Node {
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "n"},
			Status: corev1.NodeStatus{
				Addresses: []corev1.NodeAddress{
					{Type: corev1.NodeHostName, Address: "n.example"},
					{Type: corev1.NodeExternalIP, Address: "203.0.113.7"},
					{Type: corev1.NodeInternalIP, Address: "10.1.2.3"},
				},
				DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10255}},
			},
		}
		if mod != nil {
			mod(n)
		}
		return n
	}
	tests := []struct {
		name        string
		types       []corev1.NodeAddressType
		useStatus   bool
		node        *corev1.Node
		want        string
		wantErrPart string
	}{
		{name: "internal IP first", types: []corev1.NodeAddressType{"InternalIP", "ExternalIP", "Hostname"}, node: node(nil), want: "https://10.1.2.3:10250/metrics/resource"},
		{name: "preference order", types: []corev1.NodeAddressType{"Hostname", "InternalIP"}, node: node(nil), want: "https://n.example:10250/metrics/resource"},
		{name: "node status port", types: []corev1.NodeAddressType{"InternalIP"}, useStatus: true, node: node(nil), want: "https://10.1.2.3:10255/metrics/resource"},
		{name: "status port zero falls back", types: []corev1.NodeAddressType{"InternalIP"}, useStatus: true,
			node: node(func(n *corev1.Node) { n.Status.DaemonEndpoints.KubeletEndpoint.Port = 0 }), want: "https://10.1.2.3:10250/metrics/resource"},
		{name: "path annotation", types: []corev1.NodeAddressType{"InternalIP"},
			node: node(func(n *corev1.Node) {
				n.Annotations = map[string]string{AnnotationResourceMetricsPath: "/metrics/nodes/n/metrics/resource"}
			}), want: "https://10.1.2.3:10250/metrics/nodes/n/metrics/resource"},
		{name: "IPv6", types: []corev1.NodeAddressType{"InternalIP"},
			node: node(func(n *corev1.Node) {
				n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "fd00::5"}}
			}), want: "https://[fd00::5]:10250/metrics/resource"},
		{name: "no usable address", types: []corev1.NodeAddressType{"InternalDNS"}, node: node(nil), wantErrPart: "address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &kubeletClient{scheme: "https", defaultPort: 10250, useNodeStatusPort: tc.useStatus}
			c.resolver = utils.NewPriorityNodeAddressResolver(tc.types)
			got, _, _, err := c.endpoint(tc.node)
			if tc.wantErrPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrPart) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErrPart)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("endpoint = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestReadLimited(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 1000)
	if got, err := readLimited(bytes.NewReader(body), nil, 1000, "--flag"); err != nil || len(got) != 1000 {
		t.Fatalf("at the limit: %d bytes, %v", len(got), err)
	}
	if _, err := readLimited(bytes.NewReader(body), nil, 999, "--flag"); err == nil {
		t.Fatal("over the limit: no error")
	}
}
