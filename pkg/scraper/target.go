package scraper

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/model/value"
	promstorage "github.com/prometheus/prometheus/storage"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// resourceKind says what a series means to the latest-value index.
type resourceKind uint8

const (
	kindOther resourceKind = iota
	kindNodeCPU
	kindNodeMemory
	kindContainerCPU
	kindContainerMemory
	kindContainerStart
	// kindSkipped is a resource series the index cannot use (a label missing).
	kindSkipped
	// kindDropped is a series the target's metric filter drops: cached, so
	// its labels are parsed once, but never stored.
	kindDropped
)

var resourceKinds = map[string]resourceKind{
	storage.MetricNodeCPU:        kindNodeCPU,
	storage.MetricNodeMemory:     kindNodeMemory,
	storage.MetricContainerCPU:   kindContainerCPU,
	storage.MetricContainerMem:   kindContainerMemory,
	storage.MetricContainerStart: kindContainerStart,
}

// seriesEntry caches what one exposed series maps to, found by its raw text
// (seriesCache), so a steady-state scrape parses no labels and looks up no series.
type seriesEntry struct {
	// lset is the stored series' labels (the head keeps the same memory for
	// the series it creates); series never stored have none.
	lset labels.Labels
	ref  promstorage.SeriesRef
	slot *containerSlot // for container series: shared by the container's series
	// lastSeen is the generation of the last successful scrape that reported
	// the series (0: none yet); parsed the number of the last parse that did.
	lastSeen, parsed uint64
	check            uint64 // the series' second hash (seriesCache)
	kind             resourceKind
	// indexOnly: fed to the index, never stored (target.indexOnly).
	indexOnly bool
}

// containerSlot ties a container's CPU, memory and start-time series to one
// record of the scrape result, found in O(1).
type containerSlot struct {
	podKey storage.PodKey
	name   string
	refs   int    // cache entries pointing here
	gen    uint64 // scrape generation idx belongs to
	idx    int    // index in scrapeResult.containers
}

type parsedSample struct {
	e *seriesEntry
	t int64
	v float64
}

// scrapeResult is what one scrape appended and what it skipped.
type scrapeResult struct {
	samples    int // samples in the body
	appended   int
	outOfOrder int           // samples the TSDB refused as too old or duplicate, or the guard as too new
	clockAhead time.Duration // how far the newest honoured timestamp is ahead of the scrape
	skipped    int           // resource series the index could not use
	duplicates int
	node       storage.NodeSample
	containers []storage.ContainerSample
}

// target is one kubelet endpoint's scrape state. It is used by one goroutine
// at a time.
type target struct {
	targetLabels labels.Labels // job, instance, metrics_path, node
	cache        *seriesCache
	gen          uint64 // generation of the last successful scrape; starts at 1
	parses       uint64 // parse attempts, successful or not
	symbols      *labels.SymbolTable
	slots        map[slotKey]*containerSlot
	samples      []parsedSample
	containers   []storage.ContainerSample
	builder      labels.Builder
	report       [len(reportNames)]*seriesEntry
	// newest is the newest timestamp appended: staleness markers go after
	// it (a marker in the same millisecond as a sample would be refused).
	newest int64
	// indexed: the target's container and node series feed the latest-value
	// index (a kubelet's /metrics/resource).
	indexed bool
	// keep, when set, says which metric names are stored.
	keep func(name string) bool
	// indexOnly, when set, names indexed families that feed the index but
	// are not stored: another endpoint of the kubelet (cAdvisor) stores the
	// same family, and a query that filters on neither job nor metrics_path
	// must not count a container twice.
	indexOnly func(name string) bool
	// meta, when set, records the families' type, help and unit of taken
	// scrapes; metaTrusted writers (kubelets, cluster state, kmetrics
	// itself) describe families applications cannot redescribe.
	meta        *storage.Metadata
	metaTrusted bool
	pendingMeta []storage.MetadataUpdate
	// maxAhead, when set, refuses a whole scrape whose timestamps run more
	// than this ahead of the scrape time: a kubelet with a fast clock.
	maxAhead time.Duration
}

