package scraper

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/kmetrics/kmetrics/pkg/kubestate"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

// JobClusterState is the job of the cluster-state series, as dashboards
// built for kube-state-metrics select them.
const JobClusterState = "kube-state-metrics"

// instanceClusterState is the instance label of the cluster-state series.
const instanceClusterState = "kmetrics"

// StateRenderer hands cluster state to a sink, family by family
// (pkg/kubestate).
type StateRenderer interface {
	RenderTo(s kubestate.Sink) error
}

// ClusterState stores kube-state-metrics' series, rendered from informers,
// every interval: whole or nothing, with staleness markers for objects that
// went away, type and help recorded.
//
// The series go to the TSDB by their labels, with no cache of their own:
// the head finds each by its labels' hash, as it would a new series. A
// scrape-style cache (raw text → labels and reference) would hold a second
// copy of every series' text beside the head's (~20 MB at 3,000 pods) for
// a saving of one hash per series per interval. What is kept between writes
// is the references written, sorted, to mark the ones that went away.
type ClusterState struct {
	renderer StateRenderer
	db       Appendable
	meta     *storage.Metadata

	// Of the write in progress (a Sink for the renderer).
	app         promstorage.Appender
	nowMs       int64
	builder     labels.ScratchBuilder
	written     []promstorage.SeriesRef
	refused     int
	err         error
	pendingMeta []storage.MetadataUpdate

	// last holds the references the last committed write wrote, sorted.
	last []promstorage.SeriesRef
}

// NewClusterState builds the writer; Run starts it.
func NewClusterState(r StateRenderer, db Appendable) *ClusterState {
	return &ClusterState{renderer: r, db: db}
}

// WithMetadata records the families' type and help in m.
func (c *ClusterState) WithMetadata(m *storage.Metadata) *ClusterState {
	c.meta = m
	return c
}

// Run writes the series every interval until ctx ends.
func (c *ClusterState) Run(ctx context.Context, interval time.Duration) {
	runEvery(ctx, interval, "Writing cluster-state series", c.writeOnce)
}

// writeOnce appends every series as the renderer hands it over, then marks
// the ones the last write had and this one has not, and commits: or, on any
// error, stores nothing.
func (c *ClusterState) writeOnce(ctx context.Context, now time.Time) error {
	c.app = c.db.Appender(ctx)
	defer func() { c.app = nil }()
	c.nowMs, c.written, c.err = now.UnixMilli(), c.written[:0], nil
	c.pendingMeta = c.pendingMeta[:0]
	err := c.renderer.RenderTo(c)
	if err == nil {
		err = c.err
	}
	if err == nil {
		err = c.markGone()
	}
	if err != nil {
		_ = c.app.Rollback()
		return err
	}
	if err := c.app.Commit(); err != nil {
		return err
	}
	if c.meta != nil {
		c.meta.Apply(c.pendingMeta, true)
	}
	// Duplicates (two objects rendering the same series) are one series:
	// the head keeps the first sample of a timestamp.
	c.last, c.written = slices.Compact(c.written), c.last
	return nil
}

// markGone appends a staleness marker to every series of the last write
// that this one did not write, so PromQL stops returning it at once.
func (c *ClusterState) markGone() error {
	slices.Sort(c.written)
	stale := math.Float64frombits(value.StaleNaN)
	for _, ref := range c.last {
		if _, found := slices.BinarySearch(c.written, ref); found {
			continue
		}
		// By reference alone: a series the head has since dropped (no
		// sample in its range) has nothing to end.
		_, err := c.app.Append(ref, labels.EmptyLabels(), c.nowMs, stale)
		if err != nil && !refusedSample(err) && !errors.Is(err, tsdb.ErrInvalidSample) {
			return fmt.Errorf("marking a cluster-state series stale: %w", err)
		}
	}
	return nil
}

// Family records the family's type and help (kubestate.Sink).
func (c *ClusterState) Family(name, help, typ string) {
	c.pendingMeta = append(c.pendingMeta,
		storage.MetadataUpdate{Kind: storage.MetadataType, Family: name, Value: typ},
		storage.MetadataUpdate{Kind: storage.MetadataHelp, Family: name, Value: help})
}

// Sample appends one sample (kubestate.Sink). Its labels are the pairs with
// a value, and the job and instance, a rendered label of either name kept
// as exported_<name> as a scrape would.
func (c *ClusterState) Sample(name string, v float64, base, kv []string) {
	if c.err != nil {
		return
	}
	b := &c.builder
	b.Reset()
	b.Add(labels.MetricName, name)
	for _, pairs := range [2][]string{base, kv} {
		for i := 0; i+1 < len(pairs); i += 2 {
			n, val := pairs[i], pairs[i+1]
			if val == "" {
				continue
			}
			if n == storage.LabelJob || n == storage.LabelInstance {
				n = "exported_" + n
			}
			if !utf8.ValidString(val) {
				// An annotation sent as protobuf may hold any bytes; the
				// text format would refuse the whole write for it.
				val = strings.ToValidUTF8(val, "\uFFFD")
			}
			b.Add(n, val)
		}
	}
	b.Add(storage.LabelJob, JobClusterState)
	b.Add(storage.LabelInstance, instanceClusterState)
	b.Sort()
	ref, err := c.app.Append(0, b.Labels(), c.nowMs, v)
	switch {
	case err == nil:
		c.written = append(c.written, ref)
	case refusedSample(err):
		// A sample is lost (the clock stepped back), not the write.
	default:
		c.err = fmt.Errorf("appending %s: %w", name, err)
	}
}

// EndFamily ends a family (kubestate.Sink): a failed append stops the
// rendering.
func (c *ClusterState) EndFamily() error { return c.err }
