//go:build e2e

// Package equivalence checks that kmetrics' query API gives the same
// answers as a real Prometheus (Debian's 2.42) holding the same samples, for
// a fixed set of queries: functions, aggregations, joins, subqueries,
// offsets, instant and range.
package equivalence

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/kmetrics/kmetrics/pkg/apiserver"
	"github.com/kmetrics/kmetrics/pkg/storage"
	"github.com/kmetrics/kmetrics/test/internal/promserver"
)

const promPort = "19090"

// The data: one hour, a sample every 15 s at 3.7 s past a whole 15 s (so no
// sample sits on a range boundary, where Prometheus 3 — kmetrics' engine —
// and 2.x differ by design: 3.0 made ranges left-open).
var (
	start = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC).Add(3700 * time.Millisecond)
	step  = 15 * time.Second
	steps = 240
)

func dataset() []promserver.Series {
	var out []promserver.Series
	add := func(lset labels.Labels, value func(i int) float64) {
		s := promserver.Series{Labels: lset}
		for i := 0; i < steps; i++ {
			if v := value(i); !math.IsNaN(v) {
				s.Samples = append(s.Samples, prompb.Sample{Timestamp: start.Add(time.Duration(i) * step).UnixMilli(), Value: v})
			}
		}
		out = append(out, s)
	}
	for ns := 0; ns < 3; ns++ {
		for p := 0; p < 4; p++ {
			pod := fmt.Sprintf("pod-%d-%d", ns, p)
			node := fmt.Sprintf("node-%d", (ns+p)%3)
			for c := 0; c < 2; c++ {
				base := labels.FromStrings("job", "kubelet", "metrics_path", "/metrics/resource", "namespace", fmt.Sprintf("ns%d", ns),
					"pod", pod, "container", fmt.Sprintf("c%d", c), "node", node)
				rate := 0.05 * float64(1+ns+p+c)
				reset := (ns+p+c)%5 == 0
				add(withName(base, "container_cpu_usage_seconds_total"), func(i int) float64 {
					if reset && i >= 120 { // a restart halfway
						return rate * 15 * float64(i-120)
					}
					return 1000 + rate*15*float64(i) + 0.01*float64(i%7)
				})
				add(withName(base, "container_memory_working_set_bytes"), func(i int) float64 {
					// Distinct per series: topk/bottomk break ties differently across versions.
					return float64((ns+1)*(p+1)*(c+1))*1e6 + 1e3*float64(ns*8+p*2+c) + 1e5*math.Sin(float64(i)/10)
				})
				add(labels.FromStrings("__name__", "kube_pod_container_resource_requests", "job", "kube-state-metrics",
					"namespace", fmt.Sprintf("ns%d", ns), "pod", pod, "container", fmt.Sprintf("c%d", c), "resource", "cpu", "unit", "core"),
					func(int) float64 { return 0.1 * float64(c+1) })
			}
			add(labels.FromStrings("__name__", "kube_pod_info", "job", "kube-state-metrics", "namespace", fmt.Sprintf("ns%d", ns),
				"pod", pod, "node", node, "created_by_kind", "ReplicaSet"), func(i int) float64 {
				if p == 3 && i > 200 { // deleted near the end
					return math.NaN()
				}
				return 1
			})
		}
	}
	for _, le := range []string{"0.05", "0.1", "0.25", "0.5", "1", "+Inf"} {
		bound, _ := strconv.ParseFloat(le, 64)
		add(labels.FromStrings("__name__", "http_request_duration_seconds_bucket", "job", "app", "namespace", "ns0", "le", le), func(i int) float64 {
			frac := math.Min(1, bound*2)
			if math.IsInf(bound, 1) {
				frac = 1
			}
			return math.Floor(float64(i) * 10 * frac)
		})
	}
	return out
}

func withName(l labels.Labels, name string) labels.Labels {
	b := labels.NewBuilder(l)
	b.Set("__name__", name)
	return b.Labels()
}

