package storage

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// writeBlock persists a two-sample block of one series into dir.
func writeBlock(t *testing.T, dir, name string, at time.Time) string {
	t.Helper()
	s := promstorage.NewListSeries(labels.FromStrings("__name__", name), []chunks.Sample{
		sampleAt(at.UnixMilli(), 1), sampleAt(at.Add(time.Minute).UnixMilli(), 2),
	})
	block, err := tsdb.CreateBlock([]promstorage.Series{s}, dir, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return block
}

// A block that cannot be opened (a torn write, a bad disk) stops the TSDB
// from opening at all; kmetrics moves it aside, reports it and serves the
// rest instead of crash-looping.
func TestCorruptedBlockIsMovedAside(t *testing.T) {
	dir := t.TempDir()
	at := time.Now().Add(-6 * time.Hour)
	good := writeBlock(t, dir, "kept", at)
	bad := writeBlock(t, dir, "lost", at.Add(-3*time.Hour))
	if err := os.WriteFile(filepath.Join(bad, "index"), []byte("not an index"), 0o644); err != nil {
		t.Fatal(err)
	}
	if db, err := tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, tsdb.DefaultOptions(), nil); err == nil {
		_ = db.Close()
		t.Fatal("the library alone opened a TSDB with a corrupted block: the test corrupts nothing")
	}

	db, err := Open(Options{Path: dir}, nil, nil)
	if err != nil {
		t.Fatalf("open with a corrupted block: %v", err)
	}
	defer db.Close()
	if _, err := os.Stat(filepath.Join(dir, quarantineDir, filepath.Base(bad))); err != nil {
		t.Fatalf("corrupted block not moved to %s: %v", quarantineDir, err)
	}
	if _, err := os.Stat(good); err != nil {
		t.Fatalf("the good block was touched: %v", err)
	}
	q, err := db.Querier(0, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "kept"))
	if !set.Next() {
		t.Fatalf("the good block's series is not served: %v", set.Err())
	}
}

type testSample struct {
	t int64
	f float64
}

func sampleAt(t int64, f float64) chunks.Sample { return testSample{t, f} }

func (s testSample) T() int64                      { return s.t }
func (s testSample) ST() int64                     { return 0 }
func (s testSample) F() float64                    { return s.f }
func (s testSample) H() *histogram.Histogram       { return nil }
func (s testSample) FH() *histogram.FloatHistogram { return nil }
func (s testSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s testSample) Copy() chunks.Sample           { return s }
