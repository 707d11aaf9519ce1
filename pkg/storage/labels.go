package storage

// Label names kmetrics attaches to scraped series, as Prometheus would label a
// kubelet scrape (kube-prometheus' kubelet job), so dashboards and rules written
// for Prometheus match unchanged.
const (
	LabelJob         = "job"
	LabelInstance    = "instance"
	LabelMetricsPath = "metrics_path"
	LabelNode        = "node"
	LabelNamespace   = "namespace"
	LabelPod         = "pod"
	LabelContainer   = "container"

	// JobKubelet is the job of every kubelet endpoint kmetrics scrapes.
	JobKubelet = "kubelet"
)

// Metric names of the kubelet's /metrics/resource endpoint the index keeps.
const (
	MetricNodeCPU        = "node_cpu_usage_seconds_total"
	MetricNodeMemory     = "node_memory_working_set_bytes"
	MetricContainerCPU   = "container_cpu_usage_seconds_total"
	MetricContainerMem   = "container_memory_working_set_bytes"
	MetricContainerStart = "container_start_time_seconds"
)