// The queries: what the dashboards and alerts use, and PromQL's main
// function families.
var queries = []string{
	`sum by (namespace) (rate(container_cpu_usage_seconds_total[5m]))`,
	`irate(container_cpu_usage_seconds_total{namespace="ns1"}[2m])`,
	`increase(container_cpu_usage_seconds_total{namespace="ns0"}[10m])`,
	`resets(container_cpu_usage_seconds_total[1h])`,
	`sum by (namespace, pod) (container_memory_working_set_bytes) / 1024 / 1024`,
	`avg without (container) (container_memory_working_set_bytes)`,
	`max by (node) (container_memory_working_set_bytes)`,
	`topk(3, sum by (pod) (rate(container_cpu_usage_seconds_total[5m])))`,
	`bottomk(2, container_memory_working_set_bytes{namespace="ns2"})`,
	`quantile by (namespace) (0.9, container_memory_working_set_bytes)`,
	`stddev by (namespace) (container_memory_working_set_bytes)`,
	`count by (node) (kube_pod_info)`,
	`count_values("requests", kube_pod_container_resource_requests)`,
	`avg_over_time(container_memory_working_set_bytes{pod="pod-1-1"}[15m])`,
	`max_over_time(container_memory_working_set_bytes{pod="pod-2-3"}[30m])`,
	`quantile_over_time(0.5, container_memory_working_set_bytes{namespace="ns0"}[20m])`,
	`count_over_time(kube_pod_info[10m])`,
	`changes(container_memory_working_set_bytes{pod="pod-0-0"}[10m])`,
	`deriv(container_memory_working_set_bytes{pod="pod-0-1",container="c0"}[10m])`,
	`predict_linear(container_cpu_usage_seconds_total{pod="pod-1-2"}[10m], 3600)`,
	`delta(container_memory_working_set_bytes{namespace="ns1"}[5m])`,
	`histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))`,
	`sum by (namespace, pod) (rate(container_cpu_usage_seconds_total[5m])) / on (namespace, pod) group_left sum by (namespace, pod) (kube_pod_container_resource_requests{resource="cpu"})`,
	`sum by (node) (rate(container_cpu_usage_seconds_total[5m]) * on (namespace, pod) group_left (created_by_kind) kube_pod_info)`,
	`max_over_time(sum by (namespace) (rate(container_cpu_usage_seconds_total[1m]))[10m:1m])`,
	`rate(container_cpu_usage_seconds_total{pod="pod-0-2"}[5m] offset 10m)`,
	`container_memory_working_set_bytes{pod="pod-2-0"} - container_memory_working_set_bytes{pod="pod-2-0"} offset 5m`,
	`label_replace(kube_pod_info, "host", "$1", "node", "node-(.*)")`,
	`sort_desc(sum by (pod) (container_memory_working_set_bytes))`,
	`clamp_min(deriv(container_memory_working_set_bytes{namespace="ns0",container="c1"}[5m]), 0)`,
	`container_memory_working_set_bytes > bool 5e6`,
	`absent(nonexistent_metric)`,
	`absent_over_time(kube_pod_info{pod="pod-0-3"}[1m])`,
	`vector(1) + scalar(count(kube_pod_info))`,
	`time() - timestamp(kube_pod_info{pod="pod-1-0"})`,
	`sum(kube_pod_info) unless on () absent(kube_pod_info)`,
	`round(avg(container_memory_working_set_bytes), 1000)`,
}

// evaluation times: mid-range, the end, and past the end (staleness and
// lookback).
var instants = []time.Time{start.Add(30*time.Minute + 20*time.Second), start.Add(59*time.Minute + 40*time.Second), start.Add(62 * time.Minute)}

