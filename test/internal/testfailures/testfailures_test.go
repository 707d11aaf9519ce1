// Package testfailures tests hack/test-failures.sh, which make e2e runs on
// a failure, on what go test -v really prints for failing tests.
package testfailures

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDigest(t *testing.T) {
	log := filepath.Join(t.TempDir(), "e2e.log")
	run := exec.Command("go", "test", "-count=1", "-v", "./testdata/failing")
	run.Env = append(os.Environ(), "KMETRICS_FAIL_ON_PURPOSE=1")
	out, err := run.CombinedOutput()
	if err == nil {
		t.Fatalf("the failing package passed:\n%s", out)
	}
	if err := os.WriteFile(log, out, 0o644); err != nil {
		t.Fatal(err)
	}
	digest, err := exec.Command("bash", "../../../hack/test-failures.sh", log).Output()
	if err != nil {
		t.Fatalf("test-failures.sh: %v", err)
	}
	got := string(digest)
	t.Logf("digest:\n%s", got)

	// Each failed test once, innermost first, with its messages; a
	// parent that wrote nothing is left out.
	var failed []string
	for _, l := range strings.Split(got, "\n") {
		if name, ok := strings.CutPrefix(l, "--- FAIL: "); ok {
			failed = append(failed, name)
		}
	}
	if want := []string{"TestNode/side_by_side/history", "TestNode", "TestAlerts"}; strings.Join(failed, " ") != strings.Join(want, " ") {
		t.Errorf("failed tests %q, want %q", failed, want)
	}
	for _, want := range []string{
		"recommendation: not true after 3m0s: target CPU 25m",
		"the burn's peak: 0.3",
		"kubelet.log:\n        line 1\n        line 2\n        line 3\n",
		"alert not resolved\n        its state: firing",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the digest lacks %q", want)
		}
	}
	for _, notWant := range []string{"line 4", "passing output", "dashboards fine", "window 1: fine", "last fine"} {
		if strings.Contains(got, notWant) {
			t.Errorf("the digest has %q: only failed tests' messages, a log's first lines", notWant)
		}
	}
}

func TestNothingFailed(t *testing.T) {
	log := filepath.Join(t.TempDir(), "e2e.log")
	if err := os.WriteFile(log, []byte("=== RUN   TestA\n    a_test.go:1: fine\n--- PASS: TestA (0.00s)\nPASS\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", "../../../hack/test-failures.sh", log).Output()
	if err != nil || len(out) != 0 {
		t.Fatalf("a log without failures: %v, printed %q", err, out)
	}
}
