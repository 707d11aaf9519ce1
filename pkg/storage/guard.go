package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
)

// DefaultFutureTolerance is how far ahead of kmetrics' clock a sample may
// be. Small next to the head's 1h append window, so no accepted sample can
// push honest ones out of it.
const DefaultFutureTolerance = 5 * time.Minute

// MaxFutureTolerance bounds --storage.future-tolerance: the head accepts
// samples down to half a block (1h) below its newest, so a tolerance near
// that would again let one writer lock every other one out.
const MaxFutureTolerance = 30 * time.Minute

// ErrFutureSample is a sample timestamped later than now plus the tolerance.
// It wraps the TSDB's out-of-bounds error, so every writer treats it as one
// refused sample, never a failed transaction.
var ErrFutureSample = fmt.Errorf("sample timestamp too far in the future: %w", promstorage.ErrOutOfBounds)

// Guard stands between every writer (kubelets, applications, cluster state,
// rules, kmetrics itself) and the TSDB. A sample later than now plus the
// tolerance would move the head's time window past every honest writer's
// samples (the head then refuses them as out of bounds until the wall clock
// catches up): the guard refuses it alone.
type Guard struct {
	db        promstorage.Appendable
	tolerance time.Duration
	now       func() time.Time
}

var _ promstorage.Appendable = (*Guard)(nil)

// NewGuard puts a guard in front of db.
func NewGuard(db promstorage.Appendable, tolerance time.Duration) *Guard {
	if tolerance <= 0 {
		tolerance = DefaultFutureTolerance
	}
	return &Guard{db: db, tolerance: tolerance, now: time.Now}
}

// Appender starts a guarded transaction. The bound is taken once: a
// transaction is short, and appends stay a comparison.
func (g *Guard) Appender(ctx context.Context) promstorage.Appender {
	return &guardedAppender{Appender: g.db.Appender(ctx), maxT: g.now().Add(g.tolerance).UnixMilli()}
}

type guardedAppender struct {
	promstorage.Appender
	maxT int64
}

func (a *guardedAppender) refuse(t int64) bool {
	if t <= a.maxT {
		return false
	}
	samplesRefused.WithLabelValues(refusedFuture).Inc()
	return true
}

func (a *guardedAppender) Append(ref promstorage.SeriesRef, l labels.Labels, t int64, v float64) (promstorage.SeriesRef, error) {
	if a.refuse(t) {
		return 0, ErrFutureSample
	}
	return a.Appender.Append(ref, l, t, v)
}

func (a *guardedAppender) AppendHistogram(ref promstorage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (promstorage.SeriesRef, error) {
	if a.refuse(t) {
		return 0, ErrFutureSample
	}
	return a.Appender.AppendHistogram(ref, l, t, h, fh)
}

func (a *guardedAppender) AppendExemplar(ref promstorage.SeriesRef, l labels.Labels, e exemplar.Exemplar) (promstorage.SeriesRef, error) {
	if e.HasTs && a.refuse(e.Ts) {
		return 0, ErrFutureSample
	}
	return a.Appender.AppendExemplar(ref, l, e)
}

func (a *guardedAppender) AppendSTZeroSample(ref promstorage.SeriesRef, l labels.Labels, t, st int64) (promstorage.SeriesRef, error) {
	if a.refuse(t) {
		return 0, ErrFutureSample
	}
	return a.Appender.AppendSTZeroSample(ref, l, t, st)
}

func (a *guardedAppender) AppendHistogramSTZeroSample(ref promstorage.SeriesRef, l labels.Labels, t, st int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (promstorage.SeriesRef, error) {
	if a.refuse(t) {
		return 0, ErrFutureSample
	}
	return a.Appender.AppendHistogramSTZeroSample(ref, l, t, st, h, fh)
}
