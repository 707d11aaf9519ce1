// Package failing fails on purpose, the way the e2e suite's tests fail
// (parallel tests, nested parallel subtests, cleanup logs): its output is
// what hack/test-failures.sh is tested on. It runs only when asked.
package failing

import (
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if os.Getenv("KMETRICS_FAIL_ON_PURPOSE") != "1" {
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestNode(t *testing.T) {
	t.Parallel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubelet.log:\nline 1\nline 2\nline 3\nline 4")
		}
	})
	t.Run("top", func(t *testing.T) { t.Log("window 1: fine") })
	t.Run("side by side", func(t *testing.T) {
		t.Run("history", func(t *testing.T) {
			t.Parallel()
			time.Sleep(50 * time.Millisecond)
			t.Log("the burn's peak: 0.3")
			t.Fatalf("recommendation: not true after 3m0s: target CPU 25m")
		})
		t.Run("dashboards", func(t *testing.T) {
			t.Parallel()
			t.Log("dashboards fine")
		})
	})
	t.Run("last", func(t *testing.T) { t.Log("last fine") })
}

func TestAlerts(t *testing.T) {
	t.Parallel()
	for i := 0; i < 3; i++ {
		time.Sleep(20 * time.Millisecond)
		t.Logf("step %d", i)
	}
	t.Errorf("alert not resolved\nits state: firing")
}

func TestPasses(t *testing.T) {
	t.Parallel()
	t.Log("passing output")
}
