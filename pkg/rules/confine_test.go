package rules

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// A team's rules (written with its namespace label, as the operator
// package writes PrometheusRules) try every way to copy the victim
// namespace's series into their own; the platform's file beside them reads
// everything.
const teamRules = `
groups:
- name: steal
  interval: 100ms
  rules:
  - record: stolen:direct
    expr: secret_value{namespace="victim"}
    labels: {namespace: team}
  - record: stolen:regex
    expr: sum(secret_value{namespace=~".+"})
    labels: {namespace: team}
  - record: stolen:negated
    expr: sum(secret_value{namespace!="team"}) or vector(0)
    labels: {namespace: team}
  - record: stolen:relabelled
    expr: label_replace(secret_value, "namespace", "team", "namespace", ".*")
    labels: {namespace: team}
  - record: stolen:absent
    expr: absent(secret_value{namespace="victim"})
    labels: {namespace: team}
  - record: stolen:subquery_at
    expr: max_over_time(secret_value{namespace="victim"}[1m:10s] @ end())
    labels: {namespace: team}
  - record: own:sum
    expr: sum(secret_value)
    labels: {namespace: team}
  - alert: StealByTemplate
    expr: vector(1)
    labels: {namespace: team}
    annotations: {leak: '{{ with query "secret_value{namespace=\"victim\"}" }}{{ . | first | value }}{{ else }}none{{ end }}'}
`

const platformRules = `
groups:
- name: platform
  interval: 100ms
  rules:
  - record: platform:sum
    expr: sum(secret_value)
`

func TestConfinedRulesReadOnlyTheirNamespace(t *testing.T) {
	constant := func(v float64) func(time.Time) float64 { return func(time.Time) float64 { return v } }
	db := testDB(t, time.Now(),
		testSeries{labels.FromStrings("__name__", "secret_value", "namespace", "victim"), constant(42)},
		testSeries{labels.FromStrings("__name__", "secret_value", "namespace", "team"), constant(1)})
	teamDir, platformDir := t.TempDir(), t.TempDir()
	for path, content := range map[string]string{filepath.Join(teamDir, "team_steal.yaml"): teamRules, filepath.Join(platformDir, "platform.yaml"): platformRules} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	confine := func(file string) (string, bool) {
		if filepath.Dir(file) != teamDir {
			return "", false
		}
		ns, _, _ := strings.Cut(filepath.Base(file), "_")
		return ns, true
	}
	ev, err := New(Config{Files: []string{filepath.Join(teamDir, "*.yaml"), filepath.Join(platformDir, "*.yaml")}, Interval: time.Second,
		QueryTimeout: 10 * time.Second, MaxSamples: 1e6, Confine: confine}, db.TSDB(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ev.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	values := func(name string) []float64 {
		q, _ := db.Querier(0, time.Now().Add(time.Hour).UnixMilli())
		defer q.Close()
		var out []float64
		set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", name))
		for set.Next() {
			if ns := set.At().Labels().Get("namespace"); ns != "team" && !strings.HasPrefix(name, "platform:") {
				t.Errorf("%s written into namespace %q", set.At().Labels(), ns)
			}
			it := set.At().Iterator(nil)
			for it.Next() == chunkenc.ValFloat {
				_, v := it.At()
				out = append(out, v)
			}
		}
		return out
	}
	waitFor(t, "both files' rules to be evaluated", func() bool {
		return len(values("own:sum")) > 0 && len(values("platform:sum")) > 0 && len(values("stolen:absent")) > 0
	})
	for _, v := range values("platform:sum") {
		if v != 43 {
			t.Errorf("the platform's rule read %v, want 43 (every namespace)", v)
		}
	}
	for _, v := range values("own:sum") {
		if v != 1 {
			t.Errorf("the team's rule read %v of its own namespace, want 1", v)
		}
	}
	for _, name := range []string{"stolen:direct", "stolen:regex", "stolen:negated", "stolen:relabelled", "stolen:subquery_at"} {
		for _, v := range values(name) {
			if v == 42 || v == 43 {
				t.Errorf("%s read the victim's value %v", name, v)
			}
		}
	}
	// absent() of the victim's series is 1: they do not exist for the team.
	for _, v := range values("stolen:absent") {
		if v != 1 {
			t.Errorf("absent(victim) = %v: the victim's series exist for the team", v)
		}
	}
	waitFor(t, "the alert", func() bool {
		for _, r := range ev.AlertingRules() {
			if len(r.ActiveAlerts()) > 0 {
				return true
			}
		}
		return false
	})
	for _, r := range ev.AlertingRules() {
		for _, a := range r.ActiveAlerts() {
			if leak := a.Annotations.Get("leak"); leak != "none" {
				t.Errorf("a template's query read %q of the victim", leak)
			}
		}
	}
}
