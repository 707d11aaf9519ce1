//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// containerCgroup finds a container's cgroup (v1, cgroupfs driver) below
// the cpuacct hierarchy; the same relative path holds in memory.
func containerCgroup(t *testing.T, pod, container string) string {
	t.Helper()
	uid := mustKubectl(t, "-n", realNS, "get", "pod", pod, "-o", "jsonpath={.metadata.uid}")
	id := mustKubectl(t, "-n", realNS, "get", "pod", pod, "-o",
		fmt.Sprintf(`jsonpath={.status.containerStatuses[?(@.name=="%s")].containerID}`, container))
	id = strings.TrimPrefix(id, "containerd://")
	for _, pattern := range []string{"kubepods/*/pod%s/%s", "kubepods/pod%s/%s"} {
		matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/cpuacct", fmt.Sprintf(pattern, uid, id)))
		if len(matches) == 1 {
			rel, _ := filepath.Rel("/sys/fs/cgroup/cpuacct", matches[0])
			return rel
		}
	}
	t.Fatalf("no cgroup for pod %s container %s", uid, id)
	return ""
}

// cgroupCPU is the CPU time the cgroup accounted (cpuacct.usage, seconds)
// and when it was read.
func cgroupCPU(t *testing.T, cg string) (float64, time.Time) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuacct", cg, "cpuacct.usage"))
	now := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		t.Fatal(err)
	}
	return ns / 1e9, now
}

// cgroupWorkingSet is what cAdvisor and the kubelet call the working set
// on cgroup v1: usage minus the inactive file cache.
func cgroupWorkingSet(t *testing.T, cg string) float64 {
	t.Helper()
	dir := filepath.Join("/sys/fs/cgroup/memory", cg)
	b, err := os.ReadFile(filepath.Join(dir, "memory.usage_in_bytes"))
	if err != nil {
		t.Fatal(err)
	}
	usage, _ := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	stat, err := os.ReadFile(filepath.Join(dir, "memory.stat"))
	if err != nil {
		t.Fatal(err)
	}
	inactive := 0.0
	for _, l := range strings.Split(string(stat), "\n") {
		if v, ok := strings.CutPrefix(l, "total_inactive_file "); ok {
			inactive, _ = strconv.ParseFloat(v, 64)
		}
	}
	if inactive > usage {
		return 0
	}
	return usage - inactive
}

// containerMemory is a container's memory as metrics.k8s.io serves it.
func containerMemory(t *testing.T, pod, container string) (float64, error) {
	usage, err := containerUsage("v1beta1", realNS, pod)
	if err != nil {
		return 0, err
	}
	if u, ok := usage[container]; ok {
		return quantity(t, u["memory"]), nil
	}
	return 0, fmt.Errorf("container %s not in %v", container, usage)
}

// containerUsage is a pod's usage per container as metrics.k8s.io (at
// version) serves it.
func containerUsage(version, ns, pod string) (map[string]map[string]string, error) {
	out, err := kubectl("get", "--raw", "/apis/metrics.k8s.io/"+version+"/namespaces/"+ns+"/pods/"+pod)
	if err != nil {
		return nil, err
	}
	var pm struct {
		Containers []struct {
			Name  string            `json:"name"`
			Usage map[string]string `json:"usage"`
		} `json:"containers"`
	}
	if err := json.Unmarshal([]byte(out), &pm); err != nil {
		return nil, err
	}
	usage := make(map[string]map[string]string, len(pm.Containers))
	for _, c := range pm.Containers {
		usage[c.Name] = c.Usage
	}
	return usage, nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// kubeletSample is one of the node's samples as the kubelet served it.
type kubeletSample struct{ cpu, memory float64 }

// nodeRowIsKubelets collects the node's samples straight from the kubelet
// while asking metrics.k8s.io: the row served must be exactly those
// samples — memory the kubelet's value at the row's timestamp, CPU the rate
// between the two kubelet samples that end at it.
func nodeRowIsKubelets(t *testing.T, node *realNode) {
	samples := map[int64]kubeletSample{} // by the kubelet's timestamp (ms)
	var mu sync.Mutex
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if body, err := node.get("/metrics/resource"); err == nil {
				cpu, ts1, ok1 := exposedSample(body, "node_cpu_usage_seconds_total")
				mem, ts2, ok2 := exposedSample(body, "node_memory_working_set_bytes")
				if ok1 && ok2 && ts1 == ts2 {
					mu.Lock()
					samples[ts1] = kubeletSample{cpu, mem}
					mu.Unlock()
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
		}
	}()
	defer func() { close(stop); <-done }()

	eventually(t, 2*time.Minute, "the served row matches the kubelet's samples", func() error {
		out, err := kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/"+node.name)
		if err != nil {
			return err
		}
		var nm struct {
			Timestamp time.Time         `json:"timestamp"`
			Window    string            `json:"window"`
			Usage     map[string]string `json:"usage"`
		}
		if err := json.Unmarshal([]byte(out), &nm); err != nil {
			return err
		}
		window, err := time.ParseDuration(nm.Window)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		// metrics.k8s.io's timestamp has seconds; the kubelet's, milliseconds.
		var end int64
		for ts := range samples {
			if ts/1000 == nm.Timestamp.Unix() {
				end = ts
			}
		}
		last, ok := samples[end]
		prev, okPrev := samples[end-window.Milliseconds()]
		if end == 0 || !ok || !okPrev {
			return fmt.Errorf("row at %v (window %v) not among the %d kubelet samples seen yet", nm.Timestamp, window, len(samples))
		}
		if mem := quantity(t, nm.Usage["memory"]); mem != last.memory {
			return fmt.Errorf("memory %v, the kubelet's %v", mem, last.memory)
		}
		wantCPU := (last.cpu - prev.cpu) / window.Seconds()
		if cpu := quantity(t, nm.Usage["cpu"]); math.Abs(cpu-wantCPU) > 1e-6+1e-4*wantCPU {
			return fmt.Errorf("cpu %v cores, the kubelet's samples give %v", cpu, wantCPU)
		}
		t.Logf("row at %v: memory %s, cpu %s = the kubelet's samples at %d and %d ms", nm.Timestamp, nm.Usage["memory"], nm.Usage["cpu"], end-window.Milliseconds(), end)
		return nil
	})
	rows := parseTop(mustKubectl(t, "top", "nodes"))
	var seen []string
	for _, r := range rows {
		seen = append(seen, r["NAME"])
		if r["NAME"] == node.name && r["CPU(cores)"] != "" {
			return
		}
	}
	t.Fatalf("kubectl top nodes has no row for %s: %v", node.name, seen)
}

// exposedSample reads an unlabelled sample "name value timestamp" from a
// text exposition.
func exposedSample(body []byte, name string) (v float64, ts int64, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == name {
			v, err1 := strconv.ParseFloat(f[1], 64)
			ts, err2 := strconv.ParseInt(f[2], 10, 64)
			return v, ts, err1 == nil && err2 == nil
		}
	}
	return 0, 0, false
}
