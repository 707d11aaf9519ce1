package storage

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

func TestIndexSnapshotRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), IndexSnapshotFile)
	x := NewIndex()
	x.ObserveNode("n1", NodeSample{CPU: Point{1000, 1}, HasCPU: true, Memory: Point{1000, 5}, HasMemory: true}, []ContainerSample{cpu(1000, 1)})
	x.ObserveNode("n1", NodeSample{CPU: Point{2000, 2}, HasCPU: true}, []ContainerSample{cpu(2000, 3)})
	x.ObserveNode("n2", NodeSample{CPU: Point{2000, 2}, HasCPU: true}, nil)
	taken := time.Now()
	if err := x.WriteSnapshot(path, taken); err != nil {
		t.Fatal(err)
	}

	y := NewIndex()
	nodes, pods, _, err := y.LoadSnapshot(path, taken.Add(-time.Minute))
	if err != nil || nodes != 2 || pods != 1 {
		t.Fatalf("loaded %d nodes, %d pods: %v", nodes, pods, err)
	}
	got, ok := y.Pod("ns", "p")
	if !ok || !got["c"].HasPrevCPU || got["c"].CPU != [2]Point{{1000, 1}, {2000, 3}} {
		t.Fatalf("pod after the round trip: %+v", got)
	}
	if n, _ := y.Node("n1"); n.Memory != (Point{1000, 5}) || !n.HasPrevCPU {
		t.Fatalf("node after the round trip: %+v", n)
	}

	// A node scraped since start is newer than the snapshot: neither it
	// nor its pods are overwritten.
	z := NewIndex()
	z.ObserveNode("n1", NodeSample{CPU: Point{9000, 9}, HasCPU: true}, nil)
	if _, _, _, err := z.LoadSnapshot(path, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n, _ := z.Node("n1"); n.CPU[1] != (Point{9000, 9}) {
		t.Errorf("the scraped node was overwritten: %+v", n)
	}
	if _, ok := z.Pod("ns", "p"); ok {
		t.Error("a pod of the scraped node came back from the snapshot")
	}
	if _, ok := z.Node("n2"); !ok {
		t.Error("the other node was not loaded")
	}

	// Too old, missing or damaged: nothing is loaded, nothing breaks.
	if n, _, _, err := NewIndex().LoadSnapshot(path, taken.Add(time.Second)); n != 0 || err != nil {
		t.Errorf("an old snapshot loaded %d nodes (%v)", n, err)
	}
	if n, _, _, err := NewIndex().LoadSnapshot(filepath.Join(t.TempDir(), "none"), time.Time{}); n != 0 || err != nil {
		t.Errorf("a missing snapshot: %d, %v", n, err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, _, _, err := NewIndex().LoadSnapshot(path, time.Time{}); n != 0 || err == nil {
		t.Errorf("a damaged snapshot: %d nodes, err %v", n, err)
	}
}

// Until the TSDB has opened, reads and writes fail with ErrOpening (a 503
// for the query API), never block.
func TestOpeningDB(t *testing.T) {
	d := &DB{ready: make(chan struct{})}
	if _, err := d.Querier(0, 1); err != ErrOpening {
		t.Errorf("querier while opening: %v", err)
	}
	app := d.Appender(t.Context())
	if _, err := app.Append(0, labels.EmptyLabels(), 1, 1); err != ErrOpening {
		t.Errorf("append while opening: %v", err)
	}
	if d.TSDB() != nil || d.HeadMinTime() != 1<<63-1 {
		t.Error("an opening TSDB reports itself open")
	}
}
