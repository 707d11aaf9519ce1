package storage

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"
)

// Options says where the TSDB lives and how long it keeps data.
type Options struct {
	// Path is the directory of the TSDB (a volume in a cluster).
	Path string
	// Retention is how long samples are kept; 0 means the TSDB default (15d).
	Retention time.Duration
	// RetentionSize caps the bytes of persisted blocks; 0 means no cap.
	RetentionSize int64
	// MaxExemplars is the most exemplars kept in memory (as Prometheus'
	// --storage.exemplars.exemplars-limit); 0 stores none. The ring starts
	// small and grows to it as exemplars arrive (exemplarRing).
	MaxExemplars int64
}

// ErrOpening is what reads and writes get while the TSDB opens (replays its
// WAL). It wraps tsdb.ErrNotReady, which Prometheus' query API answers with
// 503.
var ErrOpening = fmt.Errorf("the TSDB is still opening (replaying its WAL): %w", tsdb.ErrNotReady)

// DB is kmetrics' embedded Prometheus TSDB. It can be used as soon as it is
// returned: until the TSDB has opened, reads and writes fail with
// ErrOpening, so nothing that does not need history (kubectl top, the HPA on
// CPU and memory) waits for a WAL replay.
type DB struct {
	db        atomic.Pointer[tsdb.DB]
	exemplars *exemplarRing // nil when no exemplar is stored
	ready     chan struct{}
	err       error // why opening failed; set before ready closes
}

var (
	_ promstorage.Appendable              = (*DB)(nil)
	_ promstorage.SampleAndChunkQueryable = (*DB)(nil)
	_ promstorage.ExemplarQueryable       = (*DB)(nil)
)

// Open opens (or creates) the TSDB at opts.Path and waits until it is open.
// The WAL is replayed, so every sample committed before a crash is readable
// again.
func Open(opts Options, logger *slog.Logger, reg prometheus.Registerer) (*DB, error) {
	d := OpenInBackground(opts, logger, reg)
	<-d.ready
	if d.err != nil {
		return nil, d.err
	}
	return d, nil
}

// OpenInBackground returns at once and opens the TSDB meanwhile; Ready says
// when it is done and Err whether it failed.
func OpenInBackground(opts Options, logger *slog.Logger, reg prometheus.Registerer) *DB {
	d := &DB{ready: make(chan struct{})}
	if opts.MaxExemplars > 0 {
		d.exemplars = newExemplarRing(opts.Path, opts.MaxExemplars)
	}
	go func() {
		defer close(d.ready)
		db, err := open(opts, d.exemplars, logger, reg)
		if err == nil && d.exemplars != nil {
			if err = d.exemplars.attach(db); err != nil {
				_ = db.Close()
			}
		}
		if err != nil {
			d.err = err
			return
		}
		d.db.Store(db)
	}()
	return d
}

func open(opts Options, exemplars *exemplarRing, logger *slog.Logger, reg prometheus.Registerer) (*tsdb.DB, error) {
	if opts.Path == "" {
		return nil, fmt.Errorf("storage path must not be empty")
	}
	o := tsdb.DefaultOptions()
	if opts.Retention > 0 {
		o.RetentionDuration = opts.Retention.Milliseconds()
	}
	// As Prometheus sets it: blocks are merged up to a tenth of the
	// retention (at most 31d). The library default keeps every 2h block
	// apart, so a 15d history would be 180 blocks for every long query to
	// open and merge.
	o.MaxBlockDuration = min(o.RetentionDuration/10, (31 * 24 * time.Hour).Milliseconds())
	o.MaxBlockDuration = max(o.MaxBlockDuration, o.MinBlockDuration)
	o.MaxBytes = opts.RetentionSize
	// A kubelet's CPU and memory samples carry their own timestamps, which
	// can lag the scrape by a housekeeping period; accept a little disorder
	// instead of dropping those samples.
	o.OutOfOrderTimeWindow = (5 * time.Minute).Milliseconds()
	// The WAL is written on every commit: compressed, it is about half the
	// disk traffic and size.
	o.WALCompression = compression.Snappy
	// A graceful restart (a rollout) replays a snapshot of the head, not
	// the whole WAL.
	o.EnableMemorySnapshotOnShutdown = true
	if exemplars != nil {
		o.EnableExemplarStorage, o.MaxExemplars = true, exemplars.openSize()
	}
	o.StripeSize = headStripeSize(runtime.GOMAXPROCS(0))
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	moved, err := quarantineCorruptedBlocks(opts.Path, logger)
	if err != nil {
		return nil, fmt.Errorf("checking the TSDB's blocks at %q: %w", opts.Path, err)
	}
	quarantinedBlocks.Add(float64(len(moved)))
	db, err := tsdb.Open(opts.Path, logger, reg, o, nil)
	if err != nil {
		return nil, fmt.Errorf("opening TSDB at %q: %w", opts.Path, err)
	}
	return db, nil
}

