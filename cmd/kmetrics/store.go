package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	promstorage "github.com/prometheus/prometheus/storage"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/kmetrics/kmetrics/pkg/remotewrite"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

// store is the TSDB and what stands in front of it (the guard, the series
// budget) and beside it (the latest-value index and its snapshot).
type store struct {
	db       *storage.DB
	guard    *storage.Guard
	budget   *storage.SeriesBudget
	index    *storage.Index
	snapshot string // the index snapshot's path
	// remote ships the TSDB's WAL to remote storage (nil without
	// --remote-write.config).
	remote *remotewrite.Writer
}

// openStore starts opening the TSDB and returns at once with the index
// loaded from its snapshot: kubectl top is served from the first second,
// whatever the WAL replay takes.
func openStore(o *options, lookback time.Duration) (*store, error) {
	retentionSize, _ := o.retentionBytes() // validated
	db := storage.OpenInBackground(storage.Options{
		Path:          o.tsdbPath,
		Retention:     time.Duration(o.tsdbRetentionTime),
		RetentionSize: retentionSize,
		MaxExemplars:  o.tsdbMaxExemplars,
	}, slog.New(logr.ToSlogHandler(klog.Background().WithName("tsdb"))), legacyregistry.Registerer())
	var appendable promstorage.Appendable = db
	var remote *remotewrite.Writer
	if o.remoteWriteConfig != "" {
		var err error
		remote, err = remotewrite.New(o.remoteWriteConfig, o.tsdbPath, legacyregistry.Registerer(),
			slog.New(logr.ToSlogHandler(klog.Background().WithName("remote-write"))))
		if err != nil {
			_ = db.Close()
			return nil, err
		}
		appendable = remote.Tee(db)
	}
	s := &store{
		db:     db,
		remote: remote,
		// Every writer goes through the guard; application targets also
		// through their namespace's series budget.
		guard:    storage.NewGuard(appendable, o.futureTolerance),
		budget:   storage.NewSeriesBudget(o.namespaceSeriesLimit, o.applicationSeriesLimit, db.HeadMinTime),
		index:    storage.NewIndex(),
		snapshot: filepath.Join(o.tsdbPath, storage.IndexSnapshotFile),
	}
	storage.RegisterBudgetMetrics(s.budget)
	storage.RegisterIndexMetrics(s.index)
	start := time.Now()
	nodes, pods, taken, err := s.index.LoadSnapshot(s.snapshot, start.Add(-lookback))
	switch {
	case err != nil:
		klog.ErrorS(err, "Ignoring the index snapshot; the index is rebuilt from the TSDB once it is open")
	case nodes > 0:
		klog.InfoS("Serving the index snapshot while the TSDB opens", "nodes", nodes, "pods", pods, "taken", taken, "duration", time.Since(start))
	}
	return s, nil
}

// whenOpen waits for the TSDB to open, then rebuilds the index from its
// last minutes (newer than any snapshot) and calls then. It returns the
// error that kept the TSDB from opening.
func (s *store) whenOpen(ctx context.Context, lookback time.Duration, then func()) error {
	start := time.Now()
	select {
	case <-ctx.Done():
		return nil
	case <-s.db.Ready():
	}
	if err := s.db.Err(); err != nil {
		return err
	}
	if s.remote != nil {
		// The WAL watchers wake on every write instead of polling.
		s.db.TSDB().SetWriteNotified(s.remote)
	}
	now := time.Now()
	if err := storage.RebuildIndex(ctx, s.db, s.index, now.Add(-lookback).UnixMilli(), now.UnixMilli()); err != nil {
		return fmt.Errorf("rebuilding the index from the TSDB: %w", err)
	}
	nodes, pods := s.index.Size()
	klog.InfoS("The TSDB is open; index rebuilt from it", "nodes", nodes, "pods", pods, "duration", time.Since(start))
	then()
	if s.remote != nil {
		// What was stored but not sent before a restart.
		s.remote.Backfill(ctx, s.db)
	}
	return nil
}

// writeSnapshots writes the index snapshot every interval and once more
// when ctx ends (a graceful restart then serves its last state).
func (s *store) writeSnapshots(ctx context.Context, every time.Duration) {
	write := func() {
		if err := s.index.WriteSnapshot(s.snapshot, time.Now()); err != nil {
			klog.ErrorS(err, "Writing the index snapshot", "path", s.snapshot)
		}
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			write()
			return
		case <-tick.C:
			write()
		}
	}
}

// close flushes remote write (every writer has stopped: the WAL is
// complete), then closes the TSDB.
func (s *store) close() {
	if s.remote != nil {
		if err := s.remote.Close(); err != nil {
			klog.ErrorS(err, "Closing remote write")
		}
	}
	if err := s.db.Close(); err != nil {
		klog.ErrorS(err, "Closing the TSDB")
	}
}
