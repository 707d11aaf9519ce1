package storage

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
)

// appendExemplars appends n exemplars (trace IDs from..from+n-1) spread
// over ten series, each series' exemplars in time order.
func appendExemplars(t *testing.T, d *DB, from, n int) {
	t.Helper()
	app := d.Appender(context.Background())
	for i := from; i < from+n; i++ {
		l := labels.FromStrings("__name__", "requests_total", "pod", fmt.Sprint("p", i%10))
		ts := int64(1_000_000 + i)
		ref, err := app.Append(0, l, ts, float64(i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := app.AppendExemplar(ref, l, exemplar.Exemplar{Labels: labels.FromStrings("trace_id", fmt.Sprint(i)), Value: 1, Ts: ts, HasTs: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

// storedExemplars counts the exemplars a query reads.
func storedExemplars(t *testing.T, d *DB) int {
	t.Helper()
	q, err := d.ExemplarQuerier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res, err := q.Select(math.MinInt64, math.MaxInt64, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "requests_total")})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range res {
		n += len(r.Exemplars)
	}
	return n
}

func TestExemplarRingGrowsToTheLimit(t *testing.T) {
	dir := t.TempDir()
	const limit = 5000
	d, err := Open(Options{Path: dir, MaxExemplars: limit}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.exemplars.size.Load(); got != minExemplarRing {
		t.Fatalf("a new TSDB's ring: %d entries, want %d", got, minExemplarRing)
	}

	// More than the first ring holds, in batches and in one transaction:
	// none is lost to the ring's first size.
	appendExemplars(t, d, 0, 700)
	appendExemplars(t, d, 700, 2300)
	if got := storedExemplars(t, d); got != 3000 {
		t.Fatalf("%d exemplars stored of 3000", got)
	}
	if got := d.exemplars.size.Load(); got != 4096 {
		t.Errorf("ring of %d entries for 3,000 exemplars, want 4096", got)
	}

	// Past the limit the ring keeps the newest limit exemplars, as
	// Prometheus' does.
	appendExemplars(t, d, 3000, 3000)
	if got := storedExemplars(t, d); got != limit {
		t.Fatalf("%d exemplars stored, want the limit %d", got, limit)
	}
	if got := d.exemplars.size.Load(); got != limit {
		t.Errorf("ring of %d entries, want the limit %d", got, limit)
	}

	// A restart replays every exemplar into a ring of the size it grew to.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = Open(Options{Path: dir, MaxExemplars: limit}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := d.exemplars.size.Load(); got != limit {
		t.Errorf("reopened ring of %d entries, want %d", got, limit)
	}
	if got := storedExemplars(t, d); got != limit {
		t.Errorf("%d exemplars after a restart, want %d", got, limit)
	}
}

func TestExemplarRingIgnoresDuplicates(t *testing.T) {
	d, err := Open(Options{Path: t.TempDir(), MaxExemplars: 100000}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// An application exposing the same exemplar on every scrape: the head
	// stores it once, and the ring does not grow for the repeats.
	l := labels.FromStrings("__name__", "requests_total", "pod", "p")
	e := exemplar.Exemplar{Labels: labels.FromStrings("trace_id", "same"), Value: 1, Ts: 1_000_000, HasTs: true}
	for i := range 3 * minExemplarRing {
		app := d.Appender(context.Background())
		ref, err := app.Append(0, l, int64(1_000_000+i), 1)
		if err == nil {
			_, err = app.AppendExemplar(ref, l, e)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if got := storedExemplars(t, d); got != 1 {
		t.Errorf("%d exemplars stored, want 1", got)
	}
	if got := d.exemplars.size.Load(); got != minExemplarRing {
		t.Errorf("ring grew to %d for one exemplar", got)
	}
}

func TestExemplarRingBelowTheFirstSize(t *testing.T) {
	d, err := Open(Options{Path: t.TempDir(), MaxExemplars: 10}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	appendExemplars(t, d, 0, 50)
	if got := storedExemplars(t, d); got != 10 {
		t.Errorf("%d exemplars stored, want the limit 10", got)
	}
}

// TestExemplarRingSizeFile: the remembered size is a hint an operator may
// have edited or a crash truncated; anything unreadable opens the first
// size, anything above the limit opens the limit.
func TestExemplarRingSizeFile(t *testing.T) {
	for _, tc := range []struct {
		content string
		want    int64
	}{{"", minExemplarRing}, {"garbage\n", minExemplarRing}, {"-5\n", minExemplarRing}, {"100\n", minExemplarRing}, {"4096\n", 4096}, {"99999999999\n", 50000}} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, exemplarRingFile), []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := newExemplarRing(dir, 50000).openSize(); got != tc.want {
			t.Errorf("%q: opens %d entries, want %d", tc.content, got, tc.want)
		}
	}
}
