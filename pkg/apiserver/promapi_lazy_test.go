package apiserver

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// allocated is what f allocated on the Go heap (every goroutine's; the test
// runs nothing else meanwhile).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Prometheus' API renders an OpenAPI document when it is built (tens of MB
// allocated). kmetrics builds it on the first request that reaches it, so a
// cluster that never queries PromQL never pays for it, nor does a refused
// route or a caller the scopes turn away (anonymous, no namespace, scopes
// undecidable); the first queries, arriving together, all get their answer.
func TestQueryAPIIsBuiltOnFirstQuery(t *testing.T) {
	db, err := storage.Open(storage.Options{Path: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	serve := func(h http.Handler, caller user.Info, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, QueryPrefix+path, nil)
		if caller != nil {
			r = r.WithContext(request.WithUser(r.Context(), caller))
		}
		h.ServeHTTP(rec, r)
		return rec
	}
	const budget = 4 << 20
	var h http.Handler
	if n := allocated(func() {
		h = NewQueryAPI(db.TSDB(), QueryOptions{Timeout: 10 * time.Second, MaxSamples: 1000, MaxConcurrency: 16, LookbackDelta: 5 * time.Minute, Scopes: testScopes}, nil)
	}); n > budget {
		t.Fatalf("NewQueryAPI allocated %d bytes; Prometheus' API should wait for the first query", n)
	}
	for _, c := range []struct {
		name   string
		caller user.Info
		path   string
		code   int
	}{
		{"a refused route", &user.DefaultInfo{Name: "admin"}, "/admin/tsdb/snapshot", http.StatusNotFound},
		{"an anonymous caller", &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}}, "/query?query=1", http.StatusForbidden},
		{"a caller with no namespace", &user.DefaultInfo{Name: "nobody"}, "/query?query=1", http.StatusForbidden},
		{"scopes that cannot be decided", &user.DefaultInfo{Name: "broken"}, "/query?query=1", http.StatusServiceUnavailable},
	} {
		var rec *httptest.ResponseRecorder
		if n := allocated(func() { rec = serve(h, c.caller, c.path) }); n > budget {
			t.Errorf("%s allocated %d bytes: it built Prometheus' API", c.name, n)
		}
		if rec.Code != c.code {
			t.Errorf("%s: %d, want %d: %s", c.name, rec.Code, c.code, rec.Body.String())
		}
	}

	var wg sync.WaitGroup
	answers := make([]*httptest.ResponseRecorder, 8)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			caller := []string{"admin", "team-a"}[i%2]
			answers[i] = serve(h, &user.DefaultInfo{Name: caller}, "/query?query=1%2B1&time=4")
		}()
	}
	wg.Wait()
	for i, rec := range answers {
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"2"`) {
			t.Errorf("concurrent first query %d: %d %s", i, rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkQueryAPIStart is what serving the PromQL API costs kmetrics before
// and at its first query: Prometheus' API (and the OpenAPI document its
// constructor renders) is built then, not at start.
//
//	go test -run '^$' -bench QueryAPIStart -benchmem -count 6 ./pkg/apiserver
func BenchmarkQueryAPIStart(b *testing.B) {
	db, err := storage.Open(storage.Options{Path: b.TempDir()}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	o := QueryOptions{Timeout: 10 * time.Second, MaxSamples: 1000, MaxConcurrency: 16, LookbackDelta: 5 * time.Minute}
	b.Run("start", func(b *testing.B) {
		for b.Loop() {
			_ = NewQueryAPI(db.TSDB(), o, nil)
		}
	})
	b.Run("start+first-query", func(b *testing.B) {
		for b.Loop() {
			rec := httptest.NewRecorder()
			NewQueryAPI(db.TSDB(), o, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, QueryPrefix+"/query?query=1&time=4", nil))
			if rec.Code != http.StatusOK {
				b.Fatal(rec.Code, rec.Body.String())
			}
		}
	})
}
