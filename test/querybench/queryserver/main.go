// Command queryserver serves kmetrics' query API (its TSDB and Prometheus
// HTTP API adapter, nothing else) over plain HTTP on loopback, so a
// benchmark can query it and read its RSS as a process of its own beside
// Prometheus.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/kmetrics/kmetrics/pkg/apiserver"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

func main() {
	path := flag.String("path", "", "TSDB directory")
	listen := flag.String("listen", "127.0.0.1:0", "address")
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
	h := apiserver.NewQueryAPI(db.TSDB(), apiserver.QueryOptions{Timeout: 2 * time.Minute, MaxSamples: 50e6, MaxConcurrency: 4, LookbackDelta: 5 * time.Minute}, nil)
	fmt.Println("ready")
	if err := http.ListenAndServe(*listen, h); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
