package storage

import "testing"

func cpu(t int64, v float64) ContainerSample {
	return ContainerSample{Namespace: "ns", Pod: "p", Container: "c", CPU: Point{T: t, V: v}, HasCPU: true, Memory: Point{T: t, V: 1}, HasMemory: true}
}

func TestObserveCPU(t *testing.T) {
	tests := []struct {
		name     string
		points   []ContainerSample
		wantPrev bool
		want     [2]Point
	}{
		{name: "one point", points: []ContainerSample{cpu(1000, 1)}, want: [2]Point{{}, {1000, 1}}},
		{name: "two points", points: []ContainerSample{cpu(1000, 1), cpu(2000, 3)}, wantPrev: true, want: [2]Point{{1000, 1}, {2000, 3}}},
		{name: "zero CPU is a point", points: []ContainerSample{cpu(1000, 0), cpu(2000, 0)}, wantPrev: true, want: [2]Point{{1000, 0}, {2000, 0}}},
		{name: "same timestamp ignored", points: []ContainerSample{cpu(1000, 1), cpu(2000, 3), cpu(2000, 3)}, wantPrev: true, want: [2]Point{{1000, 1}, {2000, 3}}},
		{name: "older point ignored", points: []ContainerSample{cpu(1000, 1), cpu(2000, 3), cpu(1500, 2)}, wantPrev: true, want: [2]Point{{1000, 1}, {2000, 3}}},
		{name: "counter reset is a restart", points: []ContainerSample{cpu(1000, 5), cpu(2000, 1)}, want: [2]Point{{}, {2000, 1}}},
		{name: "later start time is a restart", points: []ContainerSample{
			func() ContainerSample { c := cpu(1000, 1); c.StartTime = 100; return c }(),
			func() ContainerSample { c := cpu(2000, 3); c.StartTime = 1500; return c }(),
		}, want: [2]Point{{}, {2000, 3}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := NewIndex()
			for _, p := range tc.points {
				x.ObserveNode("n", NodeSample{}, []ContainerSample{p})
			}
			got, ok := x.Pod("ns", "p")
			if !ok {
				t.Fatal("pod missing")
			}
			u := got["c"]
			if u.HasPrevCPU != tc.wantPrev || u.CPU[1] != tc.want[1] || (tc.wantPrev && u.CPU[0] != tc.want[0]) {
				t.Fatalf("got prev=%v %v, want prev=%v %v", u.HasPrevCPU, u.CPU, tc.wantPrev, tc.want)
			}
		})
	}
}

func TestObserveNodeReplacesItsPods(t *testing.T) {
	x := NewIndex()
	a := ContainerSample{Namespace: "ns", Pod: "a", Container: "c", HasCPU: true, CPU: Point{T: 1, V: 1}}
	b := ContainerSample{Namespace: "ns", Pod: "b", Container: "c", HasCPU: true, CPU: Point{T: 1, V: 1}}
	b2 := b
	b2.Container = "sidecar"
	x.ObserveNode("n1", NodeSample{}, []ContainerSample{a, b, b2})
	x.ObserveNode("n1", NodeSample{}, []ContainerSample{b})
	if _, ok := x.Pod("ns", "a"); ok {
		t.Error("pod a no longer reported but still indexed")
	}
	if cs, _ := x.Pod("ns", "b"); len(cs) != 1 {
		t.Errorf("pod b containers = %v, want only c", cs)
	}
	// b is rescheduled under the same name on n2; n1's next scrape must not
	// delete it.
	x.ObserveNode("n2", NodeSample{}, []ContainerSample{b})
	x.ObserveNode("n1", NodeSample{}, nil)
	if _, ok := x.Pod("ns", "b"); !ok {
		t.Error("pod moved to n2 was deleted by n1's scrape")
	}
	x.ForgetNode("n2")
	if nodes, pods := x.Size(); nodes != 1 || pods != 0 {
		t.Errorf("after forgetting n2: %d nodes, %d pods; want 1, 0", nodes, pods)
	}
}
