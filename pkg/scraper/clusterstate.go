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

// StateRenderer writes cluster state as a text exposition (pkg/kubestate),
// calling flush after each family.
type StateRenderer interface {
	RenderFamilies(b *bytes.Buffer, flush func() error) error
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

// writeOnce parses the exposition family by family as it is rendered (the
// buffer holds one family, not the cluster's), then stores it whole or not
// at all, as a scrape.
func (c *ClusterState) writeOnce(ctx context.Context, now time.Time) error {
	c.target.beginParse(now)
	c.buf.Reset()
	flush := func() error {
		err := c.target.parseBody(c.buf.Bytes(), textContentType)
		c.buf.Reset()
		return err
	}
	if err := c.renderer.RenderFamilies(&c.buf, flush); err != nil {
		return err
	}
	if c.buf.Len() > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	app := c.db.Appender(ctx)
	if _, err := c.target.finishParse(app); err != nil {
		_ = app.Rollback()
		return err
	}
	return app.Commit()
}
