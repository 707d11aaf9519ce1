package storage

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
}

// DB is kmetrics' embedded Prometheus TSDB.
type DB struct {
	db *tsdb.DB
}

// Open opens (or creates) the TSDB at opts.Path. The WAL is replayed, so
// every sample committed before a crash is readable again.
func Open(opts Options, logger *slog.Logger, reg prometheus.Registerer) (*DB, error) {
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
	return &DB{db: db}, nil
}

// HeadMinTime is the head's lower bound (ms): series whose last sample is
// older have left memory. math.MaxInt64 while the head is empty.
func (d *DB) HeadMinTime() int64 { return d.db.Head().MinTime() }

// Appender starts a transaction: everything appended is stored on Commit, or
// nothing on Rollback.
func (d *DB) Appender(ctx context.Context) promstorage.Appender { return d.db.Appender(ctx) }

// Querier reads samples between mint and maxt (milliseconds).
func (d *DB) Querier(mint, maxt int64) (promstorage.Querier, error) { return d.db.Querier(mint, maxt) }

// TSDB exposes the underlying database to the query engine and the API.
func (d *DB) TSDB() *tsdb.DB { return d.db }

// Close flushes and closes the TSDB.
func (d *DB) Close() error { return d.db.Close() }
