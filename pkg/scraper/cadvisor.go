package scraper

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/klog/v2"
)

// scrapeCadvisor scrapes a node's cAdvisor metrics once (opt-in): stored
// under job="kubelet", metrics_path="/metrics/cadvisor" as the
// kubernetes-mixin dashboards expect, filtered by the allow/deny lists. It
// does not feed the latest-value index; a failure is up=0 and the target's
// series end, the node's resource metrics are unaffected.
func (m *Manager) scrapeCadvisor(ctx context.Context, name string, t *target) *target {
	node, err := m.nodes.Get(name)
	if err != nil {
		return t
	}
	u, instance, path, err := m.client.endpointAt(node, m.cadvisor.Path)
	if err != nil {
		return t
	}
	if t == nil || t.instance() != instance || t.path() != path {
		if t != nil {
			m.endSeries(name, t)
		}
		t = newKubeletTarget(name, instance, path)
		t.keep, t.meta = m.cadvisor.keep, m.meta
	}
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return t
	}
	defer func() { <-m.sem }()

	start := time.Now()
	fctx, cancel := context.WithTimeout(ctx, m.timeout)
	bp := bodyBuffers.Get().(*[]byte)
	body, contentType, err := m.client.fetch(fctx, u, (*bp)[:0])
	cancel()
	defer putBuffer(bp, body)
	app := m.db.Appender(ctx)
	if err == nil {
		var res scrapeResult
		if res, err = t.appendBody(app, body, contentType, start); err == nil {
			t.appendReport(app, start, 1, time.Since(start), res.samples)
			if err := app.Commit(); err != nil {
				scrapeFailures.WithLabelValues(reasonStorage).Inc()
				klog.ErrorS(err, "Committing cAdvisor scrape to the TSDB", "node", name)
			}
			return t
		}
	}
	_ = app.Rollback()
	if ctx.Err() != nil {
		return t
	}
	reason := reasonFetch
	var tl errTooLarge
	switch {
	case errors.As(err, &tl):
		reason = reasonTooLarge
	case errors.Is(err, errBody):
		reason = reasonBody
	}
	klog.ErrorS(fmt.Errorf("scraping %s: %w", u, err), "Failed to scrape cAdvisor metrics", "node", name, "reason", reason)
	scrapeFailures.WithLabelValues(reason).Inc()
	app = m.db.Appender(context.Background())
	if err := t.markAllStale(app, start); err != nil {
		_ = app.Rollback()
		return t
	}
	t.appendReport(app, start, 0, time.Since(start), 0)
	if err := app.Commit(); err != nil {
		klog.ErrorS(err, "Recording failed cAdvisor scrape", "node", name)
	}
	return t
}
