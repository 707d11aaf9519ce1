package provider

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// A request for a metric the resource does not have names the nearest ones
// first: with more metrics than the message holds, the one meant is there.
func TestMetricsForNearestFirst(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	c := &catalog{}
	for i := range 30 {
		c.customList = append(c.customList, cmprovider.CustomMetricInfo{GroupResource: pods, Metric: fmt.Sprintf("a_metric_%02d", i)})
	}
	c.customList = append(c.customList,
		cmprovider.CustomMetricInfo{GroupResource: pods, Metric: "http_requests"},
		cmprovider.CustomMetricInfo{GroupResource: schema.GroupResource{Resource: "nodes"}, Metric: "http_request"})

	tests := []struct {
		asked string
		first []string
	}{
		{"http_request", []string{"http_requests"}},            // the node's http_request is not a pod's
		{"htp_requests", []string{"http_requests"}},            // a letter left out
		{"a_metric_07", []string{"a_metric_07"}},               // exact (but asked of another source)
		{"a_metric_1", []string{"a_metric_01", "a_metric_10"}}, // ties by name
	}
	for _, tc := range tests {
		got := c.metricsFor(pods, tc.asked, 10)
		if len(got) != 11 || got[10] != "…" {
			t.Fatalf("%s: %d names %v, want 10 and …", tc.asked, len(got), got)
		}
		if !slices.Equal(got[:len(tc.first)], tc.first) {
			t.Errorf("%s: %v, want it to start with %v", tc.asked, got, tc.first)
		}
	}
	if got := c.metricsFor(schema.GroupResource{Resource: "nodes"}, "x", 10); !slices.Equal(got, []string{"http_request"}) {
		t.Errorf("nodes: %v", got)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "abc", 3}, {"abc", "", 3}, {"http_request", "http_requests", 1},
		{"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"same", "same", 0},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// A megabyte of name (a hostile caller's path) is compared by its first
// maxAskedLen bytes only: the order is that of its prefix (compared whole,
// the y's of its tail would put the y name first).
func TestMetricsForLongName(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	xs, ys := strings.Repeat("x", maxAskedLen), strings.Repeat("y", 300)
	c := &catalog{customList: []cmprovider.CustomMetricInfo{{GroupResource: pods, Metric: xs}, {GroupResource: pods, Metric: ys}}}
	got := c.metricsFor(pods, xs+strings.Repeat("y", 1<<20), 10)
	if !slices.Equal(got, []string{xs, ys}) {
		t.Errorf("got %d names, the first %.20q, want the x name first", len(got), got[0])
	}
}
