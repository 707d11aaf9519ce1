package storage

import (
	"context"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// RebuildIndex fills the index from the TSDB's samples in [mint, maxt] (ms),
// so that a restarted kmetrics serves resource metrics at once instead of
// after two scrapes: every node and container gets back its last two CPU
// points, its latest memory point and its start time.
func RebuildIndex(ctx context.Context, db *DB, x *Index, mint, maxt int64) error {
	q, err := db.Querier(mint, maxt)
	if err != nil {
		return fmt.Errorf("opening querier: %w", err)
	}
	defer q.Close()

	names := labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName,
		MetricNodeCPU+"|"+MetricNodeMemory+"|"+MetricContainerCPU+"|"+MetricContainerMem+"|"+MetricContainerStart)
	job := labels.MustNewMatcher(labels.MatchEqual, LabelJob, JobKubelet)
	set := q.Select(ctx, false, nil, job, names)

	type history struct {
		cpu, mem  []Point
		startTime int64
	}
	nodes := map[string]*history{}
	containers := map[ContainerRef]*history{}
	var it chunkenc.Iterator
	for set.Next() {
		s := set.At()
		lset := s.Labels()
		node := lset.Get(LabelNode)
		if node == "" {
			continue
		}
		name := lset.Get(labels.MetricName)
		var h *history
		if name == MetricNodeCPU || name == MetricNodeMemory {
			if h = nodes[node]; h == nil {
				h = &history{}
				nodes[node] = h
			}
		} else {
			ref := ContainerRef{Node: node, Namespace: lset.Get(LabelNamespace), Pod: lset.Get(LabelPod), Container: lset.Get(LabelContainer)}
			if ref.Namespace == "" || ref.Pod == "" || ref.Container == "" {
				continue
			}
			if h = containers[ref]; h == nil {
				h = &history{}
				containers[ref] = h
			}
		}
		it = s.Iterator(it)
		points, err := lastTwo(it)
		if err != nil {
			return fmt.Errorf("reading %s: %w", lset, err)
		}
		switch name {
		case MetricNodeCPU, MetricContainerCPU:
			h.cpu = points
		case MetricNodeMemory, MetricContainerMem:
			h.mem = points
		case MetricContainerStart:
			if len(points) > 0 {
				h.startTime = int64(points[len(points)-1].V * 1000)
			}
		}
	}
	if err := set.Err(); err != nil {
		return fmt.Errorf("selecting resource series: %w", err)
	}

	x.mu.Lock()
	defer x.mu.Unlock()
	for node, h := range nodes {
		for _, p := range h.cpu {
			x.observeNodeLocked(node, NodeSample{CPU: p, HasCPU: true})
		}
		for _, p := range h.mem {
			x.observeNodeLocked(node, NodeSample{Memory: p, HasMemory: true})
		}
	}
	for ref, h := range containers {
		key := PodKey{ref.Namespace, ref.Pod}
		c := ContainerSample{Namespace: ref.Namespace, Pod: ref.Pod, Container: ref.Container, StartTime: h.startTime}
		x.observeContainerLocked(ref.Node, key, &c)
		for _, p := range h.cpu {
			x.observeContainerLocked(ref.Node, key, &ContainerSample{Container: ref.Container, CPU: p, HasCPU: true, StartTime: h.startTime})
		}
		for _, p := range h.mem {
			x.observeContainerLocked(ref.Node, key, &ContainerSample{Container: ref.Container, Memory: p, HasMemory: true})
		}
		if x.podsByNode[ref.Node] == nil {
			x.podsByNode[ref.Node] = map[PodKey]struct{}{}
		}
		x.podsByNode[ref.Node][key] = struct{}{}
	}
	return nil
}

// ContainerRef names one container on one node.
type ContainerRef struct{ Node, Namespace, Pod, Container string }

// lastTwo returns the last two float samples of a series, oldest first. A
// series whose last sample is a staleness marker has ended: it yields none.
func lastTwo(it chunkenc.Iterator) ([]Point, error) {
	var prev, last Point
	n := 0
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		if vt != chunkenc.ValFloat {
			continue
		}
		t, v := it.At()
		if value.IsStaleNaN(v) {
			n = 0
			continue
		}
		prev, last = last, Point{T: t, V: v}
		n++
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	switch {
	case n == 0:
		return nil, nil
	case n == 1:
		return []Point{last}, nil
	default:
		return []Point{prev, last}, nil
	}
}
