package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/cache"
)

// An operator's mistake in a cluster-state flag stops kmetrics with the
// flag's name and what is wrong, before anything starts.
func TestClusterStateFlags(t *testing.T) {
	tests := []struct {
		name    string
		set     func(o *options)
		wantErr string
	}{
		{"defaults", func(o *options) {}, ""},
		{"kube-state-metrics' syntax", func(o *options) {
			o.clusterStateResources = []string{"pods", "secrets"}
			o.clusterStateLabels = "pods=[app,team],namespaces=[*]"
			o.clusterStateDenylist = "kube_secret_.*"
		}, ""},
		{"unknown resource", func(o *options) { o.clusterStateResources = []string{"podz"} }, `--cluster-state.resources: unknown resource "podz"`},
		{"allowlist of an unknown resource", func(o *options) { o.clusterStateLabels = "podz=[app]" }, "--cluster-state.metric-labels-allowlist"},
		{"allowlist without brackets", func(o *options) { o.clusterStateAnnotations = "pods=app" }, "--cluster-state.metric-annotations-allowlist"},
		{"invalid denylist", func(o *options) { o.clusterStateDenylist = "kube_(pod" }, "--cluster-state.metric-denylist"},
		{"invalid allowlist", func(o *options) { o.clusterStateAllowlist = "kube_[pod" }, "--cluster-state.metric-allowlist"},
		{"interval too short", func(o *options) { o.clusterStateInterval = time.Second }, "--cluster-state.interval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newOptions()
			tc.set(o)
			_, err := o.kubeStateConfig()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			found := false
			for _, e := range o.validate() {
				found = found || strings.Contains(e.Error(), tc.wantErr)
			}
			if !found {
				t.Errorf("validate() does not report it")
			}
		})
	}
}

// A resource the role does not let kmetrics list never syncs: after the
// timeout the others are written anyway (true), and a stop ends the wait
// (false) instead of blocking shutdown.
func TestWaitForCachesDoesNotWaitForever(t *testing.T) {
	never := func() bool { return false }
	c := &clusterState{synced: map[string]cache.InformerSynced{"pods": func() bool { return true }, "secrets": never}, syncTimeout: 50 * time.Millisecond}
	if !c.waitForCaches(context.Background()) {
		t.Error("an unlistable resource held the others back")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.syncTimeout = time.Hour
	if c.waitForCaches(ctx) {
		t.Error("a stopped context did not end the wait")
	}
}
