//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestK9s: k9s (built from the Go module proxy, hack/build-k9s.sh; make e2e
// sets K9S_BIN), headless in a tmux pane as a user runs it in a terminal,
// shows kmetrics' numbers in its pods and nodes views — the CPU and MEM
// columns it reads from metrics.k8s.io.
func TestK9s(t *testing.T) {
	t.Parallel()
	bin := peerBinary(t, "K9S_BIN", "hack/build-k9s.sh")
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatal("tmux not installed: hack/build-cluster-bins.sh installs it")
	}
	deployment(t, "e2e-k9s", "web", 2, "250m", "80Mi", "100m")
	eventually(t, 90*time.Second, "kubectl top shows the pods", func() error {
		out, err := kubectl("top", "pods", "-n", "e2e-k9s")
		if err != nil {
			return err
		}
		if rows := parseTop(out); len(rows) != 2 {
			return fmt.Errorf("%d rows", len(rows))
		}
		return nil
	})

	home := t.TempDir()
	view := func(name string, args ...string) func() string {
		session := "e2e-k9s-" + name
		cmd := append([]string{bin, "--kubeconfig", filepath.Join(state, "admin.kubeconfig"), "--headless", "--logoless", "--crumbsless",
			"--readonly", "--refresh", "2", "--logFile", filepath.Join(state, "logs", "k9s-"+name+".log")}, args...)
		start := exec.Command(tmux, "new-session", "-d", "-s", session, "-x", "220", "-y", "50", strings.Join(cmd, " "))
		start.Env = append(os.Environ(), "TERM=xterm-256color", "XDG_CONFIG_HOME="+home, "XDG_STATE_HOME="+home, "XDG_DATA_HOME="+home,
			"XDG_CACHE_HOME="+home, "K9S_CONFIG_DIR="+filepath.Join(home, "k9s"))
		if out, err := start.CombinedOutput(); err != nil {
			t.Fatalf("tmux: %v: %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command(tmux, "kill-session", "-t", session).Run() })
		return func() string {
			out, _ := exec.Command(tmux, "capture-pane", "-p", "-t", session).Output()
			return string(out)
		}
	}

	t.Run("pods view: CPU and MEM of kmetrics", func(t *testing.T) {
		screen := view("pods", "--namespace", "e2e-k9s", "--command", "pods")
		var last string
		eventually(t, 90*time.Second, "k9s shows both pods at 250m and 80Mi", func() error {
			last = screen()
			rows := k9sRows(last, "web-")
			if len(rows) != 2 {
				return fmt.Errorf("%d pod rows:\n%s", len(rows), last)
			}
			// kwok's usage is a rate over its counter: on a loaded machine a
			// window reads 251m; the columns are checked within 2%.
			near := func(v string, want int) bool {
				n, err := strconv.Atoi(v)
				return err == nil && n >= want-5 && n <= want+5
			}
			for _, r := range rows {
				if !near(r["CPU"], 250) || r["MEM"] != "80" {
					return fmt.Errorf("row %v, want CPU 250, MEM 80:\n%s", r, last)
				}
				// 250m of a 100m request.
				if !near(r["%CPU/R"], 250) {
					return fmt.Errorf("row %v, want %%CPU/R 250:\n%s", r, last)
				}
			}
			return nil
		})
		t.Logf("k9s pods view:\n%s", last)
	})

	t.Run("nodes view: every node's CPU and MEM as kubectl top shows them", func(t *testing.T) {
		screen := view("nodes", "--command", "nodes")
		var last string
		// Both read kmetrics; usage moves while other tests run, so they
		// are compared until one screen and one kubectl top agree.
		eventually(t, 2*time.Minute, "k9s and kubectl top agree on every node", func() error {
			out, err := kubectl("top", "nodes")
			if err != nil {
				return err
			}
			// The kwok nodes: other tests' nodes (the real node, the
			// hostile tenants') join, fail and leave meanwhile.
			kwok := func(name string) bool { return strings.HasPrefix(name, "kwok-node-") }
			top := map[string][2]string{}
			for _, r := range parseTop(out) {
				if kwok(r["NAME"]) {
					top[r["NAME"]] = [2]string{strings.TrimSuffix(r["CPU(cores)"], "m"), strings.TrimSuffix(r["MEMORY(bytes)"], "Mi")}
				}
			}
			last = screen()
			var rows []map[string]string
			for _, r := range k9sRows(last, "") {
				if kwok(r["NAME"]) {
					rows = append(rows, r)
				}
			}
			if len(rows) != len(top) || len(rows) != nodeCount {
				return fmt.Errorf("%d node rows, kubectl top %d:\n%s", len(rows), len(top), last)
			}
			for _, r := range rows {
				if want := top[r["NAME"]]; r["CPU"] != want[0] || r["MEM"] != want[1] {
					return fmt.Errorf("node %s: k9s %sm/%sMi, kubectl top %sm/%sMi", r["NAME"], r["CPU"], r["MEM"], want[0], want[1])
				}
			}
			return nil
		})
		t.Logf("k9s nodes view:\n%s", last)
	})
}

// k9sRows parses a captured k9s table: the header row (the line holding
// NAME) gives the columns; rows whose NAME starts with prefix follow. A
// value k9s saw change carries its delta sign (↑, ↓, Δ) for a while — the
// pods' CPU going from its first 0 to 250 shows as "250↑" — and a sorted
// column's header its sort arrow: both are cut.
func k9sRows(screen, prefix string) []map[string]string {
	var header []string
	var rows []map[string]string
	for _, line := range strings.Split(screen, "\n") {
		line = strings.Trim(line, " │┌┐└┘─|")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		for i, f := range fields {
			fields[i] = strings.TrimRight(f, "↑↓Δ")
		}
		if header == nil {
			if slices.Contains(fields, "NAME") {
				header = fields
			}
			continue
		}
		if len(fields) != len(header) {
			continue
		}
		r := map[string]string{}
		for i, h := range header {
			r[h] = fields[i]
		}
		if strings.HasPrefix(r["NAME"], prefix) {
			rows = append(rows, r)
		}
	}
	return rows
}
