package apiserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kmetrics/kmetrics/pkg/provider"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

type testServer struct {
	url    string
	client *http.Client
	ready  *atomic.Bool
}

// startServer runs the real generic API server in-process with
// authentication and authorization switched off, serving two nodes and three
// pods whose usage went through the real index and provider.
func startServer(t *testing.T) *testServer {
	t.Helper()
	now := time.Now().Add(-time.Second).UnixMilli()
	index := storage.NewIndex()
	for i, n := range []string{"n1", "n2"} {
		for round, ts := range []int64{now - 15000, now} {
			var cs []storage.ContainerSample
			for j, pod := range []string{"web-1", "web-2", "db-1"} {
				if j%2 != i { // web-1 and db-1 on n1, web-2 on n2
					continue
				}
				cs = append(cs, storage.ContainerSample{Namespace: "shop", Pod: pod, Container: "main",
					CPU: storage.Point{T: ts, V: float64(round) * 15 * 0.1 * float64(j+1)}, HasCPU: true,
					Memory: storage.Point{T: ts, V: 100 << 20}, HasMemory: true})
			}
			index.ObserveNode(n, storage.NodeSample{CPU: storage.Point{T: ts, V: float64(round) * 15 * float64(i+1)}, HasCPU: true,
				Memory: storage.Point{T: ts, V: 1 << 30}, HasMemory: true}, cs)
		}
	}
	nodes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, n := range []string{"n1", "n2"} {
		_ = nodes.Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{"zone": "z-" + n}}})
	}
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, p := range []string{"web-1", "web-2", "db-1"} {
		_ = pods.Add(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: p,
			Labels: map[string]string{"app": strings.Split(p, "-")[0]}}})
	}

	return serve(t, index, nodes, pods)
}

