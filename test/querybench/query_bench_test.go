//go:build bench

// Package querybench measures the dashboards' main queries over a day of
// history for 1,000 nodes × 30 pods in kmetrics' query API, in Prometheus
// and in VictoriaMetrics ($VICTORIAMETRICS_BIN) holding the same samples,
// each in its own process, their RSS per head series and their disk bytes
// per sample once compacted.
//
//	make bench-query
//
// With QUERYBENCH_PEERS=none only kmetrics' TSDB is loaded
// (make bench-scoped-query: the scoped query API beside the unscoped one).
package querybench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	promstorage "github.com/prometheus/prometheus/storage"

	"github.com/kmetrics/kmetrics/pkg/apiserver"
	"github.com/kmetrics/kmetrics/pkg/storage"
	"github.com/kmetrics/kmetrics/test/internal/promserver"
)

const (
	nodes       = 1000
	podsPerNode = 30
	namespaces  = 50
	history     = 24 * time.Hour
	interval    = 60 * time.Second // one day at 15 s is 4× the samples; the shape is the same
	promPort    = "29190"
	vmPort      = "29192"
	kmPort      = "29191"
	scopedPort  = "29193"
)

var (
	end   = time.Now().Truncate(time.Minute)
	start = end.Add(-history)
	prom  *promserver.Server // nil with QUERYBENCH_PEERS=none
	vm    *promserver.Server // nil without $VICTORIAMETRICS_BIN
	kmURL string
	// scopedURL serves the same TSDB as a namespace-scoped caller is
	// answered (queryserver's X-Bench-Scope).
	scopedURL string
	kmPID     int
	// diskBytes is each store's size on disk once compacted, by name.
	diskBytes = map[string]int64{}
)

// series: per pod one container's CPU counter and memory gauge (60,000).
type podSeries struct{ cpu, mem labels.Labels }

func allSeries() []podSeries {
	out := make([]podSeries, 0, nodes*podsPerNode)
	for n := 0; n < nodes; n++ {
		for p := 0; p < podsPerNode; p++ {
			i := n*podsPerNode + p
			base := []string{"job", "kubelet", "metrics_path", "/metrics/resource", "instance", fmt.Sprintf("10.%d.%d.1:10250", n/250, n%250),
				"node", fmt.Sprintf("node-%d", n), "namespace", fmt.Sprintf("ns-%d", i%namespaces), "pod", fmt.Sprintf("pod-%d", i), "container", "main"}
			out = append(out, podSeries{
				cpu: labels.FromStrings(append([]string{"__name__", "container_cpu_usage_seconds_total"}, base...)...),
				mem: labels.FromStrings(append([]string{"__name__", "container_memory_working_set_bytes"}, base...)...),
			})
		}
	}
	return out
}

// The values look like a kubelet's: a CPU counter in seconds with
// nanosecond digits and jitter (still monotonic: the jitter is below one
// step's increase), a working set that moves by whole pages. Too regular
// values would flatter whichever store compresses patterns best.
func cpuAt(i, step int) float64 {
	v := float64(step)*60*0.01*float64(1+i%40) + float64(noise(i, step)%50_000_000)/1e9
	return math.Round(v*1e9) / 1e9
}

func memAt(i, step int) float64 {
	return float64(64<<20+(i%97)<<20) + float64(noise(i, step)%2048)*4096
}

