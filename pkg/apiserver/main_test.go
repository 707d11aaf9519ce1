package apiserver

import (
	"flag"
	"os"
	"testing"

	"k8s.io/klog/v2"
)

// TestMain keeps the generic server's info logs out of test and benchmark
// output (errors still show).
func TestMain(m *testing.M) {
	fs := flag.NewFlagSet("klog", flag.ExitOnError)
	klog.InitFlags(fs)
	_ = fs.Set("stderrthreshold", "ERROR")
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	os.Exit(m.Run())
}
