// Command workload is what the real node of the e2e suite runs: its pause
// container and its test containers, from one static binary in one locally
// built image (there is no registry to pull from).
//
//	workload                 sleep until SIGTERM (the pod sandbox's pause)
//	workload burn [flags]    use a known share of a CPU and hold memory
//	workload stress [flags]  stress(1)'s memory workers, as metrics-server's
//	                         e2e suite runs them (also when run as "stress")
//
// burn reads the millicores to use from --millicores-file every second when
// it is set, so a test can drive every replica of a Deployment (an HPA's
// target) up and down at once through one hostPath file.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if filepath.Base(os.Args[0]) == "stress" {
		exitOnError("stress", stress(os.Args[1:]))
		return
	}
	if len(os.Args) < 2 {
		pause()
		return
	}
	switch os.Args[1] {
	case "burn":
		exitOnError("workload burn", burn(os.Args[2:]))
	case "stress":
		exitOnError("workload stress", stress(os.Args[2:]))
	default:
		fmt.Fprintf(os.Stderr, "workload: unknown command %q (want none, burn or stress)\n", os.Args[1])
		os.Exit(2)
	}
}

func pause() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}

// period is one duty cycle: busy for millicores/1000 of it, asleep for the
// rest. Short against the 10 s between two kubelet samples, long against
// the scheduler's tick.
const period = 100 * time.Millisecond

func burn(args []string) error {
	fs := flag.NewFlagSet("burn", flag.ContinueOnError)
	millicores := fs.Int64("millicores", 0, "share of one CPU to use, in thousandths (at most 1000)")
	millicoresFile := fs.String("millicores-file", "", "file holding the millicores to use, read every second (overrides --millicores while it is readable)")
	memoryMiB := fs.Int("memory-mib", 0, "MiB of memory to allocate, touch and hold")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *millicores < 0 || *millicores > 1000 {
		return fmt.Errorf("--millicores must be within 0..1000, got %d", *millicores)
	}
	runtime.GOMAXPROCS(1)
	held := resident(int64(*memoryMiB) << 20)
	var target atomic.Int64
	target.Store(*millicores)
	if *millicoresFile != "" {
		go follow(*millicoresFile, &target)
	}
	go func() {
		pause()
		os.Exit(0)
	}()
	for {
		busy := time.Duration(target.Load()) * period / 1000
		start := time.Now()
		for time.Since(start) < busy {
		}
		time.Sleep(period - time.Since(start))
		runtime.KeepAlive(held)
	}
}

// resident allocates size bytes and touches every page, so that all of
// them are resident: in the cgroup's working set, which metrics.k8s.io
// serves as memory.
func resident(size int64) []byte {
	b := make([]byte, size)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	return b
}

func follow(path string, target *atomic.Int64) {
	for ; ; time.Sleep(time.Second) {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		m, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || m < 0 || m > 1000 {
			continue
		}
		target.Store(m)
	}
}