// headStripeSize is how many locks (and maps) the head's series are spread
// over. Prometheus' default, 16,384, is sized for many cores appending at
// once and costs 3–5 MiB before the first series (make bench-footprint's
// heap profile): a third of what kmetrics holds on a small cluster. Two
// appenders collide on a stripe with probability 1/stripes, so 512 stripes
// per core keeps that as rare as the default does on 32 cores, from 1,024
// (a 1–2 CPU pod) to the default. Fewer stripes make larger maps: an append
// costs 0.31 µs instead of 0.20 on one core, 0.19 instead of 0.16 on two
// (BenchmarkHeadAppendStripes, 100,000 series) — 50 ms a 10 s cycle at
// 5,000 nodes × 30 pods, where the 4 MiB saved matter least; such a pod has
// more cores, and more stripes.
func headStripeSize(procs int) int {
	n := 1024
	for n < 512*procs && n < tsdb.DefaultStripeSize {
		n *= 2
	}
	return n
}

// Ready is closed once the TSDB has opened or failed to (see Err).
func (d *DB) Ready() <-chan struct{} { return d.ready }

// Err is why the TSDB could not be opened (nil while opening or once open).
func (d *DB) Err() error {
	select {
	case <-d.ready:
		return d.err
	default:
		return nil
	}
}

// HeadMinTime is the head's lower bound (ms): series whose last sample is
// older have left memory. math.MaxInt64 while the head is empty or the TSDB
// is opening.
func (d *DB) HeadMinTime() int64 {
	if db := d.db.Load(); db != nil {
		return db.Head().MinTime()
	}
	return math.MaxInt64
}

// Appender starts a transaction: everything appended is stored on Commit, or
// nothing on Rollback.
func (d *DB) Appender(ctx context.Context) promstorage.Appender {
	if db := d.db.Load(); db != nil {
		if d.exemplars != nil {
			return exemplarCountingAppender{Appender: db.Appender(ctx), ring: d.exemplars}
		}
		return db.Appender(ctx)
	}
	return openingAppender{}
}

// Querier reads samples between mint and maxt (milliseconds).
func (d *DB) Querier(mint, maxt int64) (promstorage.Querier, error) {
	if db := d.db.Load(); db != nil {
		return db.Querier(mint, maxt)
	}
	return nil, ErrOpening
}

// ChunkQuerier reads chunks between mint and maxt (milliseconds).
func (d *DB) ChunkQuerier(mint, maxt int64) (promstorage.ChunkQuerier, error) {
	if db := d.db.Load(); db != nil {
		return db.ChunkQuerier(mint, maxt)
	}
	return nil, ErrOpening
}

// ExemplarQuerier reads exemplars.
func (d *DB) ExemplarQuerier(ctx context.Context) (promstorage.ExemplarQuerier, error) {
	if db := d.db.Load(); db != nil {
		return db.ExemplarQuerier(ctx)
	}
	return nil, ErrOpening
}

// TSDB is the underlying database, nil until it has opened.
func (d *DB) TSDB() *tsdb.DB { return d.db.Load() }

// Close waits for the TSDB to finish opening, then flushes and closes it.
func (d *DB) Close() error {
	<-d.ready
	if db := d.db.Load(); db != nil {
		return db.Close()
	}
	return nil
}

// openingAppender refuses everything while the TSDB opens: the writer loses
// that history (and says so); nothing waits.
type openingAppender struct{}

func (openingAppender) Append(promstorage.SeriesRef, labels.Labels, int64, float64) (promstorage.SeriesRef, error) {
	return 0, ErrOpening
}
func (openingAppender) AppendExemplar(promstorage.SeriesRef, labels.Labels, exemplar.Exemplar) (promstorage.SeriesRef, error) {
	return 0, ErrOpening
}
func (openingAppender) AppendHistogram(promstorage.SeriesRef, labels.Labels, int64, *histogram.Histogram, *histogram.FloatHistogram) (promstorage.SeriesRef, error) {
	return 0, ErrOpening
}
func (openingAppender) AppendHistogramSTZeroSample(promstorage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (promstorage.SeriesRef, error) {
	return 0, ErrOpening
}
func (openingAppender) UpdateMetadata(promstorage.SeriesRef, labels.Labels, metadata.Metadata) (promstorage.SeriesRef, error) {
	return 0, ErrOpening
}
func (openingAppender) AppendSTZeroSample(promstorage.SeriesRef, labels.Labels, int64, int64) (promstorage.SeriesRef, error) {
	return 0, ErrOpening
}
func (openingAppender) SetOptions(*promstorage.AppendOptions) {}
func (openingAppender) Commit() error                         { return ErrOpening }
func (openingAppender) Rollback() error                       { return nil }