// stored says whether the series' samples go to the TSDB.
func (e *seriesEntry) stored() bool { return e.kind != kindDropped && !e.indexOnly }

type slotKey struct {
	pod       storage.PodKey
	container string
}

func newTarget(node, instance, path string) *target {
	t := newKubeletTarget(node, instance, path)
	t.indexed = true
	return t
}

// newKubeletTarget is a kubelet endpoint whose series are stored only. A
// kubelet's timestamps are honoured (the CPU rate is computed over them).
func newKubeletTarget(node, instance, path string) *target {
	t := newTargetWithLabels(labels.FromStrings(
		storage.LabelJob, storage.JobKubelet,
		storage.LabelInstance, instance,
		storage.LabelMetricsPath, path,
		storage.LabelNode, node,
	))
	t.metaTrusted = true
	return t
}

// newTargetWithLabels is a target whose series carry targetLabels.
func newTargetWithLabels(targetLabels labels.Labels) *target {
	return &target{
		targetLabels: targetLabels,
		cache:        newSeriesCache(),
		gen:          1,
		slots:        map[slotKey]*containerSlot{},
		symbols:      labels.NewSymbolTable(),
	}
}

// errBody marks a response that cannot be stored: nothing of it was.
var errBody = errors.New("invalid metrics body")

// appendBody parses a whole scrape body and, only if all of it parses,
// appends its samples (and staleness markers for series that disappeared)
// to app. It never commits: the caller commits or rolls back.
func (t *target) appendBody(app promstorage.Appender, body []byte, contentType string, now time.Time) (res scrapeResult, err error) {
	defer func() {
		// The parsers are not meant to panic; if one does, it costs this
		// scrape, not the process.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: parser panic: %v", errBody, r)
		}
	}()
	if len(body) == 0 {
		return res, fmt.Errorf("%w: empty response", errBody)
	}
	if i := bytes.IndexByte(body, 0); i >= 0 {
		// The text lexer reads a NUL byte as end of input and would
		// silently drop the rest.
		return res, fmt.Errorf("%w: NUL byte at offset %d", errBody, i)
	}
	p, err := textparse.New(body, contentType, t.symbols, textparse.ParserOptions{FallbackContentType: "text/plain"})
	if p == nil {
		return res, fmt.Errorf("%w: %v", errBody, err)
	}
	nowMs := now.UnixMilli()
	var ahead int64 // the most a sample's timestamp is ahead of now (ms)
	gen := t.gen + 1
	t.parses++
	parse := t.parses
	t.samples = t.samples[:0]
	t.pendingMeta = t.pendingMeta[:0]
	res.containers = t.containers[:0]
	defer func() { t.containers = res.containers }()
	for {
		entry, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("%w: %v", errBody, err)
		}
		if entry != textparse.EntrySeries {
			// Native histograms are not stored; types, help and units go
			// to the metadata store.
			t.recordMetadata(p, entry)
			continue
		}
		raw, ts, v := p.Series()
		e, slot := t.cache.get(raw)
		if e == nil {
			e = t.newEntry(p)
			t.cache.put(raw, slot, e)
		}
		if e.parsed == parse {
			res.duplicates++
			continue
		}
		e.parsed = parse
		if e.kind == kindDropped {
			continue
		}
		st := nowMs
		if ts != nil {
			st = *ts
			ahead = max(ahead, st-nowMs)
		}
		t.samples = append(t.samples, parsedSample{e: e, t: st, v: v})
	}
	res.samples = len(t.samples)
	res.clockAhead = time.Duration(ahead) * time.Millisecond
	if t.maxAhead > 0 && res.clockAhead > t.maxAhead {
		return res, &refusal{reason: reasonClockAhead, err: fmt.Errorf("sample timestamps up to %v ahead of the scrape time (more than --storage.future-tolerance %v): the target's clock is wrong", res.clockAhead.Round(time.Second), t.maxAhead)}
	}

	// The index's view of the scrape comes from what was parsed and
	// validated, not from what the TSDB accepts: a refused sample or a
	// failed append costs history, never kubectl top.
	for i := range t.samples {
		t.observe(&res, &t.samples[i], parse)
	}
	var storeErr error
	for i := range t.samples {
		s := &t.samples[i]
		if s.e.indexOnly {
			continue
		}
		ok, err := t.appendOne(app, s.e, s.t, s.v)
		if err != nil {
			storeErr = err
			break
		}
		if !ok {
			res.outOfOrder++
			continue
		}
		res.appended++
	}
	// One pass over the cache: series reported now are current; series
	// reported last time but not now have ended, and are marked stale so
	// PromQL stops returning them at once, as Prometheus does.
	t.cache.sweep(func(e *seriesEntry) bool {
		if e.parsed == parse {
			e.lastSeen = gen
			if e.kind == kindSkipped {
				res.skipped++
			}
			return true
		}
		if storeErr == nil && e.lastSeen == t.gen && e.stored() {
			if _, err := t.appendOne(app, e, max(nowMs, t.newest+1), math.Float64frombits(value.StaleNaN)); err != nil {
				storeErr = err
			}
		}
		t.forget(e)
		return false
	})
	t.gen = gen
	t.flushMetadata()
	if storeErr != nil {
		return res, &storageError{storeErr}
	}
	return res, nil
}

