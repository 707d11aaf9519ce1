//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kmetricsPodPID finds the chart's kmetrics among the node's processes:
// the image's entrypoint /kmetrics serving on the chart's port (the
// kmetrics the other tests share runs as bin/kmetrics).
func kmetricsPodPID(t *testing.T) int {
	t.Helper()
	var pid int
	eventually(t, time.Minute, "the kmetrics container's process", func() error {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(d, "cmdline"))
			if err != nil {
				continue
			}
			args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
			if args[0] == "/kmetrics" && slices.Contains(args, "--secure-port="+icPort) {
				pid, _ = strconv.Atoi(filepath.Base(d))
				return nil
			}
		}
		return fmt.Errorf("no /kmetrics --secure-port=%s process", icPort)
	})
	return pid
}

// mount is one line of /proc/PID/mountinfo: the mounted path within its
// filesystem and the mount's options.
type mount struct{ root, options string }

// mountInfo is what process pid sees mounted, by mount point.
func mountInfo(t *testing.T, pid int) map[string]mount {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]mount{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 5 {
			out[f[4]] = mount{root: f[3], options: f[5]}
		}
	}
	return out
}

func hasOption(options, o string) bool { return slices.Contains(strings.Split(options, ","), o) }
