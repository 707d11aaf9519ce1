package apiserver

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapiserver "k8s.io/apiserver/pkg/server"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kmetrics/kmetrics/pkg/apiserver/metricsapi"
	"github.com/kmetrics/kmetrics/pkg/provider"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

// More queries than slots wait for one instead of failing at once; one that
// waits longer than its request may last gets Prometheus' JSON 503.
func TestQueryConcurrencyQueues(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	h := limitConcurrency(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		w.WriteHeader(http.StatusOK)
	}), 1)

	first := httptest.NewRecorder()
	firstDone := make(chan struct{})
	go func() { defer close(firstDone); h.ServeHTTP(first, httptest.NewRequest("GET", "/query", nil)) }()
	<-started

	// A request whose deadline passes while the slot is taken.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	late := httptest.NewRecorder()
	h.ServeHTTP(late, httptest.NewRequest("GET", "/query", nil).WithContext(ctx))
	if late.Code != http.StatusServiceUnavailable || !strings.Contains(late.Body.String(), `"errorType":"unavailable"`) {
		t.Errorf("a request that never got a slot: %d %s", late.Code, late.Body)
	}

	// A request that waits for the slot to free is served.
	second := httptest.NewRecorder()
	secondDone := make(chan struct{})
	go func() { defer close(secondDone); h.ServeHTTP(second, httptest.NewRequest("GET", "/query", nil)) }()
	time.Sleep(20 * time.Millisecond) // let it queue
	release <- struct{}{}
	<-firstDone
	<-started
	release <- struct{}{}
	<-secondDone
	if first.Code != http.StatusOK || second.Code != http.StatusOK {
		t.Errorf("queued requests: %d, %d", first.Code, second.Code)
	}
}

// The generic server's request timeout (60s by default) is raised above
// --query.timeout, so a slow query ends with the engine's JSON error, not
// the server's 504.
func TestRequestTimeoutAboveQueryTimeout(t *testing.T) {
	cfg := genericapiserver.NewConfig(metricsapi.Codecs)
	if cfg.RequestTimeout >= 2*time.Minute {
		t.Fatalf("default request timeout %v: the test proves nothing", cfg.RequestTimeout)
	}
	o := NewOptions()
	o.DisableAuthForTesting = true
	o.SecureServing.ServerCert.CertDirectory = t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	o.SecureServing.Listener = ln
	o.SecureServing.BindPort = ln.Addr().(*net.TCPAddr).Port
	full, err := o.Config(nil)
	if err != nil {
		t.Fatal(err)
	}
	deps := Deps{
		Resource:     provider.NewResourceProvider(storage.NewIndex(), 15*time.Second),
		Pods:         cache.NewGenericLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}), schema.GroupResource{Resource: "pods"}),
		Nodes:        corelisters.NewNodeLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})),
		QueryTimeout: 2 * time.Minute,
	}
	if _, err := New(full, deps); err != nil {
		t.Fatal(err)
	}
	if full.RequestTimeout <= 2*time.Minute {
		t.Errorf("request timeout %v, want above the 2m query timeout", full.RequestTimeout)
	}
}
