//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFullDisk fills the disk under the TSDB (a 64 MiB tmpfs): kubectl top
// keeps answering with fresh numbers throughout, the refused writes are
// counted, and storing resumes by itself once space is freed.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(state, "fulldisk")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	defer func() { _ = exec.Command("umount", "-l", dir).Run() }()

	const ns = "e2e-fulldisk"
	deployment(t, ns, "app", 2, "200m", "32Mi", "100m")
	km.stop(syscall.SIGTERM)
	var err error
	if km, err = startKmetrics("--storage.tsdb.path", dir); err != nil {
		t.Fatal(err)
	}
	defer func() {
		km.stop(syscall.SIGTERM)
		if km, err = startKmetrics(); err != nil {
			t.Fatalf("restarting kmetrics on its usual TSDB: %v", err)
		}
	}()
	served := func() error {
		if rows := parseTop(mustKubectlNoFail("top", "pods", "-n", ns)); len(rows) != 2 {
			return fmt.Errorf("%d pods served, want 2", len(rows))
		}
		return freshMetrics()
	}
	eventually(t, 90*time.Second, "pods served on the small disk", served)

	admin := adminCert(t)
	storageFailures := func() float64 {
		code, body := direct(t, "/metrics", "", &admin)
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		return sumMetric(body, "kmetrics_kubelet_scrape_failures_total", `reason="storage"`)
	}
	before := storageFailures()

	filler := filepath.Join(dir, "filler")
	if err := fill(filler); err != nil {
		t.Fatal(err)
	}
	// The WAL's current page may take a few more small commits: wait
	// until writes are refused, checking kubectl top all along.
	eventually(t, 3*time.Minute, "the TSDB refusing writes", func() error {
		if err := served(); err != nil {
			t.Errorf("while the disk fills: %v", err)
		}
		if n := storageFailures(); n <= before {
			return fmt.Errorf("%v storage failures, none since the disk filled", n)
		}
		return nil
	})
	full := time.Now()
	for time.Since(full) < 3*resolution {
		if err := served(); err != nil {
			t.Fatalf("kubectl top with a full disk: %v", err)
		}
		time.Sleep(2 * time.Second)
	}
	if v := queryScalar(t, `max(timestamp(up{job="kubelet",node="kwok-node-1"}))`); v > float64(full.Add(resolution).Unix()) {
		t.Logf("note: a sample at %v was stored after the disk filled at %v", v, full.Unix())
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	eventually(t, 2*time.Minute, "storing resumed after space was freed", func() error {
		if v := queryScalar(t, `max(timestamp(up{job="kubelet",node="kwok-node-1"}))`); v < float64(freed.Unix()) {
			return fmt.Errorf("newest stored scrape at %v, space freed at %v", v, freed.Unix())
		}
		return nil
	})
	if err := served(); err != nil {
		t.Fatal(err)
	}
}

// fill writes zeros to path until the filesystem is full.
func fill(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "no space") {
				return nil
			}
			return err
		}
	}
}
