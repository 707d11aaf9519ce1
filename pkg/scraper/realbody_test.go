package scraper

import (
	"os"
	"testing"
	"time"
)

// The bodies in testdata/kubelet-v1.33-*.txt were served by a real kubelet
// v1.33.13 (containerd 1.6, cgroup v1) running one container, "burn" in
// e2e-real, that used 0.3 CPU and held 64 MiB: the e2e suite's real node
// (hack/real-node.sh). They are also seeds of the fuzz targets.

// TestRealKubeletResourceBody decodes the real /metrics/resource body: the
// node and the container reach the index with the kubelet's own
// timestamps, nothing is skipped.
func TestRealKubeletResourceBody(t *testing.T) {
	body, err := os.ReadFile("testdata/kubelet-v1.33-resource.txt")
	if err != nil {
		t.Fatal(err)
	}
	tg := newTarget("real-node", "192.0.2.2:10250", "/metrics/resource")
	tg.maxAhead = 5 * time.Minute
	app := &countingAppender{}
	res, err := tg.appendBody(app, body, "text/plain; version=0.0.4; charset=utf-8", time.UnixMilli(1796240200000))
	if err != nil {
		t.Fatal(err)
	}
	if res.skipped != 0 || res.appended != res.samples || res.samples == 0 {
		t.Fatalf("samples %d, appended %d, skipped %d", res.samples, res.appended, res.skipped)
	}
	if !res.node.HasCPU || !res.node.HasMemory || res.node.CPU.T != res.node.Memory.T || res.node.CPU.T < 1796240000000 {
		t.Fatalf("node sample %+v: want CPU and memory at the kubelet's timestamp", res.node)
	}
	var burn bool
	for _, c := range res.containers {
		if c.Namespace == "e2e-real" && c.Pod == "burn" && c.Container == "burn" {
			burn = c.HasCPU && c.HasMemory && c.StartTime > 0 && c.Memory.V >= 64<<20
		}
	}
	if !burn {
		t.Fatalf("the burn container is not indexed with CPU, memory ≥ 64 MiB and its start time: %+v", res.containers)
	}
}

// TestRealKubeletCadvisorBody decodes the real /metrics/cadvisor body as
// the opt-in cAdvisor scrape does: stored only, every sample taken.
func TestRealKubeletCadvisorBody(t *testing.T) {
	body, err := os.ReadFile("testdata/kubelet-v1.33-cadvisor.txt")
	if err != nil {
		t.Fatal(err)
	}
	tg := newKubeletTarget("real-node", "192.0.2.2:10250", "/metrics/cadvisor")
	tg.maxAhead = 5 * time.Minute
	app := &countingAppender{}
	res, err := tg.appendBody(app, body, "text/plain; version=0.0.4; charset=utf-8", time.UnixMilli(1796240200000))
	if err != nil {
		t.Fatal(err)
	}
	if res.samples < 400 || res.appended != res.samples {
		t.Fatalf("samples %d, appended %d: want the whole body (432 samples)", res.samples, res.appended)
	}
	if len(res.containers) != 0 {
		t.Fatalf("cAdvisor series reached the index: %+v", res.containers)
	}
}
