//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestKillDuringIngestionKeepsCommitted kills kmetrics (SIGKILL) while it
// ingests 4 application targets × 4,000 series: every sample a query saw
// before the kill is there after the restart (the WAL is written before a
// commit returns). Its own kmetrics (the shared one serves the other
// tests meanwhile).
func TestKillDuringIngestionKeepsCommitted(t *testing.T) {
	t.Parallel()
	const ns, perPod = "e2e-kill", 4000
	// The shared kmetrics scrapes the same pods; this one's scrapes are
	// told apart by the timeout they announce.
	const timeout = "9"
	k := startSecondKmetrics(t, "kill", "--cluster-state=false", "--scrape.timeout="+timeout+"s")
	scalar := func(expr string) float64 {
		if got := instantQuery(k.query, expr); len(got) == 1 {
			return got[0].value
		}
		return -1
	}
	fleet := startAppFleet(t, ns, "9100")
	var scrapes atomic.Int64
	fleet.serve("heavy", func(w http.ResponseWriter, r *http.Request) {
		n := scrapes.Load()
		if r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds") == timeout {
			n = scrapes.Add(1)
		}
		var b strings.Builder
		b.WriteString("# TYPE heavy_series gauge\n")
		for i := 0; i < perPod; i++ {
			b.WriteString("heavy_series{id=\"")
			b.WriteString(strconv.Itoa(i))
			b.WriteString("\"} ")
			b.WriteString(strconv.FormatInt(n, 10))
			b.WriteByte('\n')
		}
		_, _ = w.Write([]byte(b.String()))
	})
	kubectlApply(t, scrapedDeployment(ns, "heavy", 4, ""))
	defer func() { _, _ = kubectl("delete", "namespace", ns, "--wait=false") }()

	eventually(t, 2*time.Minute, "every target ingested", func() error {
		if n := scalar(`count(heavy_series{namespace="` + ns + `"})`); n != 4*perPod {
			return fmt.Errorf("%v series, want %d", n, 4*perPod)
		}
		return nil
	})
	// Ingestion goes on: a few more scrapes, then what a query sees now.
	for s0 := scrapes.Load(); scrapes.Load() < s0+8; {
		time.Sleep(time.Second)
	}
	seenAt := time.Now()
	window := `sum(count_over_time(heavy_series{namespace="` + ns + `"}[10m] @ ` + strconv.FormatInt(seenAt.Unix(), 10) + `))`
	seen := scalar(window)
	if seen < 2*4*perPod {
		t.Fatalf("only %v samples seen before the kill", seen)
	}
	// Kill in the middle of the next scrapes.
	for s0 := scrapes.Load(); scrapes.Load() < s0+2; {
		time.Sleep(100 * time.Millisecond)
	}
	k.stop(syscall.SIGKILL)
	k.start()
	eventually(t, time.Minute, "the samples seen before the kill are back", func() error {
		if after := scalar(window); after < seen {
			return fmt.Errorf("%v samples after the restart, %v seen before the kill", after, seen)
		}
		return nil
	})
	t.Logf("%v samples seen before the kill, all there after the restart", seen)
}
