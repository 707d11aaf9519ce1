package remotewrite

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage/remote"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// receiver is a remote write endpoint that records what it is sent, or
// answers status.
type receiver struct {
	srv    *httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	got    map[string][]float64 // series → values
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: map[string][]float64{}}
	r.status.Store(http.StatusNoContent)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if s := int(r.status.Load()); s != http.StatusNoContent {
			http.Error(w, "refused", s)
			return
		}
		wr, err := remote.DecodeWriteRequest(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, ts := range wr.Timeseries {
			b := labels.NewScratchBuilder(len(ts.Labels))
			for _, l := range ts.Labels {
				b.Add(l.Name, l.Value)
			}
			b.Sort()
			key := b.Labels().String()
			for _, s := range ts.Samples {
				r.got[key] = append(r.got[key], s.Value)
			}
			for _, h := range ts.Histograms { // recorded by their count
				r.got[key] = append(r.got[key], float64(h.GetCountInt()))
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) values(series string) []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]float64(nil), r.got[series]...)
}

// lastProbe is the value of the last probe sample any test stored.
var lastProbe atomic.Int64

// probed says whether the receiver has a probe sample whose value is
// above the given one.
func (r *receiver) probed(above float64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, values := range r.got {
		if strings.Contains(key, `__name__="watcher_started"`) && slices.Max(values) > above {
			return true
		}
	}
	return false
}

// awaitWatcher returns once w's WAL watchers send what is stored: they
// send only samples stamped after they started, which they do in their
// own goroutines, later than New returns (on a loaded machine, more than a
// moment later). It stores a probe sample every 50 ms until one is
// received, then waits for the last (so none is still queued when the test
// goes on), so the receiver must be up.
func awaitWatcher(t *testing.T, w *Writer, db *storage.DB, rcv *receiver) {
	t.Helper()
	first := float64(lastProbe.Load())
	deadline := time.Now().Add(30 * time.Second)
	v := first
	for !rcv.probed(first) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the WAL watcher to send a probe sample")
		}
		v = float64(lastProbe.Add(1))
		store(t, w, db, "watcher_started", v)
		time.Sleep(50 * time.Millisecond)
	}
	waitUntil(t, "the last probe sample received", func() bool { return rcv.probed(v - 1) })
}

func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func writeConfig(t *testing.T, file, body string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

const fastQueue = `
  queue_config: {batch_send_deadline: 100ms, min_backoff: 10ms, max_backoff: 100ms}
`

// keepNotifying notifies w's WAL watchers every 100 ms until the test
// ends, as kmetrics' steady writes do: a watcher busy reading when a write
// notifies it misses the notification, and without another write reads
// again only on its 15 s ticker — long enough, twice, to time a test out.
func keepNotifying(t *testing.T, w *Writer) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				w.Notify()
			}
		}
	}()
}

// setup opens a TSDB and a Writer sending it to rcv (configBody names it),
// and waits until its WAL watcher sends.
func setup(t *testing.T, rcv *receiver, configBody string) (*storage.DB, *Writer, *prometheus.Registry, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := storage.Open(storage.Options{Path: dir}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "prometheus.yml")
	writeConfig(t, file, configBody)
	reg := prometheus.NewRegistry()
	w, err := New(file, dir, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.TSDB().SetWriteNotified(w)
	t.Cleanup(func() { _ = w.Close(); _ = db.Close() })
	keepNotifying(t, w)
	awaitWatcher(t, w, db, rcv)
	return db, w, reg, file
}

var lastTS atomic.Int64

// store appends one sample, each at a later millisecond.
func store(t *testing.T, w *Writer, db *storage.DB, name string, v float64) {
	t.Helper()
	ts := max(time.Now().UnixMilli(), lastTS.Load()+1)
	lastTS.Store(ts)
	a := w.Tee(db).Appender(context.Background())
	if _, err := a.Append(0, labels.FromStrings("__name__", name, "job", "test"), ts, v); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
}

func counter(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += metricValue(m)
		}
	}
	return sum
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// What is stored reaches the receiver with the external labels, read from
// the TSDB's WAL.
func TestSendsWhatIsStored(t *testing.T) {
	rcv := newReceiver(t)
	db, w, _, _ := setup(t, rcv, fmt.Sprintf("global: {external_labels: {cluster: east}}\nremote_write:\n- url: %s\n%s", rcv.srv.URL, fastQueue))
	for i := 1; i <= 3; i++ {
		store(t, w, db, "shipped", float64(i))
	}
	want := `{__name__="shipped", cluster="east", job="test"}`
	waitUntil(t, "three samples received", func() bool { return len(rcv.values(want)) == 3 })
	if got := rcv.values(want); got[0] != 1 || got[2] != 3 {
		t.Errorf("received %v, want 1 2 3 in order", got)
	}
	// Prometheus registers this one globally.
	if n := counter(t, prometheus.DefaultGatherer, "prometheus_remote_storage_samples_in_total"); n < 3 {
		t.Errorf("samples_in_total %v: the tee did not count the appends", n)
	}
}

