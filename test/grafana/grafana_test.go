// Package grafana runs Grafana's own Prometheus data source code (promlib,
// what Grafana's backend uses for every panel, alert and variable) against a
// running kmetrics. test/e2e runs it with the environment below; alone it
// skips.
//
//	KMETRICS_PROM_URL  the data source URL, https://<kmetrics>/prometheus
//	KMETRICS_CA        PEM file of the CA that signed kmetrics' certificate
//	KMETRICS_TOKEN     a bearer token allowed the query API
//	KMETRICS_FORWARD_OAUTH=1  the data source has "Forward OAuth identity"
//	                   on and no token of its own: KMETRICS_TOKEN is the
//	                   signed-in user's, which Grafana forwards per request
//	KMETRICS_EXPR      an expression whose value is KMETRICS_WANT (±10%)
package grafana

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	sdkhttpclient "github.com/grafana/grafana-plugin-sdk-go/backend/httpclient"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana/pkg/promlib"
)

type env struct {
	url, ca, token, expr string
	want                 float64
	// forwardOAuth: the token is the signed-in user's (oauthPassThru), not
	// the data source's.
	forwardOAuth bool
}

func readEnv(t *testing.T) env {
	e := env{url: os.Getenv("KMETRICS_PROM_URL"), token: os.Getenv("KMETRICS_TOKEN"), expr: os.Getenv("KMETRICS_EXPR"), forwardOAuth: os.Getenv("KMETRICS_FORWARD_OAUTH") == "1"}
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
// deploy/grafana: CA-verified TLS and a bearer token header, or with
// forwardOAuth the "Forward OAuth identity" switch (oauthPassThru) and no
// credential of its own.
func dataSource(e env, uid, method string) backend.PluginContext {
	settings := map[string]any{"httpMethod": method, "tlsAuthWithCACert": true, "timeInterval": "10s"}
	secure := map[string]string{"tlsCACert": e.ca}
	if e.forwardOAuth {
		settings["oauthPassThru"] = true
	} else {
		settings["httpHeaderName1"] = "Authorization"
		secure["httpHeaderValue1"] = "Bearer " + e.token
	}
	jsonData, _ := json.Marshal(settings)
	return backend.PluginContext{
		OrgID:         1,
		PluginID:      "prometheus",
		GrafanaConfig: backend.NewGrafanaCfg(map[string]string{}),
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			ID: 1, UID: uid, Type: "prometheus", Name: "kmetrics", URL: e.url, JSONData: jsonData,
			DecryptedSecureJSONData: secure,
			Updated:                 time.Now(),
		},
	}
}

func TestGrafanaDataSource(t *testing.T) {
	e := readEnv(t)
	ctx := context.Background()
	svc := promlib.NewService(sdkhttpclient.NewProvider(), backend.NewLoggerWith("logger", "promlib"), forwardHeaders(e))

	for _, method := range []string{"POST", "GET"} {
		pctx := dataSource(e, "kmetrics-"+strings.ToLower(method), method)
		t.Run(method+"/save and test", func(t *testing.T) {
			req := &backend.CheckHealthRequest{PluginContext: pctx}
			res, err := svc.CheckHealth(signedIn(ctx, e, req), req)
			if err != nil || res.Status != backend.HealthStatusOk {
				t.Fatalf("health check: %v %+v", err, res)
			}
		})
		for _, kind := range []string{"instant", "range"} {
			t.Run(method+"/"+kind+" panel query", func(t *testing.T) {
				end := time.Now()
				q, _ := json.Marshal(map[string]any{"refId": "A", "expr": e.expr, "instant": kind == "instant", "range": kind == "range", "interval": "10s"})
				req := &backend.QueryDataRequest{PluginContext: pctx, Queries: []backend.DataQuery{{
					RefID: "A", JSON: q, Interval: 10 * time.Second, MaxDataPoints: 100,
					TimeRange: backend.TimeRange{From: end.Add(-3 * time.Minute), To: end},
				}}}
				resp, err := svc.QueryData(signedIn(ctx, e, req), req)
				if err != nil {
					t.Fatal(err)
				}
				checkValue(t, resp.Responses["A"], e.want)
			})
		}
		t.Run(method+"/alerting query", func(t *testing.T) {
			end := time.Now()
			q, _ := json.Marshal(map[string]any{"refId": "B", "expr": e.expr, "instant": true})
			req := &backend.QueryDataRequest{
				PluginContext: pctx,
				Headers:       map[string]string{"FromAlert": "true"},
				Queries:       []backend.DataQuery{{RefID: "B", JSON: q, TimeRange: backend.TimeRange{From: end.Add(-time.Minute), To: end}}},
			}
			resp, err := svc.QueryData(signedIn(ctx, e, req), req)
			if err != nil {
				t.Fatal(err)
			}
			checkValue(t, resp.Responses["B"], e.want)
		})
		for _, path := range []string{"api/v1/labels", "api/v1/label/__name__/values", "api/v1/series?match%5B%5D=up", "api/v1/metadata?limit=40000"} {
			t.Run(method+"/resource "+path, func(t *testing.T) {
				var got *backend.CallResourceResponse
				req := &backend.CallResourceRequest{PluginContext: pctx, Path: strings.Split(path, "?")[0], Method: "GET", URL: path}
				err := svc.CallResource(signedIn(ctx, e, req), req,
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

// forwardHeaders is the data source's HTTP client option for "Forward OAuth
// identity": forward the headers Grafana hands each request
// (ForwardHTTPHeaders, set through promlib's own extension point as
// Grafana's external Prometheus plugin sets it).
func forwardHeaders(e env) promlib.ExtendOptions {
	if !e.forwardOAuth {
		return nil
	}
	return func(_ context.Context, _ backend.DataSourceInstanceSettings, opts *sdkhttpclient.Options, _ log.Logger) error {
		opts.ForwardHTTPHeaders = true
		return nil
	}
}

// signedIn is what Grafana does with a request of a signed-in user when the
// data source forwards OAuth identity: the user's token on the request
// (backend.OAuthIdentityTokenHeaderName), and the SDK's header middleware
// (unexported; the plugin server installs it) copying the request's headers
// onto the data source's outgoing HTTP requests. Without forwardOAuth the
// request goes as it is.
func signedIn(ctx context.Context, e env, req backend.ForwardHTTPHeaders) context.Context {
	if !e.forwardOAuth {
		return ctx
	}
	req.SetHTTPHeader(backend.OAuthIdentityTokenHeaderName, "Bearer "+e.token)
	headers := req.GetHTTPHeaders()
	return sdkhttpclient.WithContextualMiddleware(ctx, sdkhttpclient.MiddlewareFunc(func(opts sdkhttpclient.Options, next http.RoundTripper) http.RoundTripper {
		if !opts.ForwardHTTPHeaders {
			return next
		}
		return sdkhttpclient.RoundTripperFunc(func(r *http.Request) (*http.Response, error) {
			for k, v := range headers {
				if r.Header.Get(k) == "" {
					r.Header[k] = v
				}
			}
			return next.RoundTrip(r)
		})
	}))
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
