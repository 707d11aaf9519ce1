package scraper

import (
	"context"
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	promstorage "github.com/prometheus/prometheus/storage"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// Appendable is where scraped samples go.
type Appendable interface {
	Appender(ctx context.Context) promstorage.Appender
}

// IndexWriter is the latest-value index a scrape updates.
type IndexWriter interface {
	ObserveNode(node string, ns storage.NodeSample, containers []storage.ContainerSample)
	ForgetNode(node string)
}

// Config configures the scrape manager.
type Config struct {
	Kubelet      KubeletConfig
	Resolution   time.Duration
	NodeSelector labels.Selector
	// MaxConcurrent bounds scrapes in flight at once.
	MaxConcurrent int
	// Endpoints are further paths scraped from each kubelet (cAdvisor, the
	// kubelet's own metrics), after its resource metrics.
	Endpoints []*KubeletEndpoint
	// Metadata, when set, records the scraped families' type and help.
	Metadata *storage.Metadata
	// MaxClockAhead refuses a kubelet scrape whose timestamps run further
	// ahead of kmetrics' clock (0: none are refused here; the storage
	// guard still refuses each future sample).
	MaxClockAhead time.Duration
}

// KubeletEndpoint is a further path scraped from every selected kubelet
// (opt-in: cAdvisor, the kubelet's own /metrics), stored under
// job="kubelet" and metrics_path as kube-prometheus' kubelet job stores it.
type KubeletEndpoint struct {
	// Name says which endpoint it is, in logs.
	Name string
	// Path on the kubelet, "{node}" standing for the node's name.
	Path string
	// Allow (when set) and Deny (when set) filter metric names; both are
	// anchored.
	Allow, Deny *regexp.Regexp
	// Replaces are resource families this endpoint carries too (cAdvisor's
	// container_cpu_usage_seconds_total, …): while it stores one, the
	// resource endpoint's copy only feeds the index, so every container is
	// stored once.
	Replaces []string
}

func (c *KubeletEndpoint) keep(name string) bool {
	return (c.Allow == nil || c.Allow.MatchString(name)) && (c.Deny == nil || !c.Deny.MatchString(name))
}

// storedElsewhere says whether a resource family is stored from another
// endpoint.
func (m *Manager) storedElsewhere(name string) bool {
	for _, ep := range m.endpoints {
		if ep.keep(name) && slices.Contains(ep.Replaces, name) {
			return true
		}
	}
	return false
}

// Manager runs one scrape loop per selected node.
type Manager struct {
	client     *kubeletClient
	nodes      corelisters.NodeLister
	selector   labels.Selector
	db         Appendable
	index      IndexWriter
	resolution time.Duration
	timeout    time.Duration
	sem        chan struct{}
	endpoints  []*KubeletEndpoint
	meta       *storage.Metadata
	maxAhead   time.Duration

	mu    sync.Mutex
	loops map[string]*nodeLoop
	ctx   context.Context
	wg    sync.WaitGroup

	lastScrape atomic.Int64 // unix nanos of the last finished scrape attempt
}

type nodeLoop struct {
	cancel context.CancelFunc
	done   chan struct{}
	// retire is set when the node left (deleted or deselected): its series
	// end and the index forgets it. A process shutdown does neither, so a
	// restart serves the last scrapes from the TSDB.
	retire atomic.Bool
}

// NewManager builds a manager; Run starts it.
func NewManager(cfg Config, nodes corelisters.NodeLister, db Appendable, index IndexWriter) (*Manager, error) {
	if cfg.Resolution <= 0 {
		return nil, fmt.Errorf("resolution must be positive, got %v", cfg.Resolution)
	}
	client, err := newKubeletClient(cfg.Kubelet)
	if err != nil {
		return nil, err
	}
	sel := cfg.NodeSelector
	if sel == nil {
		sel = labels.Everything()
	}
	n := cfg.MaxConcurrent
	if n <= 0 {
		n = 1
	}
	return &Manager{
		client: client, nodes: nodes, selector: sel, db: db, index: index,
		resolution: cfg.Resolution, timeout: cfg.Kubelet.Timeout, endpoints: cfg.Endpoints, meta: cfg.Metadata, maxAhead: cfg.MaxClockAhead,
		sem:   make(chan struct{}, n),
		loops: map[string]*nodeLoop{},
	}, nil
}

// Run registers with the node informer and scrapes until ctx ends, then
// stops every loop.
func (m *Manager) Run(ctx context.Context, informer cache.SharedIndexInformer) error {
	m.start(ctx)
	sync := func(obj interface{}) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if node, ok := obj.(*corev1.Node); ok {
			m.sync(node.Name)
		}
	}
	reg, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    sync,
		UpdateFunc: func(_, obj interface{}) { sync(obj) },
		DeleteFunc: sync,
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	_ = informer.RemoveEventHandler(reg)
	m.shutdown()
	return nil
}

