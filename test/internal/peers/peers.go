// Package peers finds the binaries of the peers and clients the tests drive
// (Prometheus, VictoriaMetrics, the VPA, KEDA, k9s, helm, node_exporter).
// make test builds them in the background while the suite already runs
// (hack/build-peers.sh), so a test that needs one waits here for its build,
// and only that test.
package peers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DirEnv names the directory hack/build-peers.sh writes into.
const DirEnv = "KMETRICS_PEERS"

// Wait is how long a test waits for a peer's build: a cold machine's
// slowest (KEDA) with the suite beside it, and then some.
const Wait = 45 * time.Minute

// ErrNotConfigured is returned when neither env nor DirEnv is set: the test
// was not started through make.
var ErrNotConfigured = errors.New("not configured")

// Binary is the path of the peer that env names: env's own value when set
// (a developer's run), else what hack/build-peers.sh wrote for it into
// $KMETRICS_PEERS, waiting up to timeout for its build. logf, if not nil,
// is told once that the wait begins.
func Binary(env string, timeout time.Duration, logf func(format string, args ...any)) (string, error) {
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	dir := os.Getenv(DirEnv)
	if dir == "" {
		return "", fmt.Errorf("%s: %w (neither it nor %s is set)", env, ErrNotConfigured, DirEnv)
	}
	return wait(dir, env, timeout, 2*time.Second, logf)
}

func wait(dir, env string, timeout, poll time.Duration, logf func(string, ...any)) (string, error) {
	deadline := time.Now().Add(timeout)
	told := false
	for {
		if b, err := os.ReadFile(filepath.Join(dir, env)); err == nil {
			path := strings.TrimSpace(string(b))
			if path == "" {
				return "", fmt.Errorf("%s: its build printed no path (%s)", env, filepath.Join(dir, env+".log"))
			}
			return path, nil
		}
		if _, err := os.Stat(filepath.Join(dir, env+".failed")); err == nil {
			log, _ := os.ReadFile(filepath.Join(dir, env+".log"))
			return "", fmt.Errorf("%s: its build failed:\n%s", env, lastLines(string(log), 20))
		}
		if _, err := os.Stat(filepath.Join(dir, ".lock")); err != nil {
			return "", fmt.Errorf("%s: hack/build-peers.sh never ran into %s", env, dir)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: still building after %v (%s)", env, timeout, filepath.Join(dir, env+".log"))
		}
		if !told && logf != nil {
			logf("waiting for %s to build (hack/build-peers.sh, log %s)", env, filepath.Join(dir, env+".log"))
			told = true
		}
		time.Sleep(poll)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
