package kubestate

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseAllowlist(t *testing.T) {
	tests := []struct {
		in      string
		want    Allowlist
		wantErr string
	}{
		{"", Allowlist{}, ""},
		{"pods=[app,team]", Allowlist{"pods": {"app", "team"}}, ""},
		{" pods=[ app , team ] , namespaces=[*]", Allowlist{"pods": {"app", "team"}, "namespaces": {"*"}}, ""},
		{"pods=[]", Allowlist{"pods": nil}, ""},
		{"pods=[app.kubernetes.io/*]", Allowlist{"pods": {"app.kubernetes.io/*"}}, ""},
		{"podz=[app]", nil, `unknown resource "podz"`},
		{"pods=app", nil, "want resource=[key,…]"},
		{"pods=[app", nil, "missing ]"},
		{"pods=[a*b*c]", nil, "more than 1 wildcard"},
		{"pods=[a] nodes=[b]", nil, "want , between resources"},
		{"=[a]", nil, "want resource=[key,…]"},
	}
	for _, tc := range tests {
		got, err := ParseAllowlist(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want one saying %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if len(got) == 0 && len(tc.want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
}

// Keys become label names exactly as kube-state-metrics makes them.
func TestMapLabels(t *testing.T) {
	in := map[string]string{"app.kubernetes.io/name": "web", "team": "shop", "fooBar": "1", "foo_bar": "2", "foo-bar": "3", "other": "x"}
	all := Allowlist{"pods": {"*"}}.matcher("pods")
	got := all.mapLabels("label", in)
	want := []string{
		"label_app_kubernetes_io_name", "web",
		"label_foo_bar_conflict1", "3", // foo-bar, foo_bar and fooBar all sanitize to foo_bar: sorted keys, numbered
		"label_foo_bar_conflict2", "1",
		"label_foo_bar_conflict3", "2",
		"label_other", "x",
		"label_team", "shop",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	some := Allowlist{"pods": {"team", "app.kubernetes.io/*", "*"}}.matcher("pods")
	if got := some.mapLabels("label", in); !reflect.DeepEqual(got, []string{"label_app_kubernetes_io_name", "web", "label_team", "shop"}) {
		t.Errorf("exact and prefix keys (a later bare * ignored, as kube-state-metrics does): %v", got)
	}
	if got := (Allowlist{}).matcher("pods").mapLabels("label", in); got != nil {
		t.Errorf("no allowlist: %v, want no labels", got)
	}
}

// The flag is operator input; no value may panic, and an accepted one must
// be usable.
func FuzzParseAllowlist(f *testing.F) {
	for _, s := range []string{"pods=[app,team],namespaces=[*]", "pods=[a*]", "", "pods=[", "nodes=[x],", "pods=[]]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAllowlist(s)
		if err != nil {
			return
		}
		for r := range a {
			if !IsResource(r) {
				t.Fatalf("%q accepted unknown resource %q", s, r)
			}
			a.matcher(r).mapLabels("label", map[string]string{"k": "v", "app": "x"})
		}
	})
}
