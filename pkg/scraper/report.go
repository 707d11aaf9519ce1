package scraper

import (
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
)

// Report series Prometheus writes for every scrape, with the target's labels.
var reportNames = [...]string{"up", "scrape_duration_seconds", "scrape_samples_scraped"}

func (t *target) instance() string { return t.targetLabels.Get("instance") }
func (t *target) path() string     { return t.targetLabels.Get("metrics_path") }

// bodyBuffers holds response buffers between scrapes. Shared by all nodes
// (only scrapes in flight hold one), and nothing parsed keeps a reference
// into a body, so a buffer is reused as soon as its scrape is stored.
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// maxPooledBuffer keeps one huge response from pinning its memory.
const maxPooledBuffer = 4 << 20

func putBuffer(bp *[]byte, b []byte) {
	if cap(b) > maxPooledBuffer {
		return
	}
	*bp = b[:0]
	bodyBuffers.Put(bp)
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
