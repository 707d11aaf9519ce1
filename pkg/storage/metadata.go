package storage

import (
	"sort"
	"sync"

	"github.com/prometheus/common/model"
)

// FamilyMetadata is what an exposition says about a metric family.
type FamilyMetadata struct {
	Family string
	Type   model.MetricType
	Help   string
	Unit   string
}

// Metadata keeps the type, help and unit of every metric family scraped,
// for the query API's /metadata (Grafana's query editor shows them).
type Metadata struct {
	mu       sync.RWMutex
	families map[string]*FamilyMetadata
}

// NewMetadata returns an empty store.
func NewMetadata() *Metadata { return &Metadata{families: map[string]*FamilyMetadata{}} }

func (m *Metadata) family(name []byte) *FamilyMetadata {
	m.mu.RLock()
	f := m.families[string(name)]
	m.mu.RUnlock()
	return f
}

func (m *Metadata) update(name []byte, set func(*FamilyMetadata)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.families[string(name)]
	if f == nil {
		f = &FamilyMetadata{Family: string(name), Type: model.MetricTypeUnknown}
		m.families[f.Family] = f
	}
	set(f)
}

// SetType records a family's type; the common case (unchanged) takes only
// a read lock.
func (m *Metadata) SetType(name []byte, t model.MetricType) {
	if f := m.family(name); f != nil && f.Type == t {
		return
	}
	m.update(name, func(f *FamilyMetadata) { f.Type = t })
}

// SetHelp records a family's help text.
func (m *Metadata) SetHelp(name, help []byte) {
	if f := m.family(name); f != nil && f.Help == string(help) {
		return
	}
	m.update(name, func(f *FamilyMetadata) { f.Help = string(help) })
}

// SetUnit records a family's unit.
func (m *Metadata) SetUnit(name, unit []byte) {
	if f := m.family(name); f != nil && f.Unit == string(unit) {
		return
	}
	m.update(name, func(f *FamilyMetadata) { f.Unit = string(unit) })
}

// List returns every family's metadata, by name.
func (m *Metadata) List() []FamilyMetadata {
	m.mu.RLock()
	out := make([]FamilyMetadata, 0, len(m.families))
	for _, f := range m.families {
		out = append(out, *f)
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Family < out[j].Family })
	return out
}
