package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/units"
	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// The shipped StatefulSet is what an operator runs: every flag it passes
// exists and validates, the retention fits the volume, memory is limited
// (GOMEMLIMIT follows it), liveness waits for a long WAL replay, and nothing
// turns TLS verification off.
func TestShippedStatefulSet(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/base/statefulset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var sts appsv1.StatefulSet
	if err := yaml.UnmarshalStrict(raw, &sts); err != nil {
		t.Fatal(err)
	}
	c := sts.Spec.Template.Spec.Containers[0]
	o := newOptions()
	fs := pflag.NewFlagSet("kmetrics", pflag.ContinueOnError)
	addAll(fs, o.flags())
	if err := fs.Parse(c.Args); err != nil {
		t.Fatalf("shipped args: %v", err)
	}
	for _, a := range c.Args {
		if strings.Contains(a, "insecure") {
			t.Errorf("shipped arg %q", a)
		}
	}
	retention, err := o.retentionBytes()
	if err != nil || retention <= 0 {
		t.Fatalf("--storage.tsdb.retention.size must be set: %v", err)
	}
	volume := sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().Value()
	if retention > volume*8/10 {
		t.Errorf("retention.size %s leaves less than a fifth of the %s volume for the WAL and compaction",
			units.Base2Bytes(retention), units.Base2Bytes(volume))
	}
	limit := c.Resources.Limits.Memory()
	if limit.IsZero() {
		t.Error("no memory limit: GOMEMLIMIT has nothing to follow")
	}
	p := c.StartupProbe
	if p == nil {
		t.Fatal("no startup probe: liveness could kill a replaying TSDB")
	}
	if d := time.Duration(p.PeriodSeconds*p.FailureThreshold) * time.Second; d < 10*time.Minute {
		t.Errorf("the startup probe gives up after %v", d)
	}
	if g := sts.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g < 30 {
		t.Errorf("termination grace period %v: the head snapshot needs time", g)
	}
}