// A receiver that refuses with a 4xx: the batch is dropped and counted, and
// storing goes on; one that is down (5xx) is retried until it is back,
// losing nothing.
func TestReceiverFailures(t *testing.T) {
	rcv := newReceiver(t)
	db, w, reg, _ := setup(t, rcv, fmt.Sprintf("remote_write:\n- url: %s\n%s", rcv.srv.URL, fastQueue))

	rcv.status.Store(http.StatusBadRequest)
	store(t, w, db, "refused", 1)
	waitUntil(t, "the refused batch counted", func() bool {
		return counter(t, reg, "prometheus_remote_storage_samples_failed_total") >= 1
	})

	rcv.status.Store(http.StatusServiceUnavailable)
	for i := 1; i <= 5; i++ {
		store(t, w, db, "retried", float64(i))
	}
	waitUntil(t, "retries counted", func() bool {
		return counter(t, reg, "prometheus_remote_storage_samples_retried_total") >= 1
	})
	rcv.status.Store(http.StatusNoContent)
	want := `{__name__="retried", job="test"}`
	waitUntil(t, "every retried sample received", func() bool { return len(rcv.values(want)) == 5 })
	if n := counter(t, reg, "prometheus_remote_storage_samples_failed_total"); n != 1 {
		t.Errorf("samples failed %v, want only the refused one", n)
	}
}

// An invalid file is refused naming file and line; the queues in force keep
// sending; a valid change applies.
func TestReload(t *testing.T) {
	rcv := newReceiver(t)
	db, w, reg, file := setup(t, rcv, fmt.Sprintf("remote_write:\n- url: %s\n%s", rcv.srv.URL, fastQueue))

	writeConfig(t, file, "remote_write:\n- url: %%%\n  bogus_field: 1\n")
	if changed, err := w.reload(); !changed || err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("invalid file: changed %v, err %v; want an error naming %s", changed, err, file)
	}
	if v := counter(t, reg, "kmetrics_remote_write_config_last_reload_successful"); v != 0 {
		t.Errorf("last_reload_successful %v after a refused reload", v)
	}
	store(t, w, db, "after_refused_reload", 1)
	waitUntil(t, "the queue in force still sends", func() bool {
		return len(rcv.values(`{__name__="after_refused_reload", job="test"}`)) == 1
	})

	writeConfig(t, file, fmt.Sprintf("global: {external_labels: {cluster: west}}\nremote_write:\n- url: %s\n%s", rcv.srv.URL, fastQueue))
	if _, err := w.reload(); err != nil {
		t.Fatal(err)
	}
	// The new queue sends what comes after it started: a probe until it
	// arrives with the new labels.
	waitUntil(t, "the new queue sending", func() bool {
		store(t, w, db, "watcher_started", 1)
		return len(rcv.values(`{__name__="watcher_started", cluster="west", job="test"}`)) > 0
	})
	store(t, w, db, "after_reload", 1)
	waitUntil(t, "the new external labels sent", func() bool {
		return len(rcv.values(`{__name__="after_reload", cluster="west", job="test"}`)) == 1
	})
	if _, err := New(filepath.Join(t.TempDir(), "missing.yml"), t.TempDir(), prometheus.NewRegistry(), nil); err == nil {
		t.Error("a missing file must stop kmetrics at start")
	}
}

