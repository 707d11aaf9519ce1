package scraper

import (
	"context"
	"errors"
	"time"
)

// fetchFunc GETs a target's metrics into buf (reused between scrapes).
type fetchFunc func(ctx context.Context, buf []byte) (body []byte, contentType string, err error)

// scrapeOutcome is one scrape attempt of a target.
type scrapeOutcome struct {
	res      scrapeResult
	start    time.Time
	dur      time.Duration
	reason   string // why nothing was taken: fetch, too_large, body, or clock_ahead; "" when taken
	err      error  // the failure reason stands for
	storeErr error  // parsed, indexed and counted, but the TSDB refused the append or commit (a full disk)
	canceled bool   // the scrape was cut by ctx: nothing to record
}

// scrapeOnce is the scrape path every target shares (kubelet resource and
// cAdvisor metrics, applications): fetch within timeout, parse the whole
// body, append it with the report series (up, scrape_duration_seconds,
// scrape_samples_scraped), commit — or store nothing, and say why.
func scrapeOnce(ctx context.Context, db Appendable, t *target, timeout time.Duration, fetch fetchFunc) (o scrapeOutcome) {
	o.start = time.Now()
	fctx, cancel := context.WithTimeout(ctx, timeout)
	bp := bodyBuffers.Get().(*[]byte)
	body, contentType, err := fetch(fctx, (*bp)[:0])
	cancel()
	defer putBuffer(bp, body)
	if err != nil {
		o.canceled = ctx.Err() != nil
		o.reason, o.err = reasonFetch, err
		var tl errTooLarge
		if errors.As(err, &tl) {
			o.reason = reasonTooLarge
		}
		o.dur = time.Since(o.start)
		return o
	}
	app := db.Appender(ctx)
	o.res, err = t.appendBody(app, body, contentType, o.start)
	var storeErr *storageError
	var refused *refusal
	switch {
	case errors.As(err, &storeErr):
		// Parsed and indexed; the TSDB refused it: history only is lost.
		_ = app.Rollback()
		o.dur = time.Since(o.start)
		o.storeErr = storeErr.err
		return o
	case errors.As(err, &refused):
		o.reason, o.err = refused.reason, refused.err
	case err != nil:
		o.reason, o.err = reasonBody, err
	}
	if err != nil {
		_ = app.Rollback()
		o.dur = time.Since(o.start)
		return o
	}
	o.dur = time.Since(o.start)
	t.appendReport(app, o.start, 1, o.dur, o.res.samples)
	o.storeErr = app.Commit()
	return o
}

// storeEnd ends every series of t at `at` (staleness markers); failed also
// records the failed scrape (up=0, its duration) that ended them.
func storeEnd(db Appendable, t *target, at time.Time, failed bool, dur time.Duration) error {
	app := db.Appender(context.Background())
	if err := t.markAllStale(app, at); err != nil {
		_ = app.Rollback()
		return err
	}
	if failed {
		t.appendReport(app, at, 0, dur, 0)
	}
	return app.Commit()
}
