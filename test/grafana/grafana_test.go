// Package grafana runs Grafana's own Prometheus data source code (promlib,
// what Grafana's backend uses for every panel, alert and variable) against a
// running kmetrics. test/e2e runs it with the environment below; alone it
// skips.
//
//	KMETRICS_PROM_URL  the data source URL, https://<kmetrics>/prometheus
//	KMETRICS_CA        PEM file of the CA that signed kmetrics' certificate
//	KMETRICS_TOKEN     a bearer token allowed the query API
//	KMETRICS_EXPR      an expression whose value is KMETRICS_WANT (±10%)
package grafana

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	sdkhttpclient "github.com/grafana/grafana-plugin-sdk-go/backend/httpclient"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana/pkg/promlib"
)

type env struct {
	url, ca, token, expr string
	want                 float64
}

func readEnv(t *testing.T) env {
	e := env{url: os.Getenv("KMETRICS_PROM_URL"), token: os.Getenv("KMETRICS_TOKEN"), expr: os.Getenv("KMETRICS_EXPR")}
	if e.url == "" {
		t.Skip("KMETRICS_PROM_URL not set: run through test/e2e")
	}
	ca, err := os.ReadFile(os.Getenv("KMETRICS_CA"))
	if err != nil {
		t.Fatal(err)
	}
	e.ca = string(ca)
	if e.want, err = strconv.ParseFloat(os.Getenv("KMETRICS_WANT"), 64); err != nil {
		t.Fatal(err)
	}
	return e
}

// dataSource is a Grafana Prometheus data source as provisioned from
// deploy/grafana: CA-verified TLS and a bearer token header.
func dataSource(e env, uid, method string) backend.PluginContext {
	jsonData, _ := json.Marshal(map[string]any{
		"httpMethod": method, "tlsAuthWithCACert": true, "httpHeaderName1": "Authorization", "timeInterval": "10s",
	})
	return backend.PluginContext{
		OrgID:         1,
		PluginID:      "prometheus",
		GrafanaConfig: backend.NewGrafanaCfg(map[string]string{}),
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			ID: 1, UID: uid, Type: "prometheus", Name: "kmetrics", URL: e.url, JSONData: jsonData,
			DecryptedSecureJSONData: map[string]string{"tlsCACert": e.ca, "httpHeaderValue1": "Bearer " + e.token},
			Updated:                 time.Now(),
		},
	}
}

func TestGrafanaDataSource(t *testing.T) {
	e := readEnv(t)
	ctx := context.Background()
	svc := promlib.NewService(sdkhttpclient.NewProvider(), backend.NewLoggerWith("logger", "promlib"), nil)

	for _, method := range []string{"POST", "GET"} {
		pctx := dataSource(e, "kmetrics-"+strings.ToLower(method), method)
		t.Run(method+"/save and test", func(t *testing.T) {
			res, err := svc.CheckHealth(ctx, &backend.CheckHealthRequest{PluginContext: pctx})
			if err != nil || res.Status != backend.HealthStatusOk {
				t.Fatalf("health check: %v %+v", err, res)
			}
		})
		for _, kind := range []string{"instant", "range"} {
			t.Run(method+"/"+kind+" panel query", func(t *testing.T) {
				end := time.Now()
				q, _ := json.Marshal(map[string]any{"refId": "A", "expr": e.expr, "instant": kind == "instant", "range": kind == "range", "interval": "10s"})
				resp, err := svc.QueryData(ctx, &backend.QueryDataRequest{PluginContext: pctx, Queries: []backend.DataQuery{{
					RefID: "A", JSON: q, Interval: 10 * time.Second, MaxDataPoints: 100,
					TimeRange: backend.TimeRange{From: end.Add(-3 * time.Minute), To: end},
				}}})
				if err != nil {
					t.Fatal(err)
				}
				checkValue(t, resp.Responses["A"], e.want)
			})
		}
		t.Run(method+"/alerting query", func(t *testing.T) {
			end := time.Now()
			q, _ := json.Marshal(map[string]any{"refId": "B", "expr": e.expr, "instant": true})
			resp, err := svc.QueryData(ctx, &backend.QueryDataRequest{
				PluginContext: pctx,
				Headers:       map[string]string{"FromAlert": "true"},
				Queries:       []backend.DataQuery{{RefID: "B", JSON: q, TimeRange: backend.TimeRange{From: end.Add(-time.Minute), To: end}}},
			})
			if err != nil {
				t.Fatal(err)
			}
			checkValue(t, resp.Responses["B"], e.want)
		})
		for _, path := range []string{"api/v1/labels", "api/v1/label/__name__/values", "api/v1/series?match%5B%5D=up", "api/v1/metadata?limit=40000"} {
			t.Run(method+"/resource "+path, func(t *testing.T) {
				var got *backend.CallResourceResponse
				err := svc.CallResource(ctx, &backend.CallResourceRequest{PluginContext: pctx, Path: strings.Split(path, "?")[0], Method: "GET", URL: path},
					backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { got = r; return nil }))
				if err != nil || got == nil || got.Status != 200 {
					t.Fatalf("%v %+v", err, got)
				}
				var body struct {
					Status string          `json:"status"`
					Data   json.RawMessage `json:"data"`
				}
				if err := json.Unmarshal(got.Body, &body); err != nil || body.Status != "success" {
					t.Fatalf("%v %.300s", err, got.Body)
				}
				if path != "api/v1/metadata?limit=40000" && len(body.Data) < 10 {
					t.Fatalf("empty answer: %s", body.Data)
				}
			})
		}
	}
}

// checkValue wants the last value of every frame within 10% of want.
func checkValue(t *testing.T, dr backend.DataResponse, want float64) {
	t.Helper()
	if dr.Error != nil {
		t.Fatalf("query error: %v", dr.Error)
	}
	if len(dr.Frames) == 0 {
		t.Fatal("no frames")
	}
	for _, f := range dr.Frames {
		v, err := lastFloat(f)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(v-want) > 0.1*want {
			t.Errorf("frame %q: %v, want %v", f.Name, v, want)
		}
	}
}

func lastFloat(f *data.Frame) (float64, error) {
	for _, field := range f.Fields {
		if field.Type() == data.FieldTypeFloat64 || field.Type() == data.FieldTypeNullableFloat64 {
			if field.Len() == 0 {
				return 0, fmt.Errorf("empty field")
			}
			v, ok := field.ConcreteAt(field.Len() - 1)
			if !ok {
				return 0, fmt.Errorf("null last value")
			}
			return v.(float64), nil
		}
	}
	return 0, fmt.Errorf("no float field in %q", f.Name)
}
