// Command keda-prometheus runs KEDA's Prometheus scaler, unchanged, from
// github.com/kedacore/keda/v2 (v2.21.0: the newest that builds with this
// machine's Go) once against a Prometheus API, with bearer authentication
// and a CA as a ScaledObject's TriggerAuthentication gives them, and prints
// what KEDA would act on as JSON: the metric value and the activation, or
// the scaler's error. test/e2e's TestKEDAPrometheusScaler runs it against
// kmetrics (hack/build-keda.sh builds it).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kedacore/keda/v2/pkg/scalers"
	"github.com/kedacore/keda/v2/pkg/scalers/scalersconfig"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

type result struct {
	Value  *float64 `json:"value,omitempty"`
	Active bool     `json:"active"`
	Error  string   `json:"error,omitempty"`
}

func main() {
	server := flag.String("server", "", "serverAddress of the trigger")
	query := flag.String("query", "", "the trigger's query")
	threshold := flag.String("threshold", "1", "the trigger's threshold")
	activation := flag.String("activation-threshold", "0", "the trigger's activationThreshold")
	tokenFile := flag.String("bearer-token-file", "", "bearer token (authModes: bearer)")
	caFile := flag.String("ca-file", "", "CA of the server (the TriggerAuthentication's ca)")
	flag.Parse()

	token, err := os.ReadFile(*tokenFile)
	if err != nil {
		fail(err)
	}
	ca, err := os.ReadFile(*caFile)
	if err != nil {
		fail(err)
	}
	cfg := &scalersconfig.ScalerConfig{
		TriggerType: "prometheus",
		TriggerMetadata: map[string]string{
			"serverAddress": *server, "query": *query, "threshold": *threshold,
			"activationThreshold": *activation, "authModes": "bearer",
		},
		AuthParams:        map[string]string{"bearerToken": strings.TrimSpace(string(token)), "ca": string(ca)},
		GlobalHTTPTimeout: 10 * time.Second,
		MetricType:        autoscalingv2.AverageValueMetricType,
	}
	out := result{}
	s, err := scalers.NewPrometheusScaler(cfg)
	if err == nil {
		values, active, gerr := s.GetMetricsAndActivity(context.Background(), "s0-prometheus")
		err = gerr
		out.Active = active
		if gerr == nil && len(values) == 1 {
			v := values[0].Value.AsApproximateFloat64()
			out.Value = &v
		}
	}
	if err != nil {
		out.Error = err.Error()
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "keda-prometheus:", err)
	os.Exit(2)
}
