package main

import (
	"strings"
	"testing"
)

// TestSelfMetricsIntervalValidated: an operator's --self-metrics-interval
// below 10s (or 0, or negative) is refused with the flag's name, as
// --metric-resolution is; the default passes.
func TestSelfMetricsIntervalValidated(t *testing.T) {
	for _, tc := range []struct {
		arg     string
		refused bool
	}{{"30s", false}, {"10s", false}, {"2m", false}, {"9s", true}, {"0s", true}, {"-30s", true}} {
		o := newOptions()
		fss := o.flags()
		fs := fss.FlagSet("kmetrics")
		if err := fs.Parse([]string{"--self-metrics-interval=" + tc.arg}); err != nil {
			t.Fatalf("%s: %v", tc.arg, err)
		}
		var named bool
		for _, err := range o.validate() {
			named = named || strings.Contains(err.Error(), "--self-metrics-interval")
		}
		if named != tc.refused {
			t.Errorf("--self-metrics-interval=%s: refused %v, want %v (%v)", tc.arg, named, tc.refused, o.validate())
		}
	}
}
