package scraper

import (
	"context"
	"fmt"

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
		t.keep, t.meta, t.maxAhead = m.cadvisor.keep, m.meta, m.maxAhead
	}
	o := m.scrapeKubelet(ctx, t, u)
	switch {
	case o.canceled:
	case o.err != nil:
		klog.ErrorS(fmt.Errorf("scraping %s: %w", u, o.err), "Failed to scrape cAdvisor metrics", "node", name, "reason", o.reason)
		scrapeFailures.WithLabelValues(o.reason).Inc()
		if err := storeEnd(m.db, t, o.start, true, o.dur); err != nil {
			klog.ErrorS(err, "Recording failed cAdvisor scrape", "node", name)
		}
	case o.storeErr != nil:
		scrapeFailures.WithLabelValues(reasonStorage).Inc()
		klog.ErrorS(o.storeErr, "Committing cAdvisor scrape to the TSDB", "node", name)
	}
	return t
}
