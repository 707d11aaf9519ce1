package storage

import (
	"fmt"
	"math"
	"sync"
)

// Default series budgets of application targets.
const (
	DefaultNamespaceSeriesLimit   = 20000
	DefaultApplicationSeriesLimit = 200000
)

// ErrSeriesBudget is a scrape whose new series would not fit its namespace's
// (or all applications') budget.
type ErrSeriesBudget struct {
	Namespace      string
	Held, New, Max int
	Scope          string // "namespace" or "applications"
	Flag           string // the flag that sets Max
}

func (e *ErrSeriesBudget) Error() string {
	return fmt.Sprintf("at least %d new series would exceed the %s series budget (%d held of %d, %s)", e.New, e.Scope, e.Held, e.Max, e.Flag)
}

// Flags that set the budgets, named in errors.
const (
	FlagNamespaceSeriesLimit   = "--storage.namespace-series-limit"
	FlagApplicationSeriesLimit = "--storage.application-series-limit"
)

// SeriesBudget bounds the head series application targets create, per
// namespace and in all, so that one tenant cannot fill the head (memory)
// that kubectl top, the HPA and every other tenant share. Kubelet,
// cluster-state, rule and kmetrics' own series never pass through it.
//
// A series is held from the first scrape that stores it until the head no
// longer holds it: its last sample is older than the head's lower bound
// (series live in the head until the truncation after their last sample).
// A scrape whose unseen series do not fit is refused whole, before any
// series is created.
type SeriesBudget struct {
	perNamespace, total int
	headMinTime         func() int64

	mu         sync.Mutex
	namespaces map[string]map[uint64]int64 // series hash → newest sample (ms)
	held       int
	prunedAt   int64 // the head lower bound of the last prune
}

// NewSeriesBudget returns a budget; headMinTime reports the head's lower
// bound in ms (nil: series are never released).
func NewSeriesBudget(perNamespace, total int, headMinTime func() int64) *SeriesBudget {
	return &SeriesBudget{perNamespace: perNamespace, total: total, headMinTime: headMinTime, namespaces: map[string]map[uint64]int64{}}
}

// Admit charges a scrape's series (by label hash) to namespace at time now
// (ms). It refuses the whole scrape, charging nothing, when the series it
// does not hold yet would exceed a limit.
func (b *SeriesBudget) Admit(namespace string, hashes []uint64, now int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pruneLocked()
	ns := b.namespaces[namespace]
	unseen := 0
	for _, h := range hashes {
		if _, ok := ns[h]; !ok {
			unseen++
		}
	}
	if unseen > 0 {
		if b.perNamespace > 0 && len(ns)+unseen > b.perNamespace {
			return &ErrSeriesBudget{Namespace: namespace, Held: len(ns), New: unseen, Max: b.perNamespace, Scope: "namespace", Flag: FlagNamespaceSeriesLimit}
		}
		if b.total > 0 && b.held+unseen > b.total {
			return &ErrSeriesBudget{Namespace: namespace, Held: b.held, New: unseen, Max: b.total, Scope: "applications", Flag: FlagApplicationSeriesLimit}
		}
	}
	if ns == nil {
		ns = make(map[uint64]int64, len(hashes))
		b.namespaces[namespace] = ns
	}
	for _, h := range hashes {
		ns[h] = now
	}
	b.held += unseen
	return nil
}

// Check says whether a series is held by namespace, and if not, whether it
// would fit beside pending others a transaction has not charged yet. It
// charges nothing: Admit does, once the transaction commits.
func (b *SeriesBudget) Check(namespace string, hash uint64, pending int) (held bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pruneLocked()
	ns := b.namespaces[namespace]
	if _, ok := ns[hash]; ok {
		return true, nil
	}
	if b.perNamespace > 0 && len(ns)+pending+1 > b.perNamespace {
		return false, &ErrSeriesBudget{Namespace: namespace, Held: len(ns), New: pending + 1, Max: b.perNamespace, Scope: "namespace", Flag: FlagNamespaceSeriesLimit}
	}
	if b.total > 0 && b.held+pending+1 > b.total {
		return false, &ErrSeriesBudget{Namespace: namespace, Held: b.held, New: pending + 1, Max: b.total, Scope: "applications", Flag: FlagApplicationSeriesLimit}
	}
	return false, nil
}

// Held reports the series charged to a namespace.
func (b *SeriesBudget) Held(namespace string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pruneLocked()
	return len(b.namespaces[namespace])
}

// Namespaces reports the series held by every namespace holding any.
func (b *SeriesBudget) Namespaces() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pruneLocked()
	out := make(map[string]int, len(b.namespaces))
	for ns, set := range b.namespaces {
		out[ns] = len(set)
	}
	return out
}

// pruneLocked releases the series the head has dropped, once per move of
// its lower bound (every head truncation, each hour or so).
func (b *SeriesBudget) pruneLocked() {
	if b.headMinTime == nil {
		return
	}
	minT := b.headMinTime()
	if minT == math.MaxInt64 || minT <= b.prunedAt { // an empty head has no bound
		return
	}
	b.prunedAt = minT
	for name, ns := range b.namespaces {
		for h, last := range ns {
			if last < minT {
				delete(ns, h)
				b.held--
			}
		}
		if len(ns) == 0 {
			delete(b.namespaces, name)
		}
	}
}
