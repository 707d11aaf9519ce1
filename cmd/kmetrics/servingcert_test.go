package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// A careless operator's serving-certificate flags are refused before
// anything starts, each with the reason.
func TestServingCertFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--serving-cert.secret=s", "--tls-cert-file=/x.crt", "--tls-private-key-file=/x.key"}, "exclude each other"},
		{[]string{"--serving-cert.secret=s", "--serving-cert.validity=30s"}, "at least 1m"},
		{[]string{"--serving-cert.secret=s", "--serving-cert.validity=48h", "--serving-cert.ca-validity=24h"}, "at most --serving-cert.ca-validity"},
	} {
		o := newOptions()
		fs := pflag.NewFlagSet("kmetrics", pflag.ContinueOnError)
		addAll(fs, o.flags())
		if err := fs.Parse(c.args); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		var msgs []string
		for _, err := range o.validate() {
			msgs = append(msgs, err.Error())
		}
		if !strings.Contains(strings.Join(msgs, "; "), c.want) {
			t.Errorf("%v: errors %q, want one saying %q", c.args, msgs, c.want)
		}
	}
	o := newOptions()
	fs := pflag.NewFlagSet("kmetrics", pflag.ContinueOnError)
	addAll(fs, o.flags())
	_ = fs.Parse([]string{"--serving-cert.secret=kmetrics-serving"})
	if errs := o.validate(); len(errs) > 0 {
		t.Errorf("the shipped flags are refused: %v", errs)
	}
}
