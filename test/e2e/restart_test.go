//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// upSamples reads the timestamps of up{node=…} from the TSDB on disk, as a
// reader independent of kmetrics.
func upSamples(t *testing.T, node string) (ts []int64, last float64) {
	t.Helper()
	db, err := tsdb.OpenDBReadOnly(tsdbDir(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), false, nil,
		labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"), labels.MustNewMatcher(labels.MatchEqual, "node", node),
		// The kubelet's own: application targets on the node carry node too.
		labels.MustNewMatcher(labels.MatchEqual, "job", "kubelet"), labels.MustNewMatcher(labels.MatchEqual, "metrics_path", "/metrics/resource"))
	var it chunkenc.Iterator
	for set.Next() {
		it = set.At().Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			t, v := it.At()
			ts = append(ts, t)
			last = v
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return ts, last
}

func TestRestartServesFromHistory(t *testing.T) {
	// Gaps are checked from here on: an earlier test (TestFullDisk) ran
	// kmetrics on another TSDB for a while.
	since := time.Now().UnixMilli()
	deployment(t, "e2e-restart", "svc", 2, "150m", "48Mi", "100m")
	served := func() error {
		rows := parseTop(mustKubectlNoFail("top", "pods", "-n", "e2e-restart"))
		if len(rows) != 2 {
			return fmt.Errorf("%d pods served, want 2", len(rows))
		}
		return nil
	}
	eventually(t, 90*time.Second, "pods served before the restart", served)

	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			// Let two more scrapes land since the last restart.
			const scrapes = `count_over_time(up{job="kubelet",metrics_path="/metrics/resource",node="kwok-node-1"}[1h])`
			n0 := queryScalar(t, scrapes)
			eventually(t, 3*resolution, "two more scrapes of kwok-node-1", func() error {
				if n := queryScalar(t, scrapes); n < n0+2 {
					return fmt.Errorf("%v scrapes, want %v", n, n0+2)
				}
				return nil
			})
			km.stop(sig)
			committed, _ := upSamples(t, "kwok-node-1")
			if len(committed) < 2 {
				t.Fatalf("only %d samples of up on disk before the restart", len(committed))
			}
			start := time.Now()
			var err error
			if km, err = startKmetrics(); err != nil {
				t.Fatal(err)
			}
			eventually(t, 15*time.Second, "pods served after the restart", served)
			t.Logf("kubectl top answered %.2fs after the restart (%v)", time.Since(start).Seconds(), sig)

			after, _ := upSamples(t, "kwok-node-1")
			have := map[int64]bool{}
			for _, ts := range after {
				have[ts] = true
			}
			for i, ts := range committed {
				if !have[ts] {
					t.Fatalf("sample at %d committed before the %v was lost", ts, sig)
				}
				// Scrapes are one resolution apart; a restart adds at most
				// one more (the node's scrape offset) and a few seconds.
				if i > 0 && committed[i-1] >= since && time.Duration(ts-committed[i-1])*time.Millisecond > 2*resolution+5*time.Second {
					t.Errorf("gap of %v in up samples before %d", time.Duration(ts-committed[i-1])*time.Millisecond, ts)
				}
			}
		})
	}
}

func mustKubectlNoFail(args ...string) string {
	out, _ := kubectl(args...)
	return out
}
