package main

import "testing"

func TestParseBytes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"50M", 50 << 20, true}, {"50m", 50 << 20, true}, {"1G", 1 << 30, true}, {"4K", 4096, true},
		{"10B", 10, true}, {"123", 123, true},
		{"", 0, false}, {"M", 0, false}, {"-1M", 0, false}, {"1.5M", 0, false}, {"2000G", 0, false},
	} {
		got, err := parseBytes(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

// What the suite runs is accepted; what this stress does not do is refused.
func TestStressRefusesWhatItDoesNotDo(t *testing.T) {
	for _, args := range [][]string{
		{"-m", "1", "--vm-bytes", "1M", "--vm-hang", "1", "-t", "1"},
		{"-m", "0", "--vm-bytes", "1M", "--vm-hang", "0", "-t", "1"},
		{"--cpu", "1"},
		{"-m", "1", "--vm-bytes", "lots", "--vm-hang", "0"},
		{"-m", "1", "--vm-hang", "0", "extra"},
	} {
		if err := stress(args); err == nil {
			t.Errorf("stress %v: accepted", args)
		}
	}
	if err := stress([]string{"-m", "1", "--vm-bytes", "1M", "--vm-hang", "0", "-t", "1"}); err != nil {
		t.Errorf("the suite's form: %v", err)
	}
}
