package kubestate

import (
	"bytes"
	"strconv"
)

// metricType is the exposition TYPE of a family.
type metricType string

const (
	gauge   metricType = "gauge"
	counter metricType = "counter"
)

// emitFunc writes one sample of the family being rendered; kv are label
// name/value pairs added after the object's own (namespace, name, …).
type emitFunc func(v float64, kv ...string)

// family is one kube-state-metrics family of objects of type T.
type family[T any] struct {
	name, help string
	typ        metricType
	gen        func(o T, emit emitFunc)
}

// Sink takes rendered cluster state, family by family: the family's
// header, its samples, then EndFamily. A sample's labels are name/value
// pairs, the object's own (base) then the sample's (kv); a pair with an
// empty value is absent, as Prometheus treats it. The slices are valid only
// during the call.
type Sink interface {
	Family(name, help, typ string)
	Sample(name string, v float64, base, kv []string)
	// EndFamily ends the family; an error stops the rendering.
	EndFamily() error
}

// textSink writes the text format.
type textSink struct {
	b *bytes.Buffer
}

func (e textSink) Family(name, help, typ string) {
	e.b.WriteString("# HELP ")
	e.b.WriteString(name)
	e.b.WriteByte(' ')
	e.b.WriteString(help)
	e.b.WriteString("\n# TYPE ")
	e.b.WriteString(name)
	e.b.WriteByte(' ')
	e.b.WriteString(typ)
	e.b.WriteByte('\n')
}

// Sample writes one line: name{base…, kv…} v. A label with an empty value
// is written as kube-state-metrics writes it (label="").
func (e textSink) Sample(name string, v float64, base, kv []string) {
	b := e.b
	b.WriteString(name)
	b.WriteByte('{')
	first := true
	for _, pairs := range [2][]string{base, kv} {
		for i := 0; i+1 < len(pairs); i += 2 {
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.WriteString(pairs[i])
			b.WriteString(`="`)
			escapeLabelValue(b, pairs[i+1])
			b.WriteByte('"')
		}
	}
	b.WriteString("} ")
	b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	b.WriteByte('\n')
}

func (textSink) EndFamily() error { return nil }

// escapeLabelValue escapes as the text format requires: \\, \" and \n.
func escapeLabelValue(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(s[i])
		}
	}
}

// renderFamilies writes the families of one resource: the objects'
// samples grouped under the family's HELP and TYPE, as the format requires.
// Each object's own labels are built once, not once per family, and one
// emitter serves a family's objects: this runs for every object every write.
func renderFamilies[T any](s Sink, objs []T, base func(T) []string, families []family[T]) error {
	bases := make([][]string, len(objs))
	for i, o := range objs {
		bases[i] = base(o)
	}
	em := &emitter{s: s}
	emit := em.emit
	for _, f := range families {
		s.Family(f.name, f.help, string(f.typ))
		em.name = f.name
		for i, o := range objs {
			em.base = bases[i]
			f.gen(o, emit)
		}
		if err := s.EndFamily(); err != nil {
			return err
		}
	}
	return nil
}

// emitter writes samples of one family for the object at hand.
type emitter struct {
	s    Sink
	name string
	base []string
}

func (m *emitter) emit(v float64, kv ...string) { m.s.Sample(m.name, v, m.base, kv) }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