// serve runs the server over the given index and listers.
func serve(t testing.TB, index *storage.Index, nodes, pods cache.Indexer, with ...func(*Deps)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := NewOptions()
	o.SecureServing.Listener = ln
	o.SecureServing.BindPort = ln.Addr().(*net.TCPAddr).Port
	o.SecureServing.ServerCert.CertDirectory = t.TempDir()
	o.DisableAuthForTesting = true
	cfg, err := o.Config(nil)
	if err != nil {
		t.Fatal(err)
	}
	ready := &atomic.Bool{}
	ready.Store(true)
	deps := Deps{
		Resource: provider.NewResourceProvider(index, 15*time.Second),
		Pods:     cache.NewGenericLister(pods, schema.GroupResource{Resource: "pods"}),
		Nodes:    corelisters.NewNodeLister(nodes),
		Ready: []Check{{Name: "test-ready", Fn: func() error {
			if !ready.Load() {
				return errors.New("not ready for the test")
			}
			return nil
		}}},
	}
	for _, f := range with {
		f(&deps)
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.PrepareRun().RunWithContext(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })

	ts := &testServer{
		url: fmt.Sprintf("https://%s", ln.Addr()),
		// The test server's certificate is self-signed for this run.
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}},
		ready:  ready,
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := ts.get(t, "/readyz", ""); code == http.StatusOK {
			return ts
		}
		if time.Now().After(deadline) {
			t.Fatal("server not ready after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *testServer) get(t testing.TB, path, accept string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestMetricsAPI(t *testing.T) {
	s := startServer(t)
	const base = "/apis/metrics.k8s.io/v1beta1"
	type item struct {
		Metadata struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Window     string            `json:"window"`
		Usage      map[string]string `json:"usage"`
		Containers []struct {
			Name  string            `json:"name"`
			Usage map[string]string `json:"usage"`
		} `json:"containers"`
	}
	type list struct {
		Kind  string `json:"kind"`
		Items []item `json:"items"`
	}
	tests := []struct {
		name     string
		path     string
		code     int
		names    []string // items expected, in order
		cpu      string   // first item's CPU (node) or first container's (pod)
		errorHas string
	}{
		{name: "list nodes", path: "/nodes", code: 200, names: []string{"n1", "n2"}, cpu: "1"},
		{name: "get node", path: "/nodes/n2", code: 200, names: []string{"n2"}, cpu: "2"},
		{name: "node label selector", path: "/nodes?labelSelector=zone%3Dz-n2", code: 200, names: []string{"n2"}},
		{name: "node field selector", path: "/nodes?fieldSelector=metadata.name%3Dn1", code: 200, names: []string{"n1"}},
		{name: "missing node", path: "/nodes/n9", code: 404, errorHas: "n9"},
		{name: "list pods in namespace", path: "/namespaces/shop/pods", code: 200, names: []string{"db-1", "web-1", "web-2"}},
		{name: "list pods all namespaces", path: "/pods", code: 200, names: []string{"db-1", "web-1", "web-2"}},
		{name: "pods by label (the HPA's call)", path: "/namespaces/shop/pods?labelSelector=app%3Dweb", code: 200, names: []string{"web-1", "web-2"}, cpu: "100m"},
		{name: "pods by field", path: "/namespaces/shop/pods?fieldSelector=metadata.name%3Dweb-2", code: 200, names: []string{"web-2"}, cpu: "200m"},
		{name: "get pod", path: "/namespaces/shop/pods/db-1", code: 200, names: []string{"db-1"}, cpu: "300m"},
		{name: "missing pod", path: "/namespaces/shop/pods/nope", code: 404, errorHas: "nope"},
		{name: "invalid label selector", path: "/namespaces/shop/pods?labelSelector=app+in+(", code: 400, errorHas: `invalid labelselector \"app in (\"`},
		{name: "unsupported field selector", path: "/namespaces/shop/pods?fieldSelector=spec.nodeName%3Dx", code: 400, errorHas: "field"},
		{name: "malformed field selector", path: "/namespaces/shop/pods?fieldSelector=metadata.name", code: 400, errorHas: "invalid fieldselector"},
		{name: "invalid node selector", path: "/nodes?labelSelector=%3D%3D", code: 400, errorHas: `invalid labelselector \"==\"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := s.get(t, base+tc.path, "")
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			if tc.errorHas != "" {
				if !strings.Contains(strings.ToLower(string(body)), tc.errorHas) {
					t.Fatalf("error body does not mention %q: %s", tc.errorHas, body)
				}
				return
			}
			var items []item
			var l list
			if err := json.Unmarshal(body, &l); err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(l.Kind, "List") {
				items = l.Items
			} else {
				var it item
				_ = json.Unmarshal(body, &it)
				items = []item{it}
			}
			var names []string
			for _, it := range items {
				names = append(names, it.Metadata.Name)
				if it.Window != "15s" {
					t.Errorf("%s: window %q, want 15s", it.Metadata.Name, it.Window)
				}
			}
			if strings.Join(names, ",") != strings.Join(tc.names, ",") {
				t.Fatalf("items %v, want %v", names, tc.names)
			}
			if tc.cpu != "" {
				got := items[0].Usage["cpu"]
				if len(items[0].Containers) > 0 {
					got = items[0].Containers[0].Usage["cpu"]
				}
				if got != tc.cpu {
					t.Errorf("cpu %q, want %q", got, tc.cpu)
				}
			}
		})
	}
}

func TestTableOutputForKubectlGet(t *testing.T) {
	s := startServer(t)
	code, body := s.get(t, "/apis/metrics.k8s.io/v1beta1/nodes", "application/json;as=Table;v=v1;g=meta.k8s.io")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range table.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if table.Kind != "Table" || len(table.Rows) != 2 || strings.Join(cols, ",") != "Name,cpu,memory,Window" {
		t.Fatalf("table kind=%q rows=%d columns=%v", table.Kind, len(table.Rows), cols)
	}
}

func TestReadyzFollowsChecks(t *testing.T) {
	s := startServer(t)
	s.ready.Store(false)
	if code, body := s.get(t, "/readyz", ""); code != http.StatusInternalServerError || !strings.Contains(string(body), "test-ready failed") {
		t.Fatalf("readyz with a failing check: %d %s", code, body)
	}
	s.ready.Store(true)
	if code, _ := s.get(t, "/readyz", ""); code != http.StatusOK {
		t.Fatalf("readyz with passing checks: %d", code)
	}
}
