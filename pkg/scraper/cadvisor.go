package scraper

import (
	"context"
	"fmt"

	"k8s.io/klog/v2"
)

// scrapeEndpoint scrapes one further kubelet endpoint of a node once
// (opt-in: cAdvisor, the kubelet's /metrics): stored under job="kubelet",
// metrics_path=<path> as the kubernetes-mixin's dashboards and alerts
// expect, filtered by the allow/deny lists. It does not feed the
// latest-value index; a failure is up=0 and the target's series end, the
// node's resource metrics are unaffected.
func (m *Manager) scrapeEndpoint(ctx context.Context, name string, ep *KubeletEndpoint, t *target) *target {
	node, err := m.nodes.Get(name)
	if err != nil {
		return t
	}
	u, instance, path, err := m.client.endpointAt(node, ep.Path)
	if err != nil {
		return t
	}
	if t == nil || t.instance() != instance || t.path() != path {
		if t != nil {
			m.endSeries(name, t)
		}
		t = newKubeletTarget(name, instance, path)
		t.keep, t.meta, t.maxAhead = ep.keep, m.meta, m.maxAhead
	}
	o := m.scrapeKubelet(ctx, t, u)
	switch {
	case o.canceled:
	case o.err != nil:
		klog.ErrorS(fmt.Errorf("scraping %s: %w", u, o.err), "Failed to scrape kubelet endpoint", "endpoint", ep.Name, "node", name, "reason", o.reason)
		scrapeFailures.WithLabelValues(o.reason).Inc()
		if err := storeEnd(m.db, t, o.start, true, o.dur); err != nil {
			klog.ErrorS(err, "Recording failed kubelet endpoint scrape", "endpoint", ep.Name, "node", name)
		}
	case o.storeErr != nil:
		scrapeFailures.WithLabelValues(reasonStorage).Inc()
		klog.ErrorS(o.storeErr, "Committing kubelet endpoint scrape to the TSDB", "endpoint", ep.Name, "node", name)
	}
	return t
}