func (m *Manager) start(ctx context.Context) {
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	m.lastScrape.Store(time.Now().UnixNano())
}

// shutdown stops every loop and waits for them. Nodes are not retired: their
// last scrapes stay current in the TSDB for the next start.
func (m *Manager) shutdown() {
	m.mu.Lock()
	for name := range m.loops {
		m.stopLocked(name, false)
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// sync starts or stops a node's loop after the node changed.
func (m *Manager) sync(name string) {
	node, err := m.nodes.Get(name)
	want := err == nil && m.selector.Matches(labels.Set(node.Labels))
	m.mu.Lock()
	defer m.mu.Unlock()
	_, running := m.loops[name]
	switch {
	case m.ctx == nil || m.ctx.Err() != nil:
	case want && !running:
		ctx, cancel := context.WithCancel(m.ctx)
		l := &nodeLoop{cancel: cancel, done: make(chan struct{})}
		m.loops[name] = l
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.runLoop(ctx, name, l)
		}()
		activeTargets.Set(float64(len(m.loops)))
	case !want && running:
		if err != nil && !apierrors.IsNotFound(err) {
			klog.ErrorS(err, "Reading node from cache", "node", name)
		}
		m.stopLocked(name, true)
	}
}

func (m *Manager) stopLocked(name string, retire bool) {
	l := m.loops[name]
	delete(m.loops, name)
	l.retire.Store(retire)
	l.cancel()
	activeTargets.Set(float64(len(m.loops)))
}

// runLoop scrapes one node every resolution, starting at an offset derived
// from its name: scrapes spread over the interval, and each node keeps an
// even spacing between its own points (what the CPU rate is computed over).
func (m *Manager) runLoop(ctx context.Context, name string, l *nodeLoop) {
	defer close(l.done)
	var t *target
	extra := make([]*target, len(m.endpoints))
	defer func() {
		if l.retire.Load() {
			m.retire(name, t)
			for _, et := range extra {
				if et != nil {
					m.endSeries(name, et)
				}
			}
		}
	}()
	timer := time.NewTimer(offsetFor(name, m.resolution))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(m.resolution)
		t = m.scrapeNode(ctx, name, t)
		for i, ep := range m.endpoints {
			extra[i] = m.scrapeEndpoint(ctx, name, ep, extra[i])
		}
	}
}

// retire ends a node's series and index entries once its loop stops.
func (m *Manager) retire(name string, t *target) {
	if t != nil {
		m.endSeries(name, t)
	}
	m.index.ForgetNode(name)
	forgetNodeMetrics(name)
}

// endSeries marks every series of a target stale.
func (m *Manager) endSeries(name string, t *target) {
	if err := storeEnd(m.db, t, time.Now(), false, 0); err != nil {
		klog.ErrorS(err, "Marking series of a removed node stale", "node", name)
	}
}

func offsetFor(name string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(interval))
}

// Scrape reasons recorded in kmetrics_kubelet_scrape_failures_total.
const (
	reasonAddress  = "address"
	reasonFetch    = "fetch"
	reasonTooLarge = "too_large"
	reasonBody     = "body"
	reasonStorage  = "storage"
	// reasonClockAhead: a kubelet's timestamps run ahead of kmetrics' clock.
	reasonClockAhead = "clock_ahead"
)