// refusal is a scrape refused whole for what it holds (not a malformed
// body): nothing of it is stored or indexed.
type refusal struct {
	reason string
	err    error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// storageError is a scrape parsed and indexed whose samples the TSDB did
// not take: history is lost, kubectl top is not.
type storageError struct{ err error }

func (e *storageError) Error() string { return e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

// markAllStale ends every series of the target (its scrape failed or the
// node is gone).
func (t *target) markAllStale(app promstorage.Appender, now time.Time) error {
	ts := max(now.UnixMilli(), t.newest+1)
	var err error
	t.cache.sweep(func(e *seriesEntry) bool {
		if err != nil {
			return true // kept for the next attempt
		}
		if e.lastSeen == t.gen && e.stored() {
			if _, err = t.appendOne(app, e, ts, math.Float64frombits(value.StaleNaN)); err != nil {
				return true
			}
		}
		t.forget(e)
		return false
	})
	return err
}

// forget releases what a series leaving the cache held beside its entry.
func (t *target) forget(e *seriesEntry) {
	if e.slot != nil {
		if e.slot.refs--; e.slot.refs == 0 {
			delete(t.slots, slotKey{e.slot.podKey, e.slot.name})
		}
	}
}

// appendOne appends a sample, reporting false when the TSDB refused it for
// its timestamp (a sample is lost, the scrape is not).
func (t *target) appendOne(app promstorage.Appender, e *seriesEntry, ts int64, v float64) (bool, error) {
	ref, err := app.Append(e.ref, e.lset, ts, v)
	switch {
	case err == nil:
		e.ref = ref
		t.newest = max(t.newest, ts)
		return true, nil
	case refusedSample(err):
		return false, nil
	default:
		return false, fmt.Errorf("appending %s: %w", e.lset, err)
	}
}

// refusedSample is an append the TSDB refused for the sample's timestamp.
func refusedSample(err error) bool {
	return errors.Is(err, promstorage.ErrOutOfOrderSample) || errors.Is(err, promstorage.ErrOutOfBounds) ||
		errors.Is(err, promstorage.ErrDuplicateSampleForTimestamp) || errors.Is(err, promstorage.ErrTooOldSample)
}

// newEntry builds the cache entry of the parser's current series: its labels
// with the target's attached, and what it means to the index.
func (t *target) newEntry(p textparse.Parser) *seriesEntry {
	var scraped labels.Labels
	p.Labels(&scraped)
	e := &seriesEntry{}
	name := scraped.Get(labels.MetricName)
	if t.keep != nil && !t.keep(name) {
		e.kind = kindDropped
		return e
	}
	if t.indexed {
		e.kind = resourceKinds[name]
		e.indexOnly = t.indexOnly != nil && t.indexOnly(name)
	}
	if e.stored() {
		// Only a stored series needs labels. As Prometheus does without
		// honor_labels: a scraped label that collides with a target label
		// is kept as exported_<name>.
		t.builder.Reset(scraped)
		t.targetLabels.Range(func(l labels.Label) {
			if v := scraped.Get(l.Name); v != "" {
				t.builder.Set("exported_"+l.Name, v)
			}
			t.builder.Set(l.Name, l.Value)
		})
		e.lset = t.builder.Labels()
	}
	switch e.kind {
	case kindContainerCPU, kindContainerMemory, kindContainerStart:
		key := slotKey{
			pod:       storage.PodKey{Namespace: scraped.Get(storage.LabelNamespace), Name: scraped.Get(storage.LabelPod)},
			container: scraped.Get(storage.LabelContainer),
		}
		if key.pod.Namespace == "" || key.pod.Name == "" || key.container == "" {
			e.kind = kindSkipped
			break
		}
		slot := t.slots[key]
		if slot == nil {
			slot = &containerSlot{podKey: key.pod, name: key.container, idx: -1}
			t.slots[key] = slot
		}
		slot.refs++
		e.slot = slot
	}
	return e
}

// observe hands a resource sample to the index's view of this scrape.
func (t *target) observe(res *scrapeResult, s *parsedSample, gen uint64) {
	if s.e.kind == kindOther || s.e.kind == kindSkipped {
		return
	}
	if math.IsNaN(s.v) || math.IsInf(s.v, 0) || s.v < 0 {
		res.skipped++
		return
	}
	pt := storage.Point{T: s.t, V: s.v}
	switch s.e.kind {
	case kindNodeCPU:
		res.node.CPU, res.node.HasCPU = pt, true
		return
	case kindNodeMemory:
		res.node.Memory, res.node.HasMemory = pt, true
		return
	}
	c := res.container(s.e.slot, gen)
	switch s.e.kind {
	case kindContainerCPU:
		c.CPU, c.HasCPU = pt, true
	case kindContainerMemory:
		c.Memory, c.HasMemory = pt, true
	case kindContainerStart:
		c.StartTime = int64(s.v * 1000)
	}
}

// container returns the scrape result's record of a container, adding it on
// the first of the container's series in this scrape.
func (res *scrapeResult) container(slot *containerSlot, gen uint64) *storage.ContainerSample {
	if slot.gen != gen {
		slot.gen, slot.idx = gen, len(res.containers)
		res.containers = append(res.containers, storage.ContainerSample{Namespace: slot.podKey.Namespace, Pod: slot.podKey.Name, Container: slot.name})
	}
	return &res.containers[slot.idx]
}

// recordMetadata keeps the exposition's metadata lines of this parse; they
// reach the store only if the scrape is taken (flushMetadata).
func (t *target) recordMetadata(p textparse.Parser, entry textparse.Entry) {
	if t.meta == nil {
		return
	}
	var u storage.MetadataUpdate
	switch entry {
	case textparse.EntryType:
		name, typ := p.Type()
		u = storage.MetadataUpdate{Kind: storage.MetadataType, Family: string(name), Value: string(typ)}
	case textparse.EntryHelp:
		name, help := p.Help()
		u = storage.MetadataUpdate{Kind: storage.MetadataHelp, Family: string(name), Value: string(help)}
	case textparse.EntryUnit:
		name, unit := p.Unit()
		u = storage.MetadataUpdate{Kind: storage.MetadataUnit, Family: string(name), Value: string(unit)}
	default:
		return
	}
	t.pendingMeta = append(t.pendingMeta, u)
}

func (t *target) flushMetadata() {
	if t.meta != nil {
		t.meta.Apply(t.pendingMeta, t.metaTrusted)
	}
	t.pendingMeta = t.pendingMeta[:0]
}
