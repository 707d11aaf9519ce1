package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// stress does what metrics-server's e2e suite asks of the stress(1) in its
// consumer image (`stress -m 1 --vm-bytes 50M --vm-hang 0 -t 600`): each of
// -m workers allocates --vm-bytes, touches every page and, with
// --vm-hang 0, holds it until -t seconds have passed. The rest of stress(1)
// (cpu, io, hdd workers; re-dirtying memory) is refused, not ignored.
func stress(args []string) error {
	fs := flag.NewFlagSet("stress", flag.ContinueOnError)
	workers := fs.Int("m", 0, "memory workers")
	fs.IntVar(workers, "vm", 0, "memory workers (long form of -m)")
	vmBytes := fs.String("vm-bytes", "256M", "bytes each memory worker allocates (B, K, M, G suffixes are powers of 1024)")
	hang := fs.Int("vm-hang", -1, "seconds to hold the memory; 0 holds it until the timeout (the only mode supported)")
	timeout := fs.Int("t", 0, "seconds to run (0: until SIGTERM)")
	fs.IntVar(timeout, "timeout", 0, "seconds to run (long form of -t)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unsupported arguments %q (only -m/--vm, --vm-bytes, --vm-hang 0, -t)", fs.Args())
	}
	if *workers < 1 {
		return fmt.Errorf("-m must be at least 1")
	}
	if *hang != 0 {
		return fmt.Errorf("--vm-hang %d: only 0 (hold until the timeout) is supported", *hang)
	}
	size, err := parseBytes(*vmBytes)
	if err != nil {
		return fmt.Errorf("--vm-bytes: %w", err)
	}
	held := make([][]byte, *workers)
	for i := range held {
		held[i] = resident(size)
	}
	done := make(chan struct{})
	go func() { pause(); close(done) }()
	if *timeout > 0 {
		select {
		case <-done:
		case <-time.After(time.Duration(*timeout) * time.Second):
		}
	} else {
		<-done
	}
	runtime.KeepAlive(held)
	return nil
}

// parseBytes reads stress(1)'s sizes: a number with an optional B, K, M or
// G suffix (powers of 1024).
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	if n := len(s); n > 0 {
		switch strings.ToUpper(s[n-1:]) {
		case "B":
			s = s[:n-1]
		case "K":
			mult, s = 1<<10, s[:n-1]
		case "M":
			mult, s = 1<<20, s[:n-1]
		case "G":
			mult, s = 1<<30, s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > (1<<40)/mult {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return v * mult, nil
}

// exitOnError ends a subcommand the way a shell expects of it.
func exitOnError(name string, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
}
