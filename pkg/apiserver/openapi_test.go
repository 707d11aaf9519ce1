package apiserver

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/kube-openapi/pkg/validation/spec"
)

// TestServedDefinitionsLeaveOutUnusedKubernetesModels: the models kept for
// the process' life are the served groups', apimachinery's and what they
// refer to — not all of core/v1.
func TestServedDefinitionsLeaveOutUnusedKubernetesModels(t *testing.T) {
	defs := servedDefinitions()(func(path string) spec.Ref { return spec.MustCreateRef("#/definitions/" + path) })
	for _, want := range []string{"io.k8s.api.core.v1.ObjectReference", "io.k8s.metrics.pkg.apis.custom_metrics.v1beta2.MetricValue", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "io.k8s.metrics.pkg.apis.metrics.v1.NodeMetrics"} {
		if _, ok := defs[want]; !ok {
			t.Errorf("no %s", want)
		}
	}
	for _, unused := range []string{"io.k8s.api.core.v1.PodSpec", "io.k8s.api.core.v1.ISCSIPersistentVolumeSource", "io.k8s.api.core.v1.NodeList"} {
		if _, ok := defs[unused]; ok {
			t.Errorf("%s kept", unused)
		}
	}
	t.Logf("%d models kept", len(defs))
}

// TestOpenAPIServesEveryGroup: the aggregator and kubectl read kmetrics'
// OpenAPI (v2 whole, v3 per group version); every served kind's model is
// there, with the models it refers to, and every v3 document builds.
func TestOpenAPIServesEveryGroup(t *testing.T) {
	s := startCustomServer(t).srv
	code, body := s.get(t, "/openapi/v2", "application/json")
	if code != 200 {
		t.Fatalf("/openapi/v2: %d %.300s", code, body)
	}
	var v2 struct {
		Definitions map[string]json.RawMessage `json:"definitions"`
	}
	if err := json.Unmarshal(body, &v2); err != nil {
		t.Fatal(err)
	}
	for _, model := range []string{
		"io.k8s.metrics.pkg.apis.metrics.v1.NodeMetrics", "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetricsList",
		"io.k8s.metrics.pkg.apis.custom_metrics.v1beta2.MetricValueList", "io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValueList",
		// Referred to by a MetricValue (describedObject) and every list.
		"io.k8s.api.core.v1.ObjectReference", "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
	} {
		if _, ok := v2.Definitions[model]; !ok {
			t.Errorf("/openapi/v2 has no %s", model)
		}
	}

	code, body = s.get(t, "/openapi/v3", "application/json")
	if code != 200 {
		t.Fatalf("/openapi/v3: %d %.300s", code, body)
	}
	var v3 struct {
		Paths map[string]struct {
			URL string `json:"serverRelativeURL"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(body, &v3); err != nil {
		t.Fatal(err)
	}
	groups := 0
	for path, p := range v3.Paths {
		if !strings.Contains(path, "metrics.k8s.io/") {
			continue
		}
		groups++
		if code, body := s.get(t, p.URL, "application/json"); code != 200 || !strings.Contains(string(body), `"schemas"`) {
			t.Errorf("%s: %d %.300s", p.URL, code, body)
		}
	}
	// metrics v1 and v1beta1, custom v1beta1 and v1beta2, external v1beta1.
	if groups != 5 {
		t.Errorf("/openapi/v3 lists %d metrics group versions, want 5: %v", groups, v3.Paths)
	}
}