// scrapeNode scrapes a node once and returns its (possibly new) target.
func (m *Manager) scrapeNode(ctx context.Context, name string, t *target) *target {
	defer m.lastScrape.Store(time.Now().UnixNano())
	node, err := m.nodes.Get(name)
	if err != nil {
		return t
	}
	u, instance, path, err := m.client.endpoint(node)
	if err != nil {
		m.fail(name, t, reasonAddress, err, time.Now(), 0)
		return t
	}
	if t == nil || t.instance() != instance || t.path() != path {
		if t != nil {
			m.retire(name, t)
		}
		t = newTarget(name, instance, path)
		t.meta, t.maxAhead, t.indexOnly = m.meta, m.maxAhead, m.storedElsewhere
	}

	o := m.scrapeKubelet(ctx, t, u)
	if !o.canceled && o.reason != reasonFetch && o.reason != reasonTooLarge {
		clockAhead.WithLabelValues(name).Set(o.res.clockAhead.Seconds())
	}
	switch {
	case o.canceled:
		return t
	case o.err != nil:
		m.fail(name, t, o.reason, fmt.Errorf("scraping %s: %w", u, o.err), o.start, o.dur)
		return t
	case o.storeErr != nil:
		// A full disk must not blank the API: the index still takes the
		// scrape, the TSDB loses it, and the failure is counted.
		scrapeFailures.WithLabelValues(reasonStorage).Inc()
		klog.ErrorS(o.storeErr, "Storing scrape in the TSDB; still served", "node", name)
	}
	res := o.res
	m.index.ObserveNode(name, res.node, res.containers)
	scrapeDuration.WithLabelValues(name).Observe(o.dur.Seconds())
	if res.outOfOrder > 0 {
		samplesRejected.WithLabelValues("out_of_order").Add(float64(res.outOfOrder))
	}
	if res.duplicates > 0 {
		samplesRejected.WithLabelValues("duplicate").Add(float64(res.duplicates))
	}
	if res.skipped > 0 {
		samplesRejected.WithLabelValues("skipped_series").Add(float64(res.skipped))
	}
	return t
}

// scrapeKubelet scrapes one kubelet endpoint within the concurrency bound.
func (m *Manager) scrapeKubelet(ctx context.Context, t *target, u string) scrapeOutcome {
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return scrapeOutcome{canceled: true}
	}
	defer func() { <-m.sem }()
	return scrapeOnce(ctx, m.db, t, m.timeout, func(ctx context.Context, buf []byte) ([]byte, string, error) {
		return m.client.fetch(ctx, u, buf)
	})
}

// fail records a failed scrape: up=0, the node's series end, and the index
// stops serving the node (its numbers are no longer current).
func (m *Manager) fail(name string, t *target, reason string, err error, at time.Time, dur time.Duration) {
	if hint := verificationHint(err); hint != "" {
		klog.ErrorS(err, "Failed to scrape node: TLS verification", "node", name, "reason", reason, "hint", hint)
	} else {
		klog.ErrorS(err, "Failed to scrape node", "node", name, "reason", reason)
	}
	scrapeErrors.WithLabelValues(name).Inc()
	scrapeFailures.WithLabelValues(reason).Inc()
	m.index.ForgetNode(name)
	if t == nil {
		return
	}
	if err := storeEnd(m.db, t, at, true, dur); err != nil {
		klog.ErrorS(err, "Recording failed scrape in the TSDB", "node", name)
	}
}

// Healthy reports whether scraping is alive: no nodes to scrape, or some
// scrape attempt finished within a few resolutions.
func (m *Manager) Healthy() error {
	m.mu.Lock()
	n := len(m.loops)
	m.mu.Unlock()
	if n == 0 {
		return nil
	}
	last := m.lastScrape.Load()
	limit := 3*m.resolution + m.timeout
	if time.Since(time.Unix(0, last)) <= limit {
		return nil
	}
	return fmt.Errorf("no scrape finished in the last %v", limit)
}
