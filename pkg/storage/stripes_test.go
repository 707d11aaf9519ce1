package storage

import "testing"

func TestHeadStripeSize(t *testing.T) {
	for _, tc := range []struct{ procs, want int }{
		{1, 1024}, {2, 1024}, {3, 2048}, {4, 2048}, {8, 4096}, {32, 16384}, {64, 16384}, {1000, 16384},
	} {
		if got := headStripeSize(tc.procs); got != tc.want {
			t.Errorf("%d cores: %d stripes, want %d", tc.procs, got, tc.want)
		}
	}
}
