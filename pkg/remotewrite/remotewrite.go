// Package remotewrite ships everything kmetrics stores to remote storage
// with Prometheus' own remote write (queue manager, WAL watcher over the
// TSDB's WAL), configured by the remote_write section of a Prometheus
// configuration file, so an operator's existing block works unchanged.
package remotewrite

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
)

// flushDeadline bounds what shutdown waits for the queues to send: the
// shipped StatefulSet grants 60 s, and the TSDB's head snapshot comes after.
var flushDeadline = 30 * time.Second

// Writer runs Prometheus' remote write storage from a configuration file.
type Writer struct {
	file   string
	dir    string // the TSDB's
	logger *slog.Logger
	rws    *remote.WriteStorage
	// started is when the queues began reading the WAL: what is older and
	// was not sent before a restart is the backfill's.
	started time.Time
	// backfillPending holds the recorded progress at the last run's until
	// the backfill has sent the gap after it: a restart before that (a
	// crash loop) must find the gap's start still recorded.
	backfillPending atomic.Bool

	mu      sync.Mutex
	loaded  [sha256.Size]byte // of the file's bytes last applied or refused
	applied *config.Config
	err     error
}

// New reads file (a Prometheus configuration: global.external_labels and
// remote_write are used) and starts the queues. tsdbDir is the TSDB's
// directory: the WAL watcher reads <tsdbDir>/wal. An invalid file is an
// error (file and line); nothing starts.
func New(file, tsdbDir string, reg prometheus.Registerer, logger *slog.Logger) (*Writer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{file: file, dir: tsdbDir, logger: logger, rws: remote.NewWriteStorage(logger, reg, tsdbDir, flushDeadline, nil, false)}
	registerMetrics(reg)
	w.started = time.Now()
	w.backfillPending.Store(w.loadProgress() > 0)
	if _, err := w.reload(); err != nil {
		_ = w.rws.Close()
		return nil, err
	}
	return w, nil
}

// Load parses file as Prometheus does and keeps what remote write uses.
func Load(file string) (*config.Config, error) {
	cfg, err := config.LoadFile(file, false, nil)
	if err != nil {
		return nil, fmt.Errorf("--remote-write.config: %w", err)
	}
	return &config.Config{GlobalConfig: cfg.GlobalConfig, RemoteWriteConfigs: cfg.RemoteWriteConfigs}, nil
}

// reload applies the file if it changed since the last attempt (changed
// says whether it did). An invalid file is refused whole: the queues in
// force keep sending.
func (w *Writer) reload() (changed bool, _ error) {
	b, err := os.ReadFile(w.file)
	if err != nil {
		return true, w.note(fmt.Errorf("--remote-write.config: %w", err))
	}
	sum := sha256.Sum256(b)
	w.mu.Lock()
	same := sum == w.loaded
	w.loaded = sum
	w.mu.Unlock()
	if same {
		return false, w.LastError()
	}
	cfg, err := Load(w.file)
	if err != nil {
		return true, w.note(err)
	}
	if err := w.rws.ApplyConfig(cfg); err != nil {
		return true, w.note(fmt.Errorf("--remote-write.config %s: %w", w.file, err))
	}
	w.mu.Lock()
	w.applied = cfg
	w.mu.Unlock()
	urls := make([]string, 0, len(cfg.RemoteWriteConfigs))
	for _, rw := range cfg.RemoteWriteConfigs {
		urls = append(urls, rw.URL.Redacted())
	}
	w.logger.Info("Loaded the remote write configuration", "file", w.file, "remote_write", urls, "external_labels", cfg.GlobalConfig.ExternalLabels.String())
	return true, w.note(nil)
}

func (w *Writer) note(err error) error {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	if err != nil {
		reloadSuccessful.Set(0)
	} else {
		reloadSuccessful.Set(1)
		reloadTime.SetToCurrentTime()
	}
	return err
}

// LastError is the error of the last load (nil once valid).
func (w *Writer) LastError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Run rereads the file when it changes (checked every 5 s) or reload asks
// (SIGHUP), and records how far the queues have sent, until ctx ends.
func (w *Writer) Run(ctx context.Context, reload <-chan struct{}) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			w.saveProgress()
		case <-reload:
		}
		if changed, err := w.reload(); changed && err != nil {
			w.logger.Error("Reloading the remote write configuration: keeping the one in force", "err", err)
		}
	}
}

// Notify wakes the WAL watchers when the TSDB has written (the TSDB's
// SetWriteNotified), instead of their 15 s poll.
func (w *Writer) Notify() { w.rws.Notify() }

// Close flushes what the queues hold (up to flushDeadline), stops them and
// records how far they got.
func (w *Writer) Close() error {
	err := w.rws.Close()
	w.saveProgress()
	return err
}

// Tee makes every transaction on db also count its samples into the
// queues' input rate, which their resharding follows (what Prometheus'
// fanout storage does). The samples themselves are read from the WAL.
func (w *Writer) Tee(db promstorage.Appendable) promstorage.Appendable {
	return tee{db: db, counter: w.rws}
}

type tee struct {
	db, counter promstorage.Appendable
}

func (t tee) Appender(ctx context.Context) promstorage.Appender {
	return &teeAppender{Appender: t.db.Appender(ctx), counter: t.counter.Appender(ctx)}
}

// teeAppender writes to the TSDB; what the TSDB took is counted.
type teeAppender struct {
	promstorage.Appender
	counter promstorage.Appender
}

func (a *teeAppender) Append(ref promstorage.SeriesRef, l labels.Labels, t int64, v float64) (promstorage.SeriesRef, error) {
	ref, err := a.Appender.Append(ref, l, t, v)
	if err == nil {
		_, _ = a.counter.Append(0, l, t, v)
	}
	return ref, err
}

func (a *teeAppender) AppendHistogram(ref promstorage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (promstorage.SeriesRef, error) {
	ref, err := a.Appender.AppendHistogram(ref, l, t, h, fh)
	if err == nil {
		_, _ = a.counter.AppendHistogram(0, l, t, h, fh)
	}
	return ref, err
}

func (a *teeAppender) AppendExemplar(ref promstorage.SeriesRef, l labels.Labels, e exemplar.Exemplar) (promstorage.SeriesRef, error) {
	ref, err := a.Appender.AppendExemplar(ref, l, e)
	if err == nil {
		_, _ = a.counter.AppendExemplar(0, l, e)
	}
	return ref, err
}

func (a *teeAppender) UpdateMetadata(ref promstorage.SeriesRef, l labels.Labels, m metadata.Metadata) (promstorage.SeriesRef, error) {
	return a.Appender.UpdateMetadata(ref, l, m)
}

func (a *teeAppender) Commit() error {
	if err := a.Appender.Commit(); err != nil {
		_ = a.counter.Rollback()
		return err
	}
	return a.counter.Commit()
}

func (a *teeAppender) Rollback() error {
	_ = a.counter.Rollback()
	return a.Appender.Rollback()
}
