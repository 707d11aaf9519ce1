package scraper

import (
	"bytes"
	"context"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// JobClusterState is the job of the cluster-state series, as dashboards
// built for kube-state-metrics select them.
const JobClusterState = "kube-state-metrics"

// StateRenderer writes cluster state as a text exposition (pkg/kubestate).
type StateRenderer interface {
	Render(b *bytes.Buffer) error
}

// ClusterState stores kube-state-metrics' series, rendered from informers,
// every interval through the same path as a scrape: whole or nothing, with
// staleness markers for objects that went away, type and help recorded.
type ClusterState struct {
	renderer StateRenderer
	db       Appendable
	target   *target
	buf      bytes.Buffer
}

// NewClusterState builds the writer; Run starts it.
func NewClusterState(r StateRenderer, db Appendable) *ClusterState {
	return &ClusterState{
		renderer: r, db: db,
		target: newTargetWithLabels(labels.FromStrings(storage.LabelJob, JobClusterState, storage.LabelInstance, "kmetrics")),
	}
}

// WithMetadata records the families' type and help in m.
func (c *ClusterState) WithMetadata(m *storage.Metadata) *ClusterState {
	c.target.meta, c.target.metaTrusted = m, true
	return c
}

// Run writes the series every interval until ctx ends.
func (c *ClusterState) Run(ctx context.Context, interval time.Duration) {
	runEvery(ctx, interval, "Writing cluster-state series", c.writeOnce)
}

func (c *ClusterState) writeOnce(ctx context.Context, now time.Time) error {
	c.buf.Reset()
	if err := c.renderer.Render(&c.buf); err != nil {
		return err
	}
	return storeExposition(ctx, c.db, c.target, c.buf.Bytes(), now)
}
