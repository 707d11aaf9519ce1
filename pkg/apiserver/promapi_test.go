package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// queryServer serves the query API over a real TSDB holding 10 minutes of
// a counter growing 0.25/s for two pods, sampled every 15s.
func queryServer(t *testing.T, o QueryOptions) (*httptest.Server, time.Time) {
	t.Helper()
	db, err := storage.Open(storage.Options{Path: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	end := time.Now().Truncate(time.Second)
	app := db.Appender(context.Background())
	for _, pod := range []string{"web-1", "web-2"} {
		lset := labels.FromStrings("__name__", "container_cpu_usage_seconds_total", "job", "kubelet", "namespace", "shop", "pod", pod, "container", "main")
		for ts := end.Add(-10 * time.Minute); !ts.After(end); ts = ts.Add(15 * time.Second) {
			if _, err := app.Append(0, lset, ts.UnixMilli(), float64(ts.Unix()-end.Unix()+600)*0.25); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if o.Timeout == 0 {
		o = QueryOptions{Timeout: 10 * time.Second, MaxSamples: 50000, MaxConcurrency: 4, LookbackDelta: 5 * time.Minute, Version: "test"}
	}
	meta := storage.NewMetadata()
	meta.Apply([]storage.MetadataUpdate{
		{Kind: storage.MetadataType, Family: "container_cpu_usage_seconds_total", Value: string(model.MetricTypeCounter)},
		{Kind: storage.MetadataHelp, Family: "container_cpu_usage_seconds_total", Value: "Cumulative cpu time consumed by the container in core-seconds"},
	}, true)
	o.Metadata = meta
	mux := http.NewServeMux()
	mux.Handle(QueryPrefix+"/", NewQueryAPI(db.TSDB(), o, nil))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, end
}

func TestQueryAPIWithPrometheusClient(t *testing.T) {
	srv, end := queryServer(t, QueryOptions{})
	client, err := api.NewClient(api.Config{Address: srv.URL + "/prometheus"})
	if err != nil {
		t.Fatal(err)
	}
	papi := promv1.NewAPI(client)
	ctx := context.Background()

	v, _, _, err := papi.Query(ctx, `sum by (pod) (rate(container_cpu_usage_seconds_total[1m]))`, end)
	if err != nil {
		t.Fatal(err)
	}
	vec := v.(model.Vector)
	if len(vec) != 2 {
		t.Fatalf("want 2 series, got %v", vec)
	}
	for _, s := range vec {
		if float64(s.Value) < 0.2499 || float64(s.Value) > 0.2501 {
			t.Errorf("%v = %v, want 0.25", s.Metric, s.Value)
		}
	}
	r, _, _, err := papi.QueryRange(ctx, `irate(container_cpu_usage_seconds_total{pod="web-1"}[1m])`, promv1.Range{Start: end.Add(-5 * time.Minute), End: end, Step: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if m := r.(model.Matrix); len(m) != 1 || len(m[0].Values) != 11 {
		t.Fatalf("range query: %v", r)
	}
	names, _, _, err := papi.LabelNames(ctx, nil, end.Add(-time.Hour), end)
	if err != nil || fmt.Sprint([]model.LabelName(names)) != "[__name__ container job namespace pod]" {
		t.Fatalf("label names %v, %v", names, err)
	}
	vals, _, _, err := papi.LabelValues(ctx, "pod", []string{`{job="kubelet"}`}, end.Add(-time.Hour), end)
	if err != nil || len(vals) != 2 {
		t.Fatalf("label values %v, %v", vals, err)
	}
	series, _, _, err := papi.Series(ctx, []string{`container_cpu_usage_seconds_total{pod="web-2"}`}, end.Add(-time.Hour), end)
	if err != nil || len(series) != 1 {
		t.Fatalf("series %v, %v", series, err)
	}
}

type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

func TestQueryAPIRequestsAndErrors(t *testing.T) {
	srv, _ := queryServer(t, QueryOptions{Timeout: 10 * time.Second, MaxSamples: 50, MaxConcurrency: 4, LookbackDelta: 5 * time.Minute})
	decode := func(resp *http.Response, err error) (int, apiResponse) {
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r apiResponse
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &r)
		return resp.StatusCode, r
	}
	post := func(path string, form url.Values) (int, apiResponse) {
		return decode(http.PostForm(srv.URL+QueryPrefix+path, form))
	}
	get := func(path string) (int, apiResponse) { return decode(http.Get(srv.URL + QueryPrefix + path)) }
	tests := []struct {
		name     string
		do       func() (int, apiResponse)
		code     int
		errType  string
		dataHas  string
		errorHas string
	}{
		{name: "Grafana's Save & test (POST, 1970 time)", do: func() (int, apiResponse) { return post("/query", url.Values{"query": {"1+1"}, "time": {"4"}}) },
			code: 200, dataHas: `"2"`},
		{name: "GET instant query", do: func() (int, apiResponse) { return get("/query?query=1%2B1&time=2026-11-21T10:00:00Z") }, code: 200, dataHas: `"2"`},
		{name: "millisecond-style float time", do: func() (int, apiResponse) { return get("/query?query=1&time=1763719200.123") }, code: 200},
		{name: "malformed PromQL", do: func() (int, apiResponse) { return post("/query", url.Values{"query": {"sum(rate(x[5m]"}}) },
			code: 400, errType: "bad_data", errorHas: "parse error"},
		{name: "bad time", do: func() (int, apiResponse) { return get("/query?query=1&time=yesterday") }, code: 400, errType: "bad_data", errorHas: "time"},
		{name: "end before start", do: func() (int, apiResponse) {
			return get("/query_range?query=1&start=200&end=100&step=10")
		}, code: 400, errType: "bad_data", errorHas: "end timestamp"},
		{name: "too many points", do: func() (int, apiResponse) {
			return get("/query_range?query=1&start=0&end=100000000&step=1")
		}, code: 400, errType: "bad_data", errorHas: "11,000 points"},
		{name: "too many samples", do: func() (int, apiResponse) {
			return post("/query", url.Values{"query": {"container_cpu_usage_seconds_total[10m]"}})
		}, code: 422, errType: "execution", errorHas: "too many samples"},
		{name: "buildinfo without features", do: func() (int, apiResponse) { return get("/status/buildinfo") }, code: 200, dataHas: `"version"`},
		{name: "metadata (what Grafana's editor shows)", do: func() (int, apiResponse) { return get("/metadata?limit=40000") }, code: 200,
			dataHas: `"container_cpu_usage_seconds_total":[{"type":"counter","unit":"","help":"Cumulative cpu time consumed by the container in core-seconds"}]`},
		{name: "metadata of one metric", do: func() (int, apiResponse) { return get("/metadata?metric=container_cpu_usage_seconds_total") }, code: 200,
			dataHas: `"type":"counter"`},
		{name: "label values of __name__", do: func() (int, apiResponse) { return get("/label/__name__/values") }, code: 200, dataHas: "container_cpu_usage_seconds_total"},
		{name: "admin API not served", do: func() (int, apiResponse) { return post("/admin/tsdb/delete_series", url.Values{"match[]": {"up"}}) }, code: 404},
		{name: "remote write not served", do: func() (int, apiResponse) { return post("/write", nil) }, code: 404},
		{name: "targets without application scraping: none", do: func() (int, apiResponse) { return get("/targets") }, code: 200, dataHas: `"activeTargets":[]`},
		{name: "config not served", do: func() (int, apiResponse) { return get("/status/config") }, code: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, r := tc.do()
			if code != tc.code {
				t.Fatalf("status %d, want %d (%s %s %.200s)", code, tc.code, r.ErrorType, r.Error, r.Data)
			}
			if tc.errType != "" && (r.Status != "error" || r.ErrorType != tc.errType) {
				t.Fatalf("error body %+v, want errorType %s", r, tc.errType)
			}
			if !strings.Contains(r.Error, tc.errorHas) {
				t.Fatalf("error %q lacks %q", r.Error, tc.errorHas)
			}
			if !strings.Contains(string(r.Data), tc.dataHas) {
				t.Fatalf("data %s lacks %s", r.Data, tc.dataHas)
			}
			if strings.Contains(string(r.Data), `"features"`) {
				t.Fatalf("response carries a features map (Grafana would take kmetrics for Mimir): %s", r.Data)
			}
		})
	}
}
