package provider

import (
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// freshContainerMinWindow is metrics-server's shortest accepted window
// between a young container's start and its first point.
const freshContainerMinWindow = 10 * time.Second

// timeInfo is when a usage was measured and over which window the CPU rate
// was taken (what the HPA reads to judge a sample's freshness).
type timeInfo struct {
	timestamp time.Time
	window    time.Duration
}

// resourceUsage computes CPU (a rate between the last two cumulative points,
// in nanocores) and memory (the latest working set) of a node or container.
//
// The rule, documented in the README:
//   - A CPU value of 0 is a valid point (metrics-server drops such containers).
//   - Two CPU points are needed, with no restart between them; a container
//     seen once may use its start time as the first point (counter 0) when it
//     started between 10s and one resolution before that point, as in
//     metrics-server, so new pods are served after one scrape.
//   - Memory must have been reported.
func resourceUsage(u storage.Usage, resolution time.Duration) (corev1.ResourceList, timeInfo, bool) {
	if !u.HasCPU || !u.HasMemory {
		return nil, timeInfo{}, false
	}
	prev, last := u.CPU[0], u.CPU[1]
	if !u.HasPrevCPU {
		age := time.Duration(last.T-u.StartTime) * time.Millisecond
		if u.StartTime <= 0 || age < freshContainerMinWindow || age >= resolution {
			return nil, timeInfo{}, false
		}
		prev = storage.Point{T: u.StartTime, V: 0}
	}
	window := time.Duration(last.T-prev.T) * time.Millisecond
	if window <= 0 || last.V < prev.V {
		return nil, timeInfo{}, false
	}
	nanocores := (last.V - prev.V) / window.Seconds() * 1e9
	return corev1.ResourceList{
			corev1.ResourceCPU:    quantity(nanocores, resource.DecimalSI, -9),
			corev1.ResourceMemory: quantity(u.Memory.V, resource.BinarySI, 0),
		}, timeInfo{
			timestamp: time.UnixMilli(last.T),
			window:    window,
		}, true
}

// quantity converts a non-negative float to a Quantity the way
// metrics-server does for its uint64 values.
func quantity(v float64, format resource.Format, scale resource.Scale) resource.Quantity {
	if v > math.MaxInt64 {
		v = math.MaxInt64
	}
	q := *resource.NewScaledQuantity(int64(v), scale)
	q.Format = format
	return q
}