// noise is a deterministic pseudo-random number per series and step
// (splitmix64).
func noise(i, step int) uint64 {
	z := uint64(i)<<32 | uint64(step)
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	wd, _ := os.Getwd()
	state := filepath.Join(filepath.Clean(filepath.Join(wd, "..", "..")), ".state", "querybench")
	_ = os.RemoveAll(state)
	var err error
	peers := os.Getenv("QUERYBENCH_PEERS") != "none"
	if peers {
		if prom, err = promserver.Start(filepath.Join(state, "prometheus"), promPort); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer prom.Stop()
	}
	if bin := os.Getenv("VICTORIAMETRICS_BIN"); bin != "" && peers {
		if vm, err = promserver.StartVictoriaMetrics(filepath.Join(state, "victoriametrics"), vmPort, bin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer vm.Stop()
	}
	tsdbDir := filepath.Join(state, "kmetrics")
	t0 := time.Now()
	if err := load(tsdbDir); err != nil {
		fmt.Fprintln(os.Stderr, "loading:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "loaded %d series × %d samples in %v\n", 2*nodes*podsPerNode, int(history/interval)+1, time.Since(t0))
	if prom != nil {
		if err := measureDisk(state); err != nil {
			fmt.Fprintln(os.Stderr, "disk sizes:", err)
			return 1
		}
	}
	stop, err := startQueryServer(tsdbDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	return m.Run()
}

// load writes the day, oldest hour first (both TSDBs compact the head as
// it grows: later writes are never older than what was compacted).
func load(dir string) error {
	db, err := storage.Open(storage.Options{Path: dir}, nil, nil)
	if err != nil {
		return err
	}
	series := allSeries()
	refs := make([][2]uint64, len(series))
	steps := int(history / interval)
	const hour = int(time.Hour / interval)
	for from := 0; from <= steps; from += hour {
		to := min(from+hour, steps+1)
		app := db.Appender(context.Background())
		var batch []promserver.Series
		for i, s := range series {
			c := promserver.Series{Labels: s.cpu}
			m := promserver.Series{Labels: s.mem}
			for step := from; step < to; step++ {
				ts := start.Add(time.Duration(step) * interval).UnixMilli()
				r, err := app.Append(promstorage.SeriesRef(refs[i][0]), s.cpu, ts, cpuAt(i, step))
				if err != nil {
					return err
				}
				refs[i][0] = uint64(r)
				r, err = app.Append(promstorage.SeriesRef(refs[i][1]), s.mem, ts, memAt(i, step))
				if err != nil {
					return err
				}
				refs[i][1] = uint64(r)
				c.Samples = append(c.Samples, prompb.Sample{Timestamp: ts, Value: cpuAt(i, step)})
				m.Samples = append(m.Samples, prompb.Sample{Timestamp: ts, Value: memAt(i, step)})
			}
			batch = append(batch, c, m)
			if len(batch) >= 4000 {
				if err := writePeers(batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			if err := writePeers(batch); err != nil {
				return err
			}
		}
		if err := app.Commit(); err != nil {
			return err
		}
		if err := db.TSDB().Compact(context.Background()); err != nil {
			return err
		}
	}
	// Everything as blocks, the head included: what the day costs on disk
	// once compacted (Prometheus' is measured the same way, by a snapshot).
	snap := filepath.Join(filepath.Dir(dir), "kmetrics-snapshot")
	if err := db.TSDB().Snapshot(snap, true); err != nil {
		return err
	}
	if diskBytes["kmetrics"], err = du(snap); err != nil {
		return err
	}
	return db.Close()
}

func writePeers(batch []promserver.Series) error {
	if prom == nil {
		return nil
	}
	if err := prom.Write(batch); err != nil {
		return err
	}
	if vm != nil {
		return vm.Write(batch)
	}
	return nil
}

// measureDisk sizes the peers' stores once compacted: Prometheus by a
// snapshot with its head (all blocks), VictoriaMetrics after a flush and a
// forced merge (its background merges settled).
func measureDisk(state string) error {
	resp, err := http.Post(prom.URL+"/api/v1/admin/tsdb/snapshot", "", nil)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var snap struct {
		Data struct{ Name string } `json:"data"`
	}
	if err := json.Unmarshal(body, &snap); err != nil || snap.Data.Name == "" {
		return fmt.Errorf("prometheus snapshot: %s", body)
	}
	if diskBytes["prometheus"], err = du(filepath.Join(state, "prometheus", "data", "snapshots", snap.Data.Name)); err != nil {
		return err
	}
	if vm == nil {
		return nil
	}
	for _, path := range []string{"/internal/force_flush", "/internal/force_merge"} {
		resp, err := http.Get(vm.URL + path)
		if err != nil {
			return err
		}
		resp.Body.Close()
	}
	// Merges run in the background: wait until the size holds still.
	data := filepath.Join(state, "victoriametrics", "data")
	last := int64(-1)
	for i := 0; i < 120; i++ {
		time.Sleep(5 * time.Second)
		n, err := du(data)
		if err != nil {
			return err
		}
		if n == last {
			break
		}
		last = n
	}
	diskBytes["victoriametrics"] = last
	return nil
}

// du is the bytes of the files under dir.
func du(dir string) (int64, error) {
	var n int64
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return err
	})
	return n, err
}

func startQueryServer(dir string) (func(), error) {
	bin := filepath.Join(os.TempDir(), "kmetrics-queryserver")
	if out, err := exec.Command("go", "build", "-o", bin, "./queryserver").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the query server: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-path", dir, "-listen", "127.0.0.1:"+kmPort, "-scoped-listen", "127.0.0.1:"+scopedPort)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("query server: %q", line)
	}
	kmURL, kmPID = "http://127.0.0.1:"+kmPort+apiserver.QueryPrefix, cmd.Process.Pid
	scopedURL = "http://127.0.0.1:" + scopedPort + apiserver.QueryPrefix
	for i := 0; i < 100; i++ {
		if resp, err := http.Get(kmURL + "/query?query=1"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }, nil
}

// The dashboards' main queries, as Grafana sends them for a one-day panel
// (step 2m: ~720 points).
var dashboardQueries = []struct{ name, path, query string }{
	{"cluster-cpu-by-namespace", "query_range", `sum by (namespace) (rate(container_cpu_usage_seconds_total{job="kubelet",metrics_path="/metrics/resource"}[5m]))`},
	{"cluster-memory-by-namespace", "query_range", `sum by (namespace) (container_memory_working_set_bytes{job="kubelet",metrics_path="/metrics/resource"})`},
	{"namespace-cpu-by-pod", "query_range", `sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="ns-7"}[5m]))`},
	{"node-cpu-by-pod", "query_range", `sum by (pod) (rate(container_cpu_usage_seconds_total{node="node-421"}[5m]))`},
	{"top10-pods-cpu", "query_range", `topk(10, sum by (pod) (rate(container_cpu_usage_seconds_total[5m])))`},
	{"cluster-cpu-now", "query", `sum(rate(container_cpu_usage_seconds_total[5m]))`},
}

func params(path, q string) url.Values {
	if path == "query" {
		return url.Values{"query": {q}, "time": {strconv.FormatInt(end.Unix(), 10)}}
	}
	return url.Values{"query": {q}, "start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}, "step": {"120"}}
}

func query(b *testing.B, base, path, q string) { queryAs(b, base, "", path, q) }

// queryAs sends the query as Grafana does, X-Bench-Scope naming the
// caller's namespaces for the scoped server.
func queryAs(b *testing.B, base, scope, path, q string) string {
	req, err := http.NewRequest(http.MethodPost, base+"/"+path, strings.NewReader(params(path, q).Encode()))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if scope != "" {
		req.Header.Set("X-Bench-Scope", scope)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"success"`) || strings.Contains(string(body), `"result":[]`) {
		b.Fatalf("%s %s: %d %.300s", base, q, resp.StatusCode, body)
	}
	return string(body)
}

func BenchmarkDashboardQueries(b *testing.B) {
	if prom == nil {
		b.Skip("QUERYBENCH_PEERS=none")
	}
	for _, q := range dashboardQueries {
		b.Run("kmetrics/"+q.name, func(b *testing.B) {
			for b.Loop() {
				query(b, kmURL, q.path, q.query)
			}
		})
		b.Run("prometheus/"+q.name, func(b *testing.B) {
			for b.Loop() {
				query(b, prom.URL+"/api/v1", q.path, q.query)
			}
		})
		if vm != nil {
			b.Run("victoriametrics/"+q.name, func(b *testing.B) {
				for b.Loop() {
					query(b, vm.URL+"/api/v1", q.path, q.query)
				}
			})
		}
	}
}

// BenchmarkDiskBytesPerSample reports each store's bytes on disk per
// sample once compacted (measured after loading).
func BenchmarkDiskBytesPerSample(b *testing.B) {
	samples := float64(2*nodes*podsPerNode) * float64(int(history/interval)+1)
	for _, name := range []string{"kmetrics", "prometheus", "victoriametrics"} {
		n, ok := diskBytes[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
			}
			b.ReportMetric(float64(n)/samples, "disk-bytes/sample")
			b.ReportMetric(float64(n)/(1<<20), "disk-MiB")
		})
	}
}

// BenchmarkRSSPerSeries reports each process's resident memory per head
// series after the queries (run after BenchmarkDashboardQueries).
func BenchmarkRSSPerSeries(b *testing.B) {
	for _, side := range []struct {
		name string
		pid  int
		url  string
	}{{"kmetrics", kmPID, kmURL}, {"prometheus", 0, ""}, {"victoriametrics", 0, ""}} {
		if side.name == "prometheus" {
			if prom == nil {
				continue
			}
			side.pid, side.url = prom.Pid(), prom.URL+"/api/v1"
		}
		if side.name == "victoriametrics" {
			if vm == nil {
				continue
			}
			side.pid, side.url = vm.Pid(), vm.URL+"/api/v1"
		}
		b.Run(side.name, func(b *testing.B) {
			for b.Loop() {
			}
			rss := rssBytes(b, side.pid)
			head := headSeries(b, side.url)
			b.ReportMetric(float64(rss)/float64(head), "RSS-bytes/series")
			b.ReportMetric(float64(rss)/(1<<20), "RSS-MiB")
			b.ReportMetric(float64(head), "head-series")
		})
	}
}

func rssBytes(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

func headSeries(b *testing.B, base string) int64 {
	resp, err := http.Get(base + "/query?time=" + strconv.FormatInt(end.Unix(), 10) + "&query=" + url.QueryEscape(`count({__name__=~"container_.*"})`))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Data.Result) != 1 {
		b.Fatalf("%s", body)
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		b.Fatalf("%s", body)
	}
	return int64(n)
}

// A team reading two of the 50 namespaces (1,200 pods' series of 60,000),
// and the query each of its dashboard's panels sends, scoped, beside the
// query that gives the same answer unscoped (naming the namespaces itself).
const team = "ns-7,ns-12"

var scopedQueries = []struct{ name, path, scoped, unscoped string }{
	{"namespace-cpu-by-pod", "query_range",
		`sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="ns-7"}[5m]))`,
		`sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="ns-7"}[5m]))`},
	{"team-cpu-by-namespace", "query_range",
		`sum by (namespace) (rate(container_cpu_usage_seconds_total{job="kubelet"}[5m]))`,
		`sum by (namespace) (rate(container_cpu_usage_seconds_total{job="kubelet",namespace=~"ns-7|ns-12"}[5m]))`},
	{"team-memory-by-namespace", "query_range",
		`sum by (namespace) (container_memory_working_set_bytes{job="kubelet"})`,
		`sum by (namespace) (container_memory_working_set_bytes{job="kubelet",namespace=~"ns-7|ns-12"})`},
	{"team-top10-pods-cpu", "query_range",
		`topk(10, sum by (pod) (rate(container_cpu_usage_seconds_total[5m])))`,
		`topk(10, sum by (pod) (rate(container_cpu_usage_seconds_total{namespace=~"ns-7|ns-12"}[5m])))`},
	{"team-cpu-now", "query",
		`sum(rate(container_cpu_usage_seconds_total[5m]))`,
		`sum(rate(container_cpu_usage_seconds_total{namespace=~"ns-7|ns-12"}[5m]))`},
}

// side is one way of asking: a server, the caller's scope, the query.
type side struct{ url, scope, query string }

// scopedPair: two ways of asking that must give the same answer.
type scopedPair struct {
	name, path       string
	scoped, unscoped side
}

// BenchmarkScopedQueries: each pair runs in one process over the same
// TSDB (queryserver serves both), interleaved — every iteration sends the
// scoped query and the unscoped one, in alternating order — so the
// machine's noise falls on both alike; scoped-ms and unscoped-ms are each
// side's mean, ratio their quotient. The cluster-wide reader's query (a
// scope of everything) beside the plain query API shows the cost of the
// scope machinery where no matcher is added. Each pair's answers are
// compared first: a scope that read less or more would be faster or slower
// for the wrong reason.
func BenchmarkScopedQueries(b *testing.B) {
	pairs := make([]scopedPair, 0, len(scopedQueries)+1)
	for _, q := range scopedQueries {
		pairs = append(pairs, scopedPair{q.name, q.path, side{scopedURL, team, q.scoped}, side{kmURL, "", q.unscoped}})
	}
	const wide = `sum by (namespace) (rate(container_cpu_usage_seconds_total[5m]))`
	pairs = append(pairs, scopedPair{"cluster-reader-cpu-by-namespace", "query_range", side{scopedURL, "*", wide}, side{kmURL, "", wide}})
	for _, p := range pairs {
		if s, u := resultOf(b, queryAs(b, p.scoped.url, p.scoped.scope, p.path, p.scoped.query)), resultOf(b, queryAs(b, p.unscoped.url, "", p.path, p.unscoped.query)); s != u {
			b.Fatalf("%s: the scoped answer differs from the unscoped one:\n%.400s\n%.400s", p.name, s, u)
		}
		b.Run(p.name, func(b *testing.B) {
			var took [2]time.Duration
			i := 0
			for b.Loop() {
				for k := range 2 {
					which := (i + k) % 2 // alternate which goes first
					s := []side{p.scoped, p.unscoped}[which]
					t0 := time.Now()
					queryAs(b, s.url, s.scope, p.path, s.query)
					took[which] += time.Since(t0)
				}
				i++
			}
			b.ReportMetric(float64(took[0])/1e6/float64(i), "scoped-ms")
			b.ReportMetric(float64(took[1])/1e6/float64(i), "unscoped-ms")
			b.ReportMetric(float64(took[0])/float64(took[1]), "ratio")
		})
	}
}

// resultOf is the data part of an answer (the same JSON for the same
// series and values).
func resultOf(b *testing.B, body string) string {
	var r struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		b.Fatalf("%v: %.300s", err, body)
	}
	return string(r.Data)
}
