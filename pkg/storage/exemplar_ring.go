package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"k8s.io/klog/v2"
)

// minExemplarRing is the exemplar ring's first size. The TSDB allocates its
// ring whole when it opens (about 64 bytes an entry: 6.4 MB for
// Prometheus' usual limit of 100,000), and most clusters' applications
// expose no exemplars at all: the ring starts at this and doubles as
// exemplars are stored, up to the configured limit.
const minExemplarRing = 1024

// exemplarRingFile, in the TSDB's directory, remembers the size the ring
// grew to, so a restart replays the head's exemplars into a ring as large
// as the one they were kept in.
const exemplarRingFile = "kmetrics-exemplar-ring-size"

// exemplarRing grows the head's exemplar ring as exemplars are stored. It
// counts the exemplars the head accepts (not duplicates) and, when they
// would fill the ring, doubles it before the next one evicts the oldest:
// until the limit, no exemplar is lost to a ring sized too small.
type exemplarRing struct {
	limit int64
	dir   string

	mu     sync.Mutex
	ring   *tsdb.CircularExemplarStorage // nil until the TSDB has opened
	size   atomic.Int64
	stored atomic.Int64 // exemplars in the ring, counted from its opening
}

// newExemplarRing says how large the ring opens at dir: what it grew to
// before, else minExemplarRing, never more than limit.
func newExemplarRing(dir string, limit int64) *exemplarRing {
	r := &exemplarRing{limit: limit, dir: dir}
	size := int64(minExemplarRing)
	if b, err := os.ReadFile(filepath.Join(dir, exemplarRingFile)); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > size {
			size = n
		}
	}
	r.size.Store(min(size, limit))
	return r
}

// openSize is the ring's size for tsdb.Options.MaxExemplars.
func (r *exemplarRing) openSize() int64 { return r.size.Load() }

// attach takes the opened TSDB's ring and counts the exemplars it replayed.
func (r *exemplarRing) attach(db *tsdb.DB) error {
	q, err := db.ExemplarQuerier(context.Background())
	if err != nil {
		return err
	}
	ring, ok := q.(*tsdb.CircularExemplarStorage)
	if !ok {
		return fmt.Errorf("the TSDB's exemplar storage is a %T, not a ring kmetrics can grow", q)
	}
	var n int64
	_ = ring.IterateExemplars(func(labels.Labels, exemplar.Exemplar) error { n++; return nil })
	r.mu.Lock()
	r.ring = ring
	r.mu.Unlock()
	r.added(n)
	return nil
}

// added notes n exemplars stored, and grows the ring if they filled it.
func (r *exemplarRing) added(n int64) {
	if r.stored.Add(n) < r.size.Load() || r.size.Load() >= r.limit {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	size := r.size.Load()
	if r.ring == nil || r.stored.Load() < size || size >= r.limit {
		return
	}
	grown := min(2*size, r.limit)
	r.ring.Resize(grown)
	r.size.Store(grown)
	if err := os.WriteFile(filepath.Join(r.dir, exemplarRingFile), []byte(strconv.FormatInt(grown, 10)+"\n"), 0o644); err != nil {
		klog.ErrorS(err, "Remembering the exemplar ring's size failed: a restart replays into a smaller ring", "size", grown)
	}
	klog.V(2).InfoS("Exemplar ring grown", "from", size, "to", grown, "limit", r.limit)
}

// exemplarCountingAppender tells the ring of every exemplar the head
// accepts: a non-zero reference without error (a duplicate of the series'
// last exemplar is answered with 0 and no error, and is not stored).
type exemplarCountingAppender struct {
	promstorage.Appender
	ring *exemplarRing
}

func (a exemplarCountingAppender) AppendExemplar(ref promstorage.SeriesRef, l labels.Labels, e exemplar.Exemplar) (promstorage.SeriesRef, error) {
	ref, err := a.Appender.AppendExemplar(ref, l, e)
	if err == nil && ref != 0 {
		a.ring.added(1)
	}
	return ref, err
}
