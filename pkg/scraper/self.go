package scraper

import (
	"bytes"
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/model/labels"
	"k8s.io/klog/v2"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// JobSelf is the job of kmetrics' own metrics in the TSDB.
const JobSelf = "kmetrics"

// SelfMetrics stores kmetrics' own /metrics in the TSDB every resolution, so
// rules can alert on kmetrics itself (failing scrapes, failing commits) and
// dashboards can chart it.
type SelfMetrics struct {
	gatherer prometheus.Gatherer
	db       Appendable
	target   *target
	buf      bytes.Buffer
}

// NewSelfMetrics stores what gatherer gathers.
func NewSelfMetrics(gatherer prometheus.Gatherer, db Appendable) *SelfMetrics {
	return &SelfMetrics{gatherer: gatherer, db: db,
		target: newTargetWithLabels(labels.FromStrings(storage.LabelJob, JobSelf, storage.LabelInstance, "kmetrics"))}
}

// WithMetadata records the families' type and help in m.
func (s *SelfMetrics) WithMetadata(m *storage.Metadata) *SelfMetrics {
	s.target.meta, s.target.metaTrusted = m, true
	return s
}

// Run stores the metrics every interval until ctx ends.
func (s *SelfMetrics) Run(ctx context.Context, interval time.Duration) {
	runEvery(ctx, interval, "Storing kmetrics' own metrics", s.writeOnce)
}

func (s *SelfMetrics) writeOnce(ctx context.Context, now time.Time) error {
	mfs, err := s.gatherer.Gather()
	if err != nil && len(mfs) == 0 {
		return err
	}
	s.buf.Reset()
	enc := expfmt.NewEncoder(&s.buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return storeExposition(ctx, s.db, s.target, s.buf.Bytes(), now)
}

// runEvery calls f every interval until ctx ends, logging its errors.
func runEvery(ctx context.Context, interval time.Duration, what string, f func(context.Context, time.Time) error) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if err := f(ctx, now); err != nil {
				klog.ErrorS(err, what)
			}
		}
	}
}

// textContentType is the text format's, of locally rendered expositions.
const textContentType = "text/plain; version=0.0.4"

// storeExposition stores a locally rendered exposition through the scrape
// path: whole or nothing, with staleness markers for series that went away.
func storeExposition(ctx context.Context, db Appendable, t *target, body []byte, now time.Time) error {
	app := db.Appender(ctx)
	if _, err := t.appendBody(app, body, textContentType, now); err != nil {
		_ = app.Rollback()
		return err
	}
	return app.Commit()
}
