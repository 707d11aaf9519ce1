package storage

import "sync"

// Point is one sample: a timestamp in milliseconds and its value.
type Point struct {
	T int64
	V float64
}

// Usage is what the index keeps for one node or container: the last two
// cumulative CPU points (seconds), the latest memory working set (bytes) and
// the start time (ms, 0 when unknown).
type Usage struct {
	// CPU[1] is the latest point, CPU[0] the one before it when HasPrevCPU.
	CPU        [2]Point
	HasCPU     bool
	HasPrevCPU bool
	Memory     Point
	HasMemory  bool
	StartTime  int64
}

// observeCPU records a cumulative CPU point. A point no newer than the latest
// is ignored; a newer one whose counter went down, or a later start time, is
// a restart, after which the old point must not be used for a rate.
func (u *Usage) observeCPU(p Point, startTime int64) {
	newStart := startTime > 0 && u.StartTime > 0 && startTime > u.StartTime
	switch {
	case !u.HasCPU || newStart || (p.T > u.CPU[1].T && p.V < u.CPU[1].V):
		// First point, or a restart: the old point must not be used for a rate.
		u.CPU = [2]Point{{}, p}
		u.HasCPU, u.HasPrevCPU = true, false
	case p.T > u.CPU[1].T:
		u.CPU[0], u.CPU[1] = u.CPU[1], p
		u.HasPrevCPU = true
	}
	if startTime > 0 {
		u.StartTime = startTime
	}
}

func (u *Usage) observeMemory(p Point) {
	if !u.HasMemory || p.T >= u.Memory.T {
		u.Memory, u.HasMemory = p, true
	}
}

// NodeSample is one scrape's resource usage of a node itself.
type NodeSample struct {
	CPU, Memory       Point
	HasCPU, HasMemory bool
}

// ContainerSample is one scrape's resource usage of one container.
type ContainerSample struct {
	Namespace, Pod, Container string
	CPU, Memory               Point
	HasCPU, HasMemory         bool
	// StartTime in milliseconds, 0 when the kubelet did not report it.
	StartTime int64
}

// PodKey names a pod.
type PodKey struct{ Namespace, Name string }

type podEntry struct {
	node       string
	containers map[string]*Usage
}

// Index is the in-memory latest-value index the resource metrics API reads.
// It is safe for concurrent use.
type Index struct {
	mu    sync.RWMutex
	nodes map[string]*Usage
	pods  map[PodKey]*podEntry
	// podsByNode lets a scrape replace exactly its own node's pods.
	podsByNode map[string]map[PodKey]struct{}
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{
		nodes:      map[string]*Usage{},
		pods:       map[PodKey]*podEntry{},
		podsByNode: map[string]map[PodKey]struct{}{},
	}
}

// ObserveNode applies one successful scrape of a node. Pods of that node that
// the scrape no longer reports (deleted or moved) leave the index.
func (x *Index) ObserveNode(node string, ns NodeSample, containers []ContainerSample) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.observeNodeLocked(node, ns)
	seen := make(map[PodKey]struct{}, len(x.podsByNode[node]))
	seenContainers := map[PodKey]map[string]struct{}{}
	for i := range containers {
		c := &containers[i]
		key := PodKey{c.Namespace, c.Pod}
		x.observeContainerLocked(node, key, c)
		seen[key] = struct{}{}
		if seenContainers[key] == nil {
			seenContainers[key] = map[string]struct{}{}
		}
		seenContainers[key][c.Container] = struct{}{}
	}
	for key := range x.podsByNode[node] {
		if _, ok := seen[key]; !ok {
			if p := x.pods[key]; p != nil && p.node == node {
				delete(x.pods, key)
			}
		}
	}
	for key, names := range seenContainers {
		for name := range x.pods[key].containers {
			if _, ok := names[name]; !ok {
				delete(x.pods[key].containers, name)
			}
		}
	}
	x.podsByNode[node] = seen
}

func (x *Index) observeNodeLocked(node string, ns NodeSample) {
	u := x.nodes[node]
	if u == nil {
		u = &Usage{}
		x.nodes[node] = u
	}
	if ns.HasCPU {
		u.observeCPU(ns.CPU, 0)
	}
	if ns.HasMemory {
		u.observeMemory(ns.Memory)
	}
}

func (x *Index) observeContainerLocked(node string, key PodKey, c *ContainerSample) {
	p := x.pods[key]
	if p == nil || p.node != node {
		// A pod seen on another node before is a new pod of the same name.
		p = &podEntry{node: node, containers: map[string]*Usage{}}
		x.pods[key] = p
	}
	u := p.containers[c.Container]
	if u == nil {
		u = &Usage{}
		p.containers[c.Container] = u
	}
	if c.HasCPU {
		u.observeCPU(c.CPU, c.StartTime)
	} else if c.StartTime > 0 {
		u.StartTime = c.StartTime
	}
	if c.HasMemory {
		u.observeMemory(c.Memory)
	}
}

// ForgetNode drops a node and its pods: the node was deleted, or its last
// scrape failed and what the index holds is no longer current.
func (x *Index) ForgetNode(node string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.nodes, node)
	for key := range x.podsByNode[node] {
		if p := x.pods[key]; p != nil && p.node == node {
			delete(x.pods, key)
		}
	}
	delete(x.podsByNode, node)
}

// Node returns a copy of a node's usage.
func (x *Index) Node(name string) (Usage, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	u, ok := x.nodes[name]
	if !ok {
		return Usage{}, false
	}
	return *u, true
}

// Pod returns a copy of the usage of every container of a pod.
func (x *Index) Pod(namespace, name string) (map[string]Usage, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	p, ok := x.pods[PodKey{namespace, name}]
	if !ok {
		return nil, false
	}
	out := make(map[string]Usage, len(p.containers))
	for n, u := range p.containers {
		out[n] = *u
	}
	return out, true
}

// Size reports how many nodes and pods the index holds.
func (x *Index) Size() (nodes, pods int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.nodes), len(x.pods)
}
