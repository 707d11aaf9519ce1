// Command queryserver serves kmetrics' query API (its TSDB and Prometheus
// HTTP API adapter, nothing else) over plain HTTP on loopback, so a
// benchmark can query it and read its RSS as a process of its own beside
// Prometheus. With -scoped-listen it serves the same TSDB a second time
// as a namespace-scoped caller is answered (pkg/tenancy), the caller's
// namespaces taken from the X-Bench-Scope header: the benchmark's stand-in
// for the SubjectAccessReviews, which cmd/kmetrics caches per identity.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kmetrics/kmetrics/pkg/apiserver"
	"github.com/kmetrics/kmetrics/pkg/storage"
	"github.com/kmetrics/kmetrics/pkg/tenancy"
)

func main() {
	path := flag.String("path", "", "TSDB directory")
	listen := flag.String("listen", "127.0.0.1:0", "address")
	scopedListen := flag.String("scoped-listen", "", "address of the namespace-scoped query API (none when empty)")
	flag.Parse()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(75) // as cmd/kmetrics (and Prometheus 3) run
	}
	db, err := storage.Open(storage.Options{Path: *path}, nil, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer db.Close()
	o := apiserver.QueryOptions{Timeout: 2 * time.Minute, MaxSamples: 50e6, MaxConcurrency: 4, LookbackDelta: 5 * time.Minute}
	h := apiserver.NewQueryAPI(db.TSDB(), o, nil)
	if *scopedListen != "" {
		o.Scopes = headerScopes{}
		scoped := withBenchUser(apiserver.NewQueryAPI(db.TSDB(), o, nil))
		go func() {
			fmt.Fprintln(os.Stderr, http.ListenAndServe(*scopedListen, scoped))
			os.Exit(1)
		}()
	}
	fmt.Println("ready")
	if err := http.ListenAndServe(*listen, h); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// withBenchUser makes X-Bench-Scope the caller's name, as the generic
// server's authentication filter would put a user in the context.
func withBenchUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := &user.DefaultInfo{Name: r.Header.Get("X-Bench-Scope")}
		next.ServeHTTP(w, r.WithContext(request.WithUser(r.Context(), u)))
	})
}

// headerScopes: "*" reads everything, otherwise a comma-separated list of
// namespaces.
type headerScopes struct{}

func (headerScopes) Scope(_ context.Context, u user.Info) (tenancy.Scope, error) {
	if u.GetName() == "*" {
		return tenancy.Scope{All: true}, nil
	}
	namespaces := strings.Split(u.GetName(), ",")
	slices.Sort(namespaces)
	return tenancy.Scope{Namespaces: namespaces}, nil
}
