package apiserver

import (
	"bytes"
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

	"github.com/google/go-cmp/cmp"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kmetrics/kmetrics/pkg/apiserver/metricsapi"
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

// Every case in both served versions: v1 and v1beta1 answer alike.
func TestMetricsAPI(t *testing.T) {
	s := startServer(t)
	for _, version := range []string{"v1", "v1beta1"} {
		t.Run(version, func(t *testing.T) { testMetricsAPI(t, s, "/apis/metrics.k8s.io/"+version) })
	}
}

func testMetricsAPI(t *testing.T, s *testServer, base string) {
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
		// Read-only resources without watch, as metrics-server's.
		{name: "watch refused", path: "/namespaces/shop/pods?watch=true", code: 405, errorHas: "watch"},
		{name: "pod in another namespace", path: "/namespaces/other/pods/web-1", code: 404, errorHas: "web-1"},
		{name: "no pods in an unknown namespace", path: "/namespaces/other/pods", code: 200},
		{name: "a pod name with a slash is no pod", path: "/namespaces/shop/pods/web-1%2Fx", code: 404, errorHas: "could not find"},
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
	tests := []struct {
		path string
		rows [][]any
	}{
		{"/nodes", [][]any{{"n1", "1", "1Gi", "15s"}, {"n2", "2", "1Gi", "15s"}}},
		{"/nodes/n2", [][]any{{"n2", "2", "1Gi", "15s"}}},
		{"/namespaces/shop/pods?labelSelector=app%3Dweb", [][]any{{"web-1", "100m", "100Mi", "15s"}, {"web-2", "200m", "100Mi", "15s"}}},
		{"/namespaces/shop/pods/db-1", [][]any{{"db-1", "300m", "100Mi", "15s"}}},
	}
	for _, version := range []string{"v1", "v1beta1"} {
		for _, tc := range tests {
			t.Run(version+tc.path, func(t *testing.T) {
				code, body := s.get(t, "/apis/metrics.k8s.io/"+version+tc.path, "application/json;as=Table;v=v1;g=meta.k8s.io")
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
				if table.Kind != "Table" || strings.Join(cols, ",") != "Name,cpu,memory,Window" {
					t.Fatalf("table kind=%q columns=%v", table.Kind, cols)
				}
				var rows [][]any
				for _, r := range table.Rows {
					rows = append(rows, r.Cells)
				}
				if fmt.Sprint(rows) != fmt.Sprint(tc.rows) {
					t.Fatalf("rows %v, want %v", rows, tc.rows)
				}
			})
		}
	}
}

// kubectl 1.37 asks for v1 in protobuf: the server answers protobuf whose
// objects decode to exactly what v1beta1 returns as JSON.
func TestProtobufV1EqualsJSONV1beta1(t *testing.T) {
	s := startServer(t)
	for _, path := range []string{"/nodes", "/nodes/n1", "/pods", "/namespaces/shop/pods", "/namespaces/shop/pods/web-2"} {
		t.Run(path, func(t *testing.T) {
			code, pb := s.get(t, "/apis/metrics.k8s.io/v1"+path, "application/vnd.kubernetes.protobuf")
			if code != 200 {
				t.Fatalf("v1 protobuf: %d %s", code, pb)
			}
			if !bytes.HasPrefix(pb, []byte("k8s\x00")) {
				t.Fatalf("v1 answer is not Kubernetes protobuf: %q", pb[:min(len(pb), 40)])
			}
			code, js := s.get(t, "/apis/metrics.k8s.io/v1beta1"+path, "application/json")
			if code != 200 {
				t.Fatalf("v1beta1 JSON: %d %s", code, js)
			}
			fromPB, err := runtime.Decode(metricsapi.Codecs.UniversalDecoder(), pb)
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, err := runtime.Decode(metricsapi.Codecs.UniversalDecoder(), js)
			if err != nil {
				t.Fatal(err)
			}
			// Served twice, a moment apart: only the creation time may differ.
			for _, o := range []runtime.Object{fromPB, fromJSON} {
				_ = meta.EachListItem(o, clearCreation)
				_ = clearCreation(o)
			}
			if diff := cmp.Diff(fromJSON, fromPB, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
				t.Fatalf("v1 protobuf and v1beta1 JSON differ (-v1beta1 +v1):\n%s", diff)
			}
		})
	}
}

func clearCreation(o runtime.Object) error {
	if m, err := meta.Accessor(o); err == nil {
		m.SetCreationTimestamp(metav1.Time{})
	}
	return nil
}

// Discovery as upstream defines it for 1.37: both versions, v1 preferred.
func TestDiscoveryPrefersV1(t *testing.T) {
	s := startServer(t)
	code, body := s.get(t, "/apis/metrics.k8s.io", "application/json")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var group metav1.APIGroup
	if err := json.Unmarshal(body, &group); err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, v := range group.Versions {
		versions = append(versions, v.GroupVersion)
	}
	if group.PreferredVersion.GroupVersion != "metrics.k8s.io/v1" || strings.Join(versions, ",") != "metrics.k8s.io/v1,metrics.k8s.io/v1beta1" {
		t.Fatalf("preferred %q, versions %v", group.PreferredVersion.GroupVersion, versions)
	}
	// Aggregated discovery (what kubectl 1.37 and the aggregator read).
	code, body = s.get(t, "/apis", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
	var aggregated apidiscoveryv2.APIGroupDiscoveryList
	if code != 200 || json.Unmarshal(body, &aggregated) != nil {
		t.Fatalf("aggregated discovery: %d %s", code, body)
	}
	var found []string
	for _, g := range aggregated.Items {
		if g.Name != "metrics.k8s.io" {
			continue
		}
		for _, v := range g.Versions {
			var res []string
			for _, r := range v.Resources {
				res = append(res, r.Resource+":"+r.ResponseKind.Kind)
			}
			found = append(found, fmt.Sprintf("%s%v", v.Version, res))
		}
	}
	if want := "v1[nodes:NodeMetrics pods:PodMetrics],v1beta1[nodes:NodeMetrics pods:PodMetrics]"; strings.Join(found, ",") != want {
		t.Fatalf("aggregated discovery of metrics.k8s.io: %v, want %s", found, want)
	}
	for _, version := range []string{"v1", "v1beta1"} {
		code, body := s.get(t, "/apis/metrics.k8s.io/"+version, "application/json")
		var resources metav1.APIResourceList
		if code != 200 || json.Unmarshal(body, &resources) != nil {
			t.Fatalf("%s: %d %s", version, code, body)
		}
		var got []string
		for _, r := range resources.APIResources {
			got = append(got, fmt.Sprintf("%s:%s:%v:%v", r.Name, r.Kind, r.Namespaced, r.Verbs))
		}
		if want := "nodes:NodeMetrics:false:[get list],pods:PodMetrics:true:[get list]"; strings.Join(got, ",") != want {
			t.Fatalf("%s resources %v, want %s", version, got, want)
		}
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
