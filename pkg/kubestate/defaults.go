package kubestate

import "slices"

// defaultFamilies are written when no --metric-allowlist is given: every
// kube-state-metrics family that the kubernetes-mixin's alerts, rules and
// dashboards, the community's k8s-views dashboards and the VPA's
// --metric-for-pod-labels select (about 40 series per pod, where all of
// kube-state-metrics' families are about 55, most of them per ReplicaSet
// revision and per container). Any other family is one allowlist entry
// away; ".*" writes them all, as kube-state-metrics does.
var defaultFamilies = []string{
	"kube_configmap_info",
	"kube_daemonset_labels", "kube_daemonset_status_current_number_scheduled", "kube_daemonset_status_desired_number_scheduled",
	"kube_daemonset_status_number_available", "kube_daemonset_status_number_misscheduled", "kube_daemonset_status_updated_number_scheduled",
	"kube_deployment_labels", "kube_deployment_metadata_generation", "kube_deployment_spec_replicas", "kube_deployment_status_condition",
	"kube_deployment_status_observed_generation", "kube_deployment_status_replicas_available", "kube_deployment_status_replicas_unavailable",
	"kube_deployment_status_replicas_updated",
	"kube_endpoint_info",
	"kube_horizontalpodautoscaler_labels", "kube_horizontalpodautoscaler_spec_max_replicas", "kube_horizontalpodautoscaler_spec_min_replicas",
	"kube_horizontalpodautoscaler_status_current_replicas", "kube_horizontalpodautoscaler_status_desired_replicas",
	"kube_ingress_info",
	"kube_job_failed", "kube_job_owner", "kube_job_status_active", "kube_job_status_start_time",
	"kube_namespace_created", "kube_namespace_labels", "kube_namespace_status_phase",
	"kube_networkpolicy_labels",
	"kube_node_info", "kube_node_role", "kube_node_spec_taint", "kube_node_spec_unschedulable", "kube_node_status_allocatable",
	"kube_node_status_capacity", "kube_node_status_condition",
	"kube_persistentvolume_status_phase",
	"kube_persistentvolumeclaim_access_mode", "kube_persistentvolumeclaim_info", "kube_persistentvolumeclaim_labels",
	"kube_pod_container_info", "kube_pod_container_resource_limits", "kube_pod_container_resource_requests",
	"kube_pod_container_status_last_terminated_exitcode", "kube_pod_container_status_last_terminated_reason", "kube_pod_container_status_ready",
	"kube_pod_container_status_restarts_total", "kube_pod_container_status_running", "kube_pod_container_status_terminated",
	"kube_pod_container_status_waiting", "kube_pod_container_status_waiting_reason",
	"kube_pod_info", "kube_pod_labels", "kube_pod_owner", "kube_pod_status_phase", "kube_pod_status_qos_class", "kube_pod_status_ready",
	"kube_pod_status_reason", "kube_pod_status_scheduled",
	"kube_poddisruptionbudget_status_current_healthy", "kube_poddisruptionbudget_status_desired_healthy",
	"kube_replicaset_owner",
	"kube_resourcequota",
	"kube_secret_info",
	"kube_service_info",
	"kube_statefulset_labels", "kube_statefulset_metadata_generation", "kube_statefulset_replicas", "kube_statefulset_status_current_revision",
	"kube_statefulset_status_observed_generation", "kube_statefulset_status_replicas_ready", "kube_statefulset_status_replicas_updated",
	"kube_statefulset_status_update_revision",
}

// DefaultFamilies lists the families written when no allowlist is given,
// so that a peer (kube-state-metrics in the footprint benchmark) can be
// configured to write the same ones.
func DefaultFamilies() []string { return slices.Clone(defaultFamilies) }