// restartRig is a receiver, a TSDB and a start of a Writer on it, as many
// times as a test restarts kmetrics; config is the file's format with the
// receiver's URL and fastQueue. The backfill waits late after a start.
func restartRig(t *testing.T, late time.Duration, config string) (*receiver, *storage.DB, func() *Writer) {
	t.Helper()
	flushDeadline, lateSamples = 200*time.Millisecond, late
	t.Cleanup(func() { flushDeadline, lateSamples = 30*time.Second, time.Minute })
	rcv := newReceiver(t)
	dir := t.TempDir()
	db, err := storage.Open(storage.Options{Path: dir}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	file := filepath.Join(t.TempDir(), "prometheus.yml")
	writeConfig(t, file, fmt.Sprintf(config, rcv.srv.URL, fastQueue))
	return rcv, db, func() *Writer {
		w, err := New(file, dir, prometheus.NewRegistry(), nil)
		if err != nil {
			t.Fatal(err)
		}
		db.TSDB().SetWriteNotified(w)
		keepNotifying(t, w)
		if rcv.status.Load() == http.StatusNoContent {
			awaitWatcher(t, w, db, rcv)
		}
		// Down, the receiver cannot show it: what the watchers skip,
		// stored in the second after the start, is the backfill's.
		return w
	}
}

// A restart while the receiver is down: what was stored but not sent
// before it is sent after it from the TSDB (Prometheus' WAL watcher alone
// would start at the restart and skip it), along with what comes after.
func TestBackfillAfterRestart(t *testing.T) {
	rcv, db, start := restartRig(t, 3*time.Second, "global: {external_labels: {cluster: east}}\nremote_write:\n- url: %s\n  send_native_histograms: true\n%s")
	series := `{__name__="gap", cluster="east", job="test"}`

	w := start()
	store(t, w, db, "gap", 1)
	waitUntil(t, "the first sample sent", func() bool { return len(rcv.values(series)) == 1 })
	// The queue counts a batch sent once the receiver has answered.
	waitUntil(t, "the first sample counted sent", func() bool { return w.rws.LowestSentTimestamp() > 0 })
	rcv.status.Store(http.StatusServiceUnavailable) // the receiver goes down
	store(t, w, db, "gap", 2)
	store(t, w, db, "gap", 3)
	storeHistogram(t, w, db, "gap_latency", 7)
	_ = w.Close() // the restart: 2, 3 and the histogram were never sent

	w = start()
	defer w.Close()
	store(t, w, db, "gap", 4)
	rcv.status.Store(http.StatusNoContent) // the receiver is back
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	backfilled := make(chan struct{})
	go func() {
		defer close(backfilled)
		w.Backfill(ctx, db)
	}()
	defer func() { <-backfilled }()
	// A sample stamped by its source just before the restart but stored
	// after it, as a kubelet's lagging timestamps are: the WAL watcher
	// skips it (older than its start); the backfill, reading the TSDB
	// lateSamples after the start, sends it. A backfill reading at once
	// would be over by now.
	time.Sleep(300 * time.Millisecond)
	a := w.Tee(db).Appender(context.Background())
	if _, err := a.Append(0, labels.FromStrings("__name__", "late", "job", "test"), w.started.UnixMilli()-1, 5); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	// At least once: a sample may come twice (the recorded progress is
	// the queues' gauge, in float seconds).
	received := func() map[float64]bool {
		got := map[float64]bool{}
		for _, v := range rcv.values(series) {
			got[v] = true
		}
		return got
	}
	defer func() {
		if t.Failed() {
			t.Logf("received %v; backfilled %v", rcv.values(series), w.loadProgress())
		}
	}()
	waitUntil(t, "samples 1 to 4 received", func() bool {
		got := received()
		return got[1] && got[2] && got[3] && got[4]
	})
	waitUntil(t, "the native histogram received", func() bool {
		v := rcv.values(`{__name__="gap_latency", cluster="east", job="test"}`)
		return len(v) > 0 && v[0] == 7
	})
	waitUntil(t, "the late-stamped sample received", func() bool {
		v := rcv.values(`{__name__="late", cluster="east", job="test"}`)
		return len(v) == 1 && v[0] == 5
	})
}

func storeHistogram(t *testing.T, w *Writer, db *storage.DB, name string, count uint64) {
	t.Helper()
	ts := max(time.Now().UnixMilli(), lastTS.Load()+1)
	lastTS.Store(ts)
	h := &histogram.Histogram{Count: count, Sum: float64(count), Schema: 0, ZeroThreshold: 1e-128,
		PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []int64{int64(count)}}
	a := w.Tee(db).Appender(context.Background())
	if _, err := a.AppendHistogram(0, labels.FromStrings("__name__", name, "job", "test"), ts, h, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
}

// Restarted again before the backfill ran (a crash loop): the new queues'
// progress must not replace the record of where the gap starts, or the
// gap is never sent.
func TestProgressHeldUntilBackfilled(t *testing.T) {
	rcv, db, start := restartRig(t, 0, "remote_write:\n- url: %s\n%s")
	series := `{__name__="held", job="test"}`

	w := start()
	store(t, w, db, "held", 1)
	waitUntil(t, "the first sample counted sent", func() bool { return w.rws.LowestSentTimestamp() > 0 })
	rcv.status.Store(http.StatusServiceUnavailable)
	store(t, w, db, "held", 2) // never sent before the restart
	_ = w.Close()
	// The record is in whole seconds, and this test takes less than one:
	// a second earlier tells it from anything the next runs would write.
	gapStart := w.loadProgress() - 1000
	if err := os.WriteFile(w.progressPath(), []byte(strconv.FormatInt(gapStart, 10)), 0o644); err != nil {
		t.Fatal(err)
	}

	// The second run sends what comes after its start, and stops before
	// its backfill ran.
	rcv.status.Store(http.StatusNoContent)
	w = start()
	store(t, w, db, "held", 3)
	waitUntil(t, "the second run's sample sent", func() bool {
		for _, v := range rcv.values(series) {
			if v == 3 {
				return w.rws.LowestSentTimestamp() > 0
			}
		}
		return false
	})
	w.saveProgress()
	_ = w.Close()
	if got := w.loadProgress(); got != gapStart {
		t.Fatalf("the progress moved from %d to %d before the gap was sent", gapStart, got)
	}

	w = start()
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w.Backfill(ctx, db)
	waitUntil(t, "the first run's unsent sample received", func() bool {
		for _, v := range rcv.values(series) {
			if v == 2 {
				return true
			}
		}
		return false
	})
	// Once it is sent, the progress follows the queues again.
	store(t, w, db, "held", 4)
	waitUntil(t, "the third run's sample counted sent", func() bool { return w.rws.LowestSentTimestamp() > 0 })
	w.saveProgress()
	if got := w.loadProgress(); got <= gapStart {
		t.Fatalf("after the backfill the progress stays at %d (the gap started at %d)", got, gapStart)
	}
}