func TestSameAnswersAsPrometheus(t *testing.T) {
	wd, _ := os.Getwd()
	root := filepath.Clean(filepath.Join(wd, "..", ".."))
	prom, err := promserver.Start(filepath.Join(root, ".state", "equivalence", "prometheus"), promPort)
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Stop()
	db, err := storage.Open(storage.Options{Path: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	data := dataset()
	app := db.Appender(context.Background())
	for _, s := range data {
		for _, smp := range s.Samples {
			if _, err := app.Append(0, s.Labels, smp.Timestamp, smp.Value); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := prom.Write(data); err != nil {
		t.Fatal(err)
	}
	km := httptest.NewServer(apiserver.NewQueryAPI(db.TSDB(), apiserver.QueryOptions{
		Timeout: time.Minute, MaxSamples: 50e6, MaxConcurrency: 4, LookbackDelta: 5 * time.Minute}, nil))
	defer km.Close()

	for _, q := range queries {
		nonEmpty := 0
		for _, at := range instants {
			params := url.Values{"query": {q}, "time": {strconv.FormatInt(at.Unix(), 10)}}
			want := get(t, prom.URL+"/api/v1/query", params)
			compare(t, fmt.Sprintf("instant %s @%s", q, at.Format("15:04:05")),
				get(t, km.URL+apiserver.QueryPrefix+"/query", params), want, strings.HasPrefix(q, "sort"))
			if len(want.Data.Result) > 2 { // not "[]"
				nonEmpty++
			}
		}
		params := url.Values{"query": {q}, "start": {strconv.FormatInt(start.Add(20*time.Minute).Unix(), 10)},
			"end": {strconv.FormatInt(start.Add(62*time.Minute).Unix(), 10)}, "step": {"60"}}
		compare(t, "range "+q, get(t, km.URL+apiserver.QueryPrefix+"/query_range", params), get(t, prom.URL+"/api/v1/query_range", params), false)
		// A query answered by nothing in both proves nothing.
		if nonEmpty == 0 {
			t.Errorf("%s: empty at every instant: the data does not exercise it", q)
		}
	}
}

type response struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

type series struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
	Values [][]any           `json:"values"`
}

func get(t *testing.T, u string, params url.Values) response {
	t.Helper()
	resp, err := http.Get(u + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%s: %v: %s", u, err, body)
	}
	return r
}

// compare requires the same result type, the same series and the same
// values (relative difference below 1e-9: summation order may differ
// between the engines' versions). Order matters only for sort functions.
func compare(t *testing.T, what string, got, want response, ordered bool) {
	t.Helper()
	if got.Status != want.Status || got.Status != "success" {
		t.Errorf("%s: status %s (%s), Prometheus %s (%s)", what, got.Status, got.Error, want.Status, want.Error)
		return
	}
	if got.Data.ResultType != want.Data.ResultType {
		t.Errorf("%s: result type %s, Prometheus %s", what, got.Data.ResultType, want.Data.ResultType)
		return
	}
	if got.Data.ResultType == "scalar" {
		var g, w []any
		_ = json.Unmarshal(got.Data.Result, &g)
		_ = json.Unmarshal(want.Data.Result, &w)
		if !sameSample(g, w) {
			t.Errorf("%s: %v, Prometheus %v", what, g, w)
		}
		return
	}
	var g, w []series
	_ = json.Unmarshal(got.Data.Result, &g)
	_ = json.Unmarshal(want.Data.Result, &w)
	keyed := func(ss []series) map[string]series {
		m := map[string]series{}
		for _, s := range ss {
			m[labels.FromMap(s.Metric).String()] = s
		}
		return m
	}
	gk, wk := keyed(g), keyed(w)
	if len(gk) != len(wk) {
		t.Errorf("%s: %d series, Prometheus %d:\n%s\n%s", what, len(gk), len(wk), keys(gk), keys(wk))
		return
	}
	for k, ws := range wk {
		gs, ok := gk[k]
		if !ok {
			t.Errorf("%s: series %s missing", what, k)
			continue
		}
		if ws.Value != nil && !sameSample(gs.Value, ws.Value) {
			t.Errorf("%s: %s = %v, Prometheus %v", what, k, gs.Value, ws.Value)
		}
		if len(gs.Values) != len(ws.Values) {
			t.Errorf("%s: %s has %d points, Prometheus %d", what, k, len(gs.Values), len(ws.Values))
			continue
		}
		for i := range ws.Values {
			if !sameSample(gs.Values[i], ws.Values[i]) {
				t.Errorf("%s: %s point %d = %v, Prometheus %v", what, k, i, gs.Values[i], ws.Values[i])
				break
			}
		}
	}
	if ordered && len(g) == len(w) {
		for i := range w {
			if labels.FromMap(g[i].Metric).String() != labels.FromMap(w[i].Metric).String() {
				t.Errorf("%s: order differs at %d", what, i)
				break
			}
		}
	}
}

func keys(m map[string]series) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func sameSample(g, w []any) bool {
	if len(g) != 2 || len(w) != 2 || g[0] != w[0] {
		return false
	}
	gs, _ := g[1].(string)
	ws, _ := w[1].(string)
	if gs == ws {
		return true
	}
	gv, err1 := strconv.ParseFloat(gs, 64)
	wv, err2 := strconv.ParseFloat(ws, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	return math.Abs(gv-wv) <= 1e-9*math.Max(math.Abs(gv), math.Abs(wv))
}
