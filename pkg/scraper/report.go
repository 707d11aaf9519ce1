package scraper

import (
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
)

// Report series Prometheus writes for every scrape, with the target's labels.
var reportNames = [...]string{"up", "scrape_duration_seconds", "scrape_samples_scraped"}

func (t *target) instance() string { return t.targetLabels.Get("instance") }
func (t *target) path() string     { return t.targetLabels.Get("metrics_path") }

// maxKeptBuffer bounds the body buffer a target keeps between scrapes, so
// one huge response does not pin its memory for the node's lifetime.
const maxKeptBuffer = 4 << 20

func (t *target) keepBuffer(b []byte) {
	if cap(b) > maxKeptBuffer {
		b = nil
	}
	t.buf = b[:0]
}

// appendReport appends up, scrape_duration_seconds and scrape_samples_scraped.
func (t *target) appendReport(app promstorage.Appender, at time.Time, up float64, dur time.Duration, samples int) {
	if t.report[0] == nil {
		for i, name := range reportNames {
			b := labels.NewBuilder(t.targetLabels)
			b.Set(labels.MetricName, name)
			t.report[i] = &seriesEntry{lset: b.Labels()}
		}
	}
	ts := at.UnixMilli()
	for i, v := range [...]float64{up, dur.Seconds(), float64(samples)} {
		// A refused report sample (same millisecond as the last) loses
		// nothing worth failing the scrape for.
		_, _ = t.appendOne(app, t.report[i], ts, v)
	}
}
