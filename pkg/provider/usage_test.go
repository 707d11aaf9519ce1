package provider

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

const res = 15 * time.Second

func usage(prev, last storage.Point, hasPrev bool) storage.Usage {
	return storage.Usage{CPU: [2]storage.Point{prev, last}, HasCPU: true, HasPrevCPU: hasPrev, Memory: storage.Point{T: last.T, V: 64 << 20}, HasMemory: true}
}

func TestResourceUsage(t *testing.T) {
	const t0 = int64(1_700_000_000_000)
	tests := []struct {
		name       string
		u          storage.Usage
		ok         bool
		nanocores  int64
		window     time.Duration
		timestamp  int64
		memoryByte int64
	}{
		{name: "rate between two points", u: usage(storage.Point{T: t0, V: 10}, storage.Point{T: t0 + 15000, V: 13.75}, true),
			ok: true, nanocores: 250_000_000, window: 15 * time.Second, timestamp: t0 + 15000, memoryByte: 64 << 20},
		{name: "zero CPU served", u: usage(storage.Point{T: t0, V: 0}, storage.Point{T: t0 + 10000, V: 0}, true),
			ok: true, nanocores: 0, window: 10 * time.Second, timestamp: t0 + 10000, memoryByte: 64 << 20},
		{name: "one point, no start time", u: usage(storage.Point{}, storage.Point{T: t0, V: 1}, false)},
		{name: "young container uses its start", u: func() storage.Usage {
			u := usage(storage.Point{}, storage.Point{T: t0 + 12000, V: 6}, false)
			u.StartTime = t0
			return u
		}(), ok: true, nanocores: 500_000_000, window: 12 * time.Second, timestamp: t0 + 12000, memoryByte: 64 << 20},
		{name: "start too recent for a window", u: func() storage.Usage {
			u := usage(storage.Point{}, storage.Point{T: t0 + 5000, V: 6}, false)
			u.StartTime = t0
			return u
		}()},
		{name: "old container with one point", u: func() storage.Usage {
			u := usage(storage.Point{}, storage.Point{T: t0 + 60000, V: 6}, false)
			u.StartTime = t0
			return u
		}()},
		{name: "no memory", u: func() storage.Usage {
			u := usage(storage.Point{T: t0, V: 1}, storage.Point{T: t0 + 1000, V: 2}, true)
			u.HasMemory = false
			return u
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rl, ti, ok := resourceUsage(tc.u, res)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if got := rl.Cpu().ScaledValue(-9); got != tc.nanocores {
				t.Errorf("cpu = %dn, want %dn", got, tc.nanocores)
			}
			if got := rl.Memory().Value(); got != tc.memoryByte {
				t.Errorf("memory = %d, want %d", got, tc.memoryByte)
			}
			if ti.window != tc.window || ti.timestamp.UnixMilli() != tc.timestamp {
				t.Errorf("window/timestamp = %v/%d, want %v/%d", ti.window, ti.timestamp.UnixMilli(), tc.window, tc.timestamp)
			}
		})
	}
}

type fakeIndex struct {
	nodes map[string]storage.Usage
	pods  map[string]map[string]storage.Usage
}

func (f fakeIndex) Node(n string) (storage.Usage, bool) { u, ok := f.nodes[n]; return u, ok }
func (f fakeIndex) Pod(ns, n string) (map[string]storage.Usage, bool) {
	u, ok := f.pods[ns+"/"+n]
	return u, ok
}

func TestPodTakesEarliestContainerTime(t *testing.T) {
	const t0 = int64(1_700_000_000_000)
	idx := fakeIndex{pods: map[string]map[string]storage.Usage{
		"ns/p": {
			"b": usage(storage.Point{T: t0, V: 0}, storage.Point{T: t0 + 15000, V: 1.5}, true),
			"a": usage(storage.Point{T: t0 - 5000, V: 0}, storage.Point{T: t0 + 10000, V: 3}, true),
		},
		"ns/half": {
			"ok":      usage(storage.Point{T: t0, V: 0}, storage.Point{T: t0 + 15000, V: 1}, true),
			"missing": usage(storage.Point{}, storage.Point{T: t0 + 15000, V: 1}, false),
		},
	}}
	p := NewResourceProvider(idx, res)
	meta := func(n string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: n, Labels: map[string]string{"app": n}}}
	}
	got, err := p.GetPodMetrics(meta("p"), meta("half"), meta("absent"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("served %d pods, want only p (half lacks a container's rate, absent has no data)", len(got))
	}
	pm := got[0]
	if pm.Timestamp.UnixMilli() != t0+10000 || pm.Window.Duration != 15*time.Second {
		t.Errorf("timestamp/window = %v/%v, want container a's", pm.Timestamp, pm.Window)
	}
	if pm.Containers[0].Name != "a" || pm.Containers[1].Name != "b" || pm.Labels["app"] != "p" {
		t.Errorf("containers not sorted or labels lost: %+v", pm)
	}
	if cpu := pm.Containers[0].Usage.Cpu().MilliValue(); cpu != 200 {
		t.Errorf("container a cpu = %dm, want 200m", cpu)
	}
	nodes, _ := p.GetNodeMetrics(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gone"}})
	if len(nodes) != 0 {
		t.Errorf("node without data served: %v", nodes)
	}
}
