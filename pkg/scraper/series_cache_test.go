package scraper

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// collidingCache is a seriesCache whose first hash is the same for every
// series: each series after the first is a collision.
func collidingCache() *seriesCache {
	c := newSeriesCache()
	c.key = func([]byte) uint64 { return 42 }
	return c
}

func cached(c *seriesCache) int { return len(c.entries) + len(c.collided) }

func TestSeriesCacheCollisions(t *testing.T) {
	c := collidingCache()
	raws := []string{`a{x="1"}`, `a{x="2"}`, `b`}
	entries := map[string]*seriesEntry{}
	for _, raw := range raws {
		e, slot := c.get([]byte(raw))
		if e != nil {
			t.Fatalf("%s found before it was put", raw)
		}
		entries[raw] = &seriesEntry{}
		c.put([]byte(raw), slot, entries[raw])
	}
	found := func() {
		t.Helper()
		for raw, want := range entries {
			if got, _ := c.get([]byte(raw)); got != want {
				t.Errorf("%s: got entry %p, want %p", raw, got, want)
			}
		}
	}
	found()
	if cached(c) != 3 {
		t.Fatalf("%d entries, want 3", cached(c))
	}

	// The series holding the hash goes: the two that collided with it are
	// still found, and a new series takes the hash.
	c.sweep(func(e *seriesEntry) bool { return e != entries[raws[0]] })
	delete(entries, raws[0])
	found()
	e, slot := c.get([]byte(`c`))
	if e != nil || slot.collided {
		t.Fatalf("new series after the holder went: entry %v, collided %v", e, slot.collided)
	}
	entries[`c`] = &seriesEntry{}
	c.put([]byte(`c`), slot, entries[`c`])
	found()
	if cached(c) != 3 {
		t.Fatalf("%d entries, want 3", cached(c))
	}
}

// A target whose every series collides stores and ends exactly what a target
// without collisions does: a collision never gives one series' sample to
// another, nor marks a live series stale.
func TestCollidingSeriesStoredAsWithout(t *testing.T) {
	body := func(pods ...string) []byte {
		var b strings.Builder
		b.WriteString("# TYPE container_cpu_usage_seconds_total counter\n# TYPE container_memory_working_set_bytes gauge\n")
		for i, p := range pods {
			fmt.Fprintf(&b, "container_cpu_usage_seconds_total{container=\"c\",namespace=\"n\",pod=%q} %d\n", p, i+1)
			fmt.Fprintf(&b, "container_memory_working_set_bytes{container=\"c\",namespace=\"n\",pod=%q} %d\n", p, 100*(i+1))
		}
		b.WriteString("node_cpu_usage_seconds_total 7\n")
		return []byte(b.String())
	}
	bodies := [][]byte{body("p1", "p2", "p3"), body("p1", "p2", "p3"), body("p1", "p3"), body("p3", "p1", "p4")}
	t0 := time.UnixMilli(10 * time.Hour.Milliseconds())
	stored := func(colliding bool) map[string][]float64 {
		head := testHead(t)
		tgt := newTarget("node", "10.0.0.1:10250", "/metrics/resource")
		if colliding {
			tgt.cache = collidingCache()
		}
		for i, b := range bodies {
			app := head.Appender(context.Background())
			if _, err := tgt.appendBody(app, b, "text/plain; version=0.0.4", t0.Add(time.Duration(i)*15*time.Second)); err != nil {
				t.Fatal(err)
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		return headSeries(t, head)
	}
	want, got := stored(false), stored(true)
	// NaN (the staleness marker) is not equal to itself: compare as text.
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("with every series colliding:\n%v\nwithout:\n%v", got, want)
	}
	if len(want) != 9 {
		t.Errorf("%d series stored, want 9 (4 pods × 2, the node)", len(want))
	}
}
