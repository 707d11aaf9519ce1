package storage

import (
	"sort"
	"sync"

	"github.com/prometheus/common/model"
)

// Bounds of the metadata store: what applications expose cannot grow it
// without limit.
const (
	MaxMetadataFamilies = 20000
	MaxHelpBytes        = 1024
)

// FamilyMetadata is what an exposition says about a metric family.
type FamilyMetadata struct {
	Family string
	Type   model.MetricType
	Help   string
	Unit   string
}

type familyEntry struct {
	FamilyMetadata
	// trusted: set by kmetrics' own writers (kubelets, cluster state,
	// kmetrics itself); applications cannot change it.
	trusted bool
}

// Metadata keeps the type, help and unit of every metric family scraped,
// for the query API's /metadata (Grafana's query editor shows them).
type Metadata struct {
	mu       sync.RWMutex
	families map[string]*familyEntry
	max      int
}

// NewMetadata returns an empty store of at most MaxMetadataFamilies.
func NewMetadata() *Metadata {
	return &Metadata{families: map[string]*familyEntry{}, max: MaxMetadataFamilies}
}

// MetadataKind says which field an update sets.
type MetadataKind uint8

// The fields of a family's metadata.
const (
	MetadataType MetadataKind = iota
	MetadataHelp
	MetadataUnit
)

// MetadataUpdate is one line of an exposition's metadata.
type MetadataUpdate struct {
	Kind   MetadataKind
	Family string
	Value  string // the help, the unit or the type
}

// Apply records the metadata of one accepted scrape. trusted writers are
// kmetrics' own (kubelets, cluster state, itself): an application cannot
// change a family they described, and cannot add families past the bound.
func (m *Metadata) Apply(updates []MetadataUpdate, trusted bool) {
	if len(updates) == 0 || m.unchanged(updates, trusted) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range updates {
		f := m.families[u.Family]
		if f == nil {
			if len(m.families) >= m.max && !trusted {
				continue
			}
			f = &familyEntry{FamilyMetadata: FamilyMetadata{Family: u.Family, Type: model.MetricTypeUnknown}, trusted: trusted}
			m.families[u.Family] = f
		}
		if f.trusted && !trusted {
			continue
		}
		f.trusted = f.trusted || trusted
		switch u.Kind {
		case MetadataType:
			f.Type = model.MetricType(u.Value)
		case MetadataHelp:
			v := u.Value
			if len(v) > MaxHelpBytes {
				v = v[:MaxHelpBytes]
			}
			f.Help = v
		case MetadataUnit:
			f.Unit = u.Value
		}
	}
}

// unchanged reports, under the read lock, whether updates would change
// nothing: the common case, every scrape repeating the last one's metadata.
func (m *Metadata) unchanged(updates []MetadataUpdate, trusted bool) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, u := range updates {
		f := m.families[u.Family]
		if f == nil || (trusted && !f.trusted) {
			return false
		}
		if f.trusted && !trusted {
			continue
		}
		var cur string
		switch u.Kind {
		case MetadataType:
			cur = string(f.Type)
		case MetadataHelp:
			cur = f.Help
			if len(u.Value) > MaxHelpBytes {
				return false
			}
		case MetadataUnit:
			cur = f.Unit
		}
		if cur != u.Value {
			return false
		}
	}
	return true
}

// List returns every family's metadata, by name.
func (m *Metadata) List() []FamilyMetadata {
	m.mu.RLock()
	out := make([]FamilyMetadata, 0, len(m.families))
	for _, f := range m.families {
		out = append(out, f.FamilyMetadata)
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Family < out[j].Family })
	return out
}
