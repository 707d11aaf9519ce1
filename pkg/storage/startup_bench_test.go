package storage

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
)

// Start-up with a full two-hour head of a 1,000-node cluster (30 pods of
// one container per node, the kubelet's resource series every 15 s): how
// long the TSDB takes to open after a crash (WAL replay) and after a
// graceful shutdown (head snapshot), and how long the index snapshot takes
// to load — what kubectl top waits for now.
//
//	go test -run '^$' -bench 'Startup' -benchtime 1x -count 3 ./pkg/storage
//
// STARTUP_NODES changes the cluster size (default 1000).
var startupHead struct {
	once      sync.Once
	dir       string // a closed TSDB with the head snapshot
	killed    string // the same before Close: WAL only
	series    int
	samples   int
	indexSnap string
	err       error
}

func startupNodes() int {
	if n, err := strconv.Atoi(os.Getenv("STARTUP_NODES")); err == nil && n > 0 {
		return n
	}
	return 1000
}

func buildStartupHead(b *testing.B) {
	startupHead.once.Do(func() {
		root, err := os.MkdirTemp("", "kmetrics-startup-")
		if err != nil {
			startupHead.err = err
			return
		}
		startupHead.dir = filepath.Join(root, "graceful")
		startupHead.killed = filepath.Join(root, "killed")
		startupHead.err = fillHead(startupHead.dir, startupHead.killed, startupNodes())
	})
	if startupHead.err != nil {
		b.Fatal(startupHead.err)
	}
}

// fillHead writes two hours of 15 s resource scrapes of n nodes into a TSDB
// at dir, copies the directory to killed before closing (a crash: the WAL
// alone) and writes the index snapshot the last scrape would have.
func fillHead(dir, killed string, nodes int) error {
	db, err := Open(Options{Path: dir}, nil, nil)
	if err != nil {
		return err
	}
	const pods, step = 30, 15 * time.Second
	end := time.Now()
	start := end.Add(-2 * time.Hour)
	type series struct {
		lset labels.Labels
		cpu  bool
	}
	var all []series
	index := NewIndex()
	for n := 0; n < nodes; n++ {
		node := fmt.Sprintf("node-%04d", n)
		base := []string{"job", "kubelet", "instance", node + ":10250", "metrics_path", "/metrics/resource", "node", node}
		all = append(all,
			series{labels.FromStrings(append([]string{"__name__", MetricNodeCPU}, base...)...), true},
			series{labels.FromStrings(append([]string{"__name__", MetricNodeMemory}, base...)...), false})
		var containers []ContainerSample
		for p := 0; p < pods; p++ {
			pl := append([]string{"namespace", fmt.Sprintf("ns-%d", p%10), "pod", fmt.Sprintf("%s-pod-%d", node, p), "container", "main"}, base...)
			for _, name := range []string{MetricContainerCPU, MetricContainerMem, "pod_cpu_usage_seconds_total", "pod_memory_working_set_bytes", MetricContainerStart} {
				all = append(all, series{labels.FromStrings(append([]string{"__name__", name}, pl...)...), name == MetricContainerCPU || name == "pod_cpu_usage_seconds_total"})
			}
			containers = append(containers, ContainerSample{Namespace: fmt.Sprintf("ns-%d", p%10), Pod: fmt.Sprintf("%s-pod-%d", node, p), Container: "main",
				CPU: Point{T: end.UnixMilli(), V: 100}, HasCPU: true, Memory: Point{T: end.UnixMilli(), V: 1e8}, HasMemory: true})
		}
		index.ObserveNode(node, NodeSample{CPU: Point{T: end.UnixMilli(), V: 10}, HasCPU: true}, containers)
		index.ObserveNode(node, NodeSample{CPU: Point{T: end.UnixMilli() + 15000, V: 11}, HasCPU: true}, containers)
	}
	startupHead.series = len(all)
	refs := make([]promstorage.SeriesRef, len(all))
	for ts := start; ts.Before(end); ts = ts.Add(step) {
		app := db.Appender(context.Background())
		for i, s := range all {
			v := 1e8
			if s.cpu {
				v = float64(ts.Sub(start).Seconds()) * 0.1
			}
			ref, err := app.Append(refs[i], s.lset, ts.UnixMilli(), v)
			if err != nil {
				return err
			}
			refs[i] = ref
			startupHead.samples++
		}
		if err := app.Commit(); err != nil {
			return err
		}
	}
	if out, err := exec.Command("cp", "-a", dir, killed).CombinedOutput(); err != nil {
		return fmt.Errorf("copying the TSDB: %v: %s", err, out)
	}
	startupHead.indexSnap = filepath.Join(dir, IndexSnapshotFile)
	if err := index.WriteSnapshot(startupHead.indexSnap, end); err != nil {
		return err
	}
	return db.Close()
}

func benchOpen(b *testing.B, killed bool) {
	buildStartupHead(b)
	src := startupHead.dir
	if killed {
		src = startupHead.killed
	}
	b.ResetTimer() // the head is written once, before the first run
	b.ReportMetric(float64(startupHead.series), "series")
	b.ReportMetric(float64(startupHead.samples), "samples")
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		if out, err := exec.Command("cp", "-a", src+"/.", dir).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		b.StartTimer()
		db, err := Open(Options{Path: dir}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkStartupOpenAfterKill: the TSDB replays the whole WAL.
func BenchmarkStartupOpenAfterKill(b *testing.B) { benchOpen(b, true) }

// BenchmarkStartupOpenAfterShutdown: the TSDB loads the head snapshot
// written on Close.
func BenchmarkStartupOpenAfterShutdown(b *testing.B) { benchOpen(b, false) }

// BenchmarkStartupIndexSnapshot: what kubectl top waits for after any
// restart, the TSDB opening meanwhile.
func BenchmarkStartupIndexSnapshot(b *testing.B) {
	buildStartupHead(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x := NewIndex()
		nodes, pods, _, err := x.LoadSnapshot(startupHead.indexSnap, time.Time{})
		if err != nil || nodes != startupNodes() {
			b.Fatalf("loaded %d nodes, %d pods: %v", nodes, pods, err)
		}
		b.ReportMetric(float64(pods), "pods")
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if startupHead.dir != "" {
		_ = os.RemoveAll(filepath.Dir(startupHead.dir))
	}
	os.Exit(code)
}
