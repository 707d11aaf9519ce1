package promoperator

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"github.com/kmetrics/kmetrics/pkg/appscrape"
)

type fakeSink struct {
	mu   sync.Mutex
	jobs []appscrape.Job
	sets int
}

func (s *fakeSink) SetJobs(_ string, jobs []appscrape.Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs, s.sets = jobs, s.sets+1
	return nil
}

func (s *fakeSink) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, j := range s.jobs {
		out = append(out, j.Config.JobName+"@"+j.Tenant)
	}
	return out
}

func object(kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "monitoring.coreos.com/v1", "kind": kind,
		"metadata": map[string]any{"namespace": ns, "name": name}, "spec": spec,
	}}
}

// The controller end to end over a fake API: monitors become jobs charged
// to their namespace, a broken one is reported and left out, rules become
// files, an invalid rule is reported, a deleted rule's file goes.
func TestControllerSync(t *testing.T) {
	gvr := func(r string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: r}
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		gvr("servicemonitors"): "ServiceMonitorList", gvr("podmonitors"): "PodMonitorList", gvr("prometheusrules"): "PrometheusRuleList",
	},
		object("ServiceMonitor", "shop", "cart", map[string]any{"selector": map[string]any{}, "endpoints": []any{map[string]any{"port": "web"}}}),
		object("ServiceMonitor", "shop", "broken", map[string]any{"selector": map[string]any{},
			"endpoints": []any{map[string]any{"port": "web", "bearerTokenSecret": map[string]any{"name": "nope", "key": "token"}}}}),
		object("ServiceMonitor", "monitoring", "kmetrics", map[string]any{"selector": map[string]any{}, "endpoints": []any{map[string]any{"port": "https"}}}),
		object("PodMonitor", "batch", "workers", map[string]any{"selector": map[string]any{}, "podMetricsEndpoints": []any{map[string]any{"port": "metrics"}}}),
		object("PrometheusRule", "shop", "good", map[string]any{"groups": []any{map[string]any{"name": "g",
			"rules": []any{map[string]any{"record": "a:b", "expr": "sum(up)"}}}}}),
		object("PrometheusRule", "shop", "bad", map[string]any{"groups": []any{map[string]any{"name": "g",
			"rules": []any{map[string]any{"record": "a:b", "expr": "sum(up"}}}}}),
	)
	disc := &fakediscovery.FakeDiscovery{Fake: &k8stesting.Fake{Resources: []*metav1.APIResourceList{{
		GroupVersion: "monitoring.coreos.com/v1",
		APIResources: []metav1.APIResource{{Name: "servicemonitors"}, {Name: "podmonitors"}, {Name: "prometheusrules"}},
	}}}}
	sink := &fakeSink{}
	recorder := record.NewFakeRecorder(10)
	dir := t.TempDir()
	c, err := New(Config{Defaults: testDefaults, RuleDir: dir, IgnoredMonitors: []string{"monitoring/kmetrics"}}, dyn, disc, testResolver().objects, sink, recorder, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)

	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("the monitors' jobs", func() bool { return len(sink.names()) == 2 })
	if got := strings.Join(sink.names(), " "); got != "serviceMonitor/shop/cart/0@shop podMonitor/batch/workers/0@batch" {
		t.Errorf("jobs %s", got)
	}
	waitFor("the good rule's file", func() bool { _, err := os.Stat(filepath.Join(dir, "shop_good.yaml")); return err == nil })
	if _, err := os.Stat(filepath.Join(dir, "shop_bad.yaml")); err == nil {
		t.Error("the invalid rule was written")
	}
	var events []string
	for len(events) < 2 {
		select {
		case e := <-recorder.Events:
			events = append(events, e)
		case <-time.After(10 * time.Second):
			t.Fatalf("events: %v", events)
		}
	}
	all := strings.Join(events, "\n")
	if !strings.Contains(all, `Warning InvalidConfiguration kmetrics: endpoint 0: bearerTokenSecret: secret shop/nope`) ||
		!strings.Contains(all, "unclosed left parenthesis") {
		t.Errorf("events:\n%s", all)
	}

	if err := dyn.Resource(gvr("prometheusrules")).Namespace("shop").Delete(ctx, "good", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the deleted rule's file gone", func() bool { _, err := os.Stat(filepath.Join(dir, "shop_good.yaml")); return os.IsNotExist(err) })
	if matches, _ := filepath.Glob(RuleGlob(dir)); len(matches) != 0 {
		t.Errorf("rule files left: %v", matches)
	}
}
