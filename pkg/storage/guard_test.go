package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
)

func openTestDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(Options{Path: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// appendAt appends one sample of a series named name and commits.
func appendAt(a promstorage.Appendable, name string, ts time.Time) error {
	app := a.Appender(context.Background())
	if _, err := app.Append(0, labels.FromStrings("__name__", name), ts.UnixMilli(), 1); err != nil {
		_ = app.Rollback()
		return err
	}
	return app.Commit()
}

// The attack the guard exists for: one sample two hours ahead, then an
// honest sample from every other writer. Unguarded, the head's window moves
// and refuses the honest sample; guarded, only the future sample is refused.
func TestGuardKeepsTheHeadWindowForHonestWriters(t *testing.T) {
	now := time.Now()
	t.Run("unguarded head, the attack works", func(t *testing.T) {
		db := openTestDB(t)
		if err := appendAt(db.TSDB(), "honest", now.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := appendAt(db.TSDB(), "evil", now.Add(2*time.Hour)); err != nil {
			t.Fatalf("the TSDB alone takes a sample 2h ahead: %v", err)
		}
		err := appendAt(db.TSDB(), "honest", now)
		if !errors.Is(err, promstorage.ErrOutOfBounds) && !errors.Is(err, promstorage.ErrTooOldSample) {
			t.Fatalf("honest sample after the future one: %v, want it refused as too old (the head window moved)", err)
		}
	})
	t.Run("guarded", func(t *testing.T) {
		db := openTestDB(t)
		g := NewGuard(db.TSDB(), 5*time.Minute)
		if err := appendAt(g, "evil", now.Add(2*time.Hour)); !errors.Is(err, ErrFutureSample) || !errors.Is(err, promstorage.ErrOutOfBounds) {
			t.Fatalf("future sample: %v, want ErrFutureSample (an out-of-bounds refusal)", err)
		}
		if err := appendAt(g, "within-tolerance", now.Add(4*time.Minute)); err != nil {
			t.Fatalf("a sample within the tolerance: %v", err)
		}
		if err := appendAt(g, "honest", now); err != nil {
			t.Fatalf("honest sample refused: %v", err)
		}
		if err := appendAt(g, "honest-late", now.Add(-30*time.Minute)); err != nil {
			t.Fatalf("a late honest sample refused: %v", err)
		}
	})
}

func TestSeriesBudget(t *testing.T) {
	hashes := func(from, n int) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = uint64(from + i)
		}
		return out
	}
	headMin := int64(0)
	b := NewSeriesBudget(100, 150, func() int64 { return headMin })
	if err := b.Admit("a", hashes(0, 100), 10); err != nil {
		t.Fatalf("exactly the budget: %v", err)
	}
	if err := b.Admit("a", hashes(0, 100), 20); err != nil {
		t.Fatalf("the same series again cost nothing new: %v", err)
	}
	var be *ErrSeriesBudget
	if err := b.Admit("a", hashes(50, 51), 30); !errors.As(err, &be) || be.Scope != "namespace" || be.New != 1 {
		t.Fatalf("one series over: %v", err)
	}
	if got := b.Held("a"); got != 100 {
		t.Fatalf("a refused scrape charged something: held %d", got)
	}
	if err := b.Admit("b", hashes(1000, 50), 30); err != nil {
		t.Fatalf("another namespace within both budgets: %v", err)
	}
	if err := b.Admit("c", hashes(2000, 1), 30); !errors.As(err, &be) || be.Scope != "applications" {
		t.Fatalf("over the total: %v", err)
	}
	// The head drops series whose last sample is older than its lower
	// bound: a's series last seen at 20 and b's at 30 are released at 25.
	headMin = 25
	if got := b.Held("a"); got != 0 {
		t.Fatalf("after truncation a holds %d", got)
	}
	if got := b.Held("b"); got != 50 {
		t.Fatalf("b's live series released: %d", got)
	}
	if err := b.Admit("c", hashes(2000, 100), 40); err != nil {
		t.Fatalf("room again after truncation: %v", err)
	}
}

func TestSeriesBudgetEmptyHeadReleasesNothing(t *testing.T) {
	b := NewSeriesBudget(10, 0, func() int64 { return int64(^uint64(0) >> 1) })
	if err := b.Admit("a", []uint64{1, 2, 3}, 5); err != nil {
		t.Fatal(err)
	}
	if b.Held("a") != 3 {
		t.Fatalf("an empty head's bound (MaxInt64) released series: %d", b.Held("a"))
	}
}
