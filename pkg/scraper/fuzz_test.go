package scraper

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// countingAppender counts appends. The fuzz target needs to see every call
// (a real TSDB hides refused ones) at fuzzing speed.
type countingAppender struct {
	promstorage.Appender // nil: only Append is used by the decoder
	appends              int
	ref                  promstorage.SeriesRef
}

func (a *countingAppender) Append(_ promstorage.SeriesRef, l labels.Labels, _ int64, _ float64) (promstorage.SeriesRef, error) {
	if l.Get("job") == "" || l.Get("node") == "" || l.Get(labels.MetricName) == "" {
		return 0, errors.New("series without target labels or name")
	}
	a.appends++
	a.ref++
	return a.ref, nil
}

// FuzzAppendBody feeds arbitrary bodies to the decoder: it must never panic,
// must append nothing from a body it rejects, and must hand the index only
// fully-labelled containers.
func FuzzAppendBody(f *testing.F) {
	kwok, err := os.ReadFile("testdata/kwok-resource.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(kwok, false)
	// The real kubelet's resource body; its cAdvisor body (89 KB, never
	// indexed) seeds the TSDB target only: here it would cut the rate to a third.
	f.Add(realKubeletBodies(f)[0], false)
	f.Add(kubeletBody("", 3, 2, 1700000000000, steadyCPU(1700000000000)), false)
	f.Add([]byte("# TYPE a counter\na_total{x=\"1\"} 1\n# EOF\n"), true)
	f.Add([]byte("container_cpu_usage_seconds_total{pod=\"p\",namespace=\"n\"} NaN\n"), false)
	f.Add([]byte("node_cpu_usage_seconds_total -Inf 1\nnode_cpu_usage_seconds_total 1 2\n"), false)
	f.Fuzz(func(t *testing.T, body []byte, openMetrics bool) {
		ct := "text/plain; version=0.0.4; charset=utf-8"
		if openMetrics {
			ct = "application/openmetrics-text; version=1.0.0; charset=utf-8"
		}
		tg := newTarget("node", "127.0.0.1:10250", "/metrics/resource")
		tg.maxAhead = 5 * time.Minute        // bodies with far-future timestamps are refused whole
		for round := 0; round < 2; round++ { // the second round runs on the series cache
			app := &countingAppender{}
			res, err := tg.appendBody(app, body, ct, time.Unix(1700000000, int64(round)*15e9))
			if err != nil {
				if strings.Contains(err.Error(), "panic") {
					t.Fatalf("parser panicked: %v", err)
				}
				if app.appends != 0 {
					t.Fatalf("rejected body appended %d samples: %v", app.appends, err)
				}
				continue
			}
			if res.appended+res.outOfOrder != res.samples {
				t.Fatalf("appended %d + refused %d != parsed %d", res.appended, res.outOfOrder, res.samples)
			}
			for _, c := range res.containers {
				if c.Namespace == "" || c.Pod == "" || c.Container == "" {
					t.Fatalf("container with a missing label reached the index: %+v", c)
				}
			}
		}
	})
}

// fuzzDB is one real TSDB, behind the guard, shared by every execution of
// a fuzzing process (opening one per execution would be most of the cost).
var fuzzDB struct {
	once  sync.Once
	dir   string
	db    *storage.DB
	guard *storage.Guard
	err   error
}

// FuzzAppendBodyTSDB is the slower target: the same bodies through the
// guard into a real TSDB, committed. Whatever a body holds, the TSDB must
// take the commit or refuse samples one by one; never panic or fail the
// transaction, and never store a sample beyond the guard's bound.
func FuzzAppendBodyTSDB(f *testing.F) {
	kwok, err := os.ReadFile("testdata/kwok-resource.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(kwok)
	for _, real := range realKubeletBodies(f) {
		f.Add(real)
	}
	f.Add([]byte("evil_metric 1 99999999999999\nhonest 1\n"))
	f.Add([]byte("# TYPE a counter\na_total{x=\"1\"} 1 1700000000000\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzDB.once.Do(func() {
			fuzzDB.dir, fuzzDB.err = os.MkdirTemp("", "kmetrics-fuzz-tsdb-")
			if fuzzDB.err == nil {
				fuzzDB.db, fuzzDB.err = storage.Open(storage.Options{Path: fuzzDB.dir}, nil, nil)
			}
			if fuzzDB.err == nil {
				fuzzDB.guard = storage.NewGuard(fuzzDB.db, 5*time.Minute)
			}
		})
		if fuzzDB.err != nil {
			t.Fatal(fuzzDB.err)
		}
		tg := newTarget("node", "127.0.0.1:10250", "/metrics/resource")
		now := time.Now()
		app := fuzzDB.guard.Appender(context.Background())
		res, err := tg.appendBody(app, body, "text/plain; version=0.0.4", now)
		if err != nil {
			_ = app.Rollback()
			if strings.Contains(err.Error(), "panic") {
				t.Fatalf("parser panicked: %v", err)
			}
			return
		}
		if err := app.Commit(); err != nil {
			t.Fatalf("commit of a parsed body failed: %v", err)
		}
		if res.appended+res.outOfOrder != res.samples {
			t.Fatalf("appended %d + refused %d != parsed %d", res.appended, res.outOfOrder, res.samples)
		}
		if tg.newest > now.Add(5*time.Minute).UnixMilli() {
			t.Fatalf("a sample at %d got past the guard (now %d)", tg.newest, now.UnixMilli())
		}
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fuzzDB.db != nil {
		_ = fuzzDB.db.Close()
	}
	if fuzzDB.dir != "" {
		_ = os.RemoveAll(fuzzDB.dir)
	}
	os.Exit(code)
}

// realKubeletBodies are what a real kubelet v1.33 served (see
// realbody_test.go), /metrics/resource and /metrics/cadvisor.
func realKubeletBodies(f *testing.F) [][]byte {
	var bodies [][]byte
	for _, name := range []string{"testdata/kubelet-v1.33-resource.txt", "testdata/kubelet-v1.33-cadvisor.txt"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	return bodies
}
