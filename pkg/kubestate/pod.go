package kubestate

import (
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

var podPhases = []corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown}

// podStatusReasons are the reasons kube-state-metrics names; any other
// status reason is reported as "Other".
var podStatusReasons = []string{"Evicted", "NodeAffinity", "NodeLost", "PreemptionByScheduler", "SchedulingGated", "Shutdown", "TerminationByKubelet", "UnexpectedAdmissionError"}

var conditionStatuses = []corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown}

func podBase(p *corev1.Pod) []string {
	return []string{"namespace", p.Namespace, "pod", p.Name, "uid", string(p.UID)}
}

func podFamilies() []family[*corev1.Pod] {
	return []family[*corev1.Pod]{
		{"kube_pod_info", "Information about pod.", gauge, func(p *corev1.Pod, emit emitFunc) {
			kind, name := "<none>", "<none>"
			if o := controllerOf(p.OwnerReferences); o != nil {
				kind, name = o.Kind, o.Name
			}
			emit(1, "host_ip", p.Status.HostIP, "pod_ip", p.Status.PodIP, "node", p.Spec.NodeName,
				"created_by_kind", kind, "created_by_name", name, "priority_class", p.Spec.PriorityClassName,
				"host_network", strconv.FormatBool(p.Spec.HostNetwork))
		}},
		{"kube_pod_owner", "Information about the Pod's owner.", gauge, func(p *corev1.Pod, emit emitFunc) { owners(p.OwnerReferences, emit) }},
		{"kube_pod_start_time", "Start time in unix timestamp for a pod.", gauge, func(p *corev1.Pod, emit emitFunc) {
			if p.Status.StartTime != nil {
				emit(float64(p.Status.StartTime.Unix()))
			}
		}},
		{"kube_pod_status_phase", "The pods current phase.", gauge, func(p *corev1.Pod, emit emitFunc) {
			if p.Status.Phase == "" {
				return
			}
			for _, phase := range podPhases {
				emit(boolValue(p.Status.Phase == phase), "phase", string(phase))
			}
		}},
		{"kube_pod_status_qos_class", "The pods current qosClass.", gauge, func(p *corev1.Pod, emit emitFunc) {
			if p.Status.QOSClass == "" {
				return
			}
			for _, c := range []corev1.PodQOSClass{corev1.PodQOSBestEffort, corev1.PodQOSBurstable, corev1.PodQOSGuaranteed} {
				emit(boolValue(p.Status.QOSClass == c), "qos_class", string(c))
			}
		}},
		{"kube_pod_status_ready", "Describes whether the pod is ready to serve requests.", gauge, func(p *corev1.Pod, emit emitFunc) {
			podCondition(p, corev1.PodReady, emit)
		}},
		{"kube_pod_status_scheduled", "Describes the status of the scheduling process for the pod.", gauge, func(p *corev1.Pod, emit emitFunc) {
			podCondition(p, corev1.PodScheduled, emit)
		}},
		{"kube_pod_status_reason", "The pod status reasons", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, r := range podStatusReasons {
				if hasPodStatusReason(p, r) {
					emit(1, "reason", r)
				}
			}
			if p.Status.Reason != "" && !slices.Contains(podStatusReasons, p.Status.Reason) {
				emit(1, "reason", "Other")
			}
		}},
		{"kube_pod_container_info", "Information about a container in a pod.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, c := range p.Spec.Containers {
				if cs := containerStatus(p.Status.ContainerStatuses, c.Name); cs != nil {
					emit(1, "container", cs.Name, "image_spec", c.Image, "image", cs.Image, "image_id", cs.ImageID, "container_id", cs.ContainerID)
				}
			}
		}},
		{"kube_pod_container_status_waiting", "Describes whether the container is currently in waiting state.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, cs := range p.Status.ContainerStatuses {
				emit(boolValue(cs.State.Waiting != nil), "container", cs.Name)
			}
		}},
		{"kube_pod_container_status_waiting_reason", "Describes the reason the container is currently in waiting state.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Waiting != nil {
					emit(1, "container", cs.Name, "reason", cs.State.Waiting.Reason)
				}
			}
		}},
		{"kube_pod_container_status_running", "Describes whether the container is currently in running state.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, cs := range p.Status.ContainerStatuses {
				emit(boolValue(cs.State.Running != nil), "container", cs.Name)
			}
		}},
		{"kube_pod_container_state_started", "Start time in unix timestamp for a pod container.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, cs := range p.Status.ContainerStatuses {
				switch {
				case cs.State.Running != nil:
					emit(float64(cs.State.Running.StartedAt.Unix()), "container", cs.Name)
				case cs.State.Terminated != nil:
					emit(float64(cs.State.Terminated.StartedAt.Unix()), "container", cs.Name)
				}
			}
		}},
		{"kube_pod_container_status_terminated", "Describes whether the container is currently in terminated state.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, cs := range p.Status.ContainerStatuses {
				emit(boolValue(cs.State.Terminated != nil), "container", cs.Name)
			}
		}},
		{"kube_pod_container_status_terminated_reason", "Describes the reason the container is currently in terminated state.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Terminated != nil {
					emit(1, "container", cs.Name, "reason", cs.State.Terminated.Reason)
				}
			}
		}},
		{"kube_pod_container_status_last_terminated_reason", "Describes the last reason the container was in terminated state.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, cs := range p.Status.ContainerStatuses {
				if t := cs.LastTerminationState.Terminated; t != nil {
					emit(1, "container", cs.Name, "reason", t.Reason)
				}
			}
		}},
		{"kube_pod_container_status_last_terminated_exitcode", "Describes the exit code for the last container in terminated state.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, cs := range p.Status.ContainerStatuses {
				if t := cs.LastTerminationState.Terminated; t != nil {
					emit(float64(t.ExitCode), "container", cs.Name)
				}
			}
		}},
		{"kube_pod_container_status_last_terminated_timestamp", "Last terminated time for a pod container in unix timestamp.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, cs := range p.Status.ContainerStatuses {
				if t := cs.LastTerminationState.Terminated; t != nil {
					emit(float64(t.FinishedAt.Unix()), "container", cs.Name)
				}
			}
		}},
		{"kube_pod_container_status_ready", "Describes whether the containers readiness check succeeded.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, cs := range p.Status.ContainerStatuses {
				emit(boolValue(cs.Ready), "container", cs.Name)
			}
		}},
		{"kube_pod_container_status_restarts_total", "The number of container restarts per container.", counter, func(p *corev1.Pod, emit emitFunc) {
			for _, cs := range p.Status.ContainerStatuses {
				emit(float64(cs.RestartCount), "container", cs.Name)
			}
		}},
		{"kube_pod_init_container_status_restarts_total", "The number of restarts for the init container.", counter, func(p *corev1.Pod, emit emitFunc) {
			for _, cs := range p.Status.InitContainerStatuses {
				emit(float64(cs.RestartCount), "container", cs.Name)
			}
		}},
		{"kube_pod_init_container_status_waiting_reason", "Describes the reason the init container is currently in waiting state.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, cs := range p.Status.InitContainerStatuses {
				if cs.State.Waiting != nil {
					emit(1, "container", cs.Name, "reason", cs.State.Waiting.Reason)
				}
			}
		}},
		{"kube_pod_container_resource_requests", "The number of requested request resource by a container.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, c := range p.Spec.Containers {
				resources(c.Resources.Requests, emit, "container", c.Name, "node", p.Spec.NodeName)
			}
		}},
		{"kube_pod_container_resource_limits", "The number of requested limit resource by a container.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, c := range p.Spec.Containers {
				resources(c.Resources.Limits, emit, "container", c.Name, "node", p.Spec.NodeName)
			}
		}},
		{"kube_pod_init_container_resource_requests", "The number of requested request resource by an init container.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, c := range p.Spec.InitContainers {
				resources(c.Resources.Requests, emit, "container", c.Name, "node", p.Spec.NodeName)
			}
		}},
		{"kube_pod_init_container_resource_limits", "The number of requested limit resource by an init container.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, c := range p.Spec.InitContainers {
				resources(c.Resources.Limits, emit, "container", c.Name, "node", p.Spec.NodeName)
			}
		}},
		{"kube_pod_spec_volumes_persistentvolumeclaims_info", "Information about persistentvolumeclaim volumes in a pod.", gauge, func(p *corev1.Pod, emit emitFunc) {
			for _, v := range p.Spec.Volumes {
				switch {
				case v.PersistentVolumeClaim != nil:
					emit(1, "volume", v.Name, "persistentvolumeclaim", v.PersistentVolumeClaim.ClaimName, "ephemeral", "false")
				case v.Ephemeral != nil:
					emit(1, "volume", v.Name, "persistentvolumeclaim", p.Name+"-"+v.Name, "ephemeral", "true")
				}
			}
		}},
	}
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType, emit emitFunc) {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			conditionSeries(c.Status, emit, "condition")
		}
	}
}

// conditionSeries writes one series per status (true, false, unknown),
// 1 for the one the condition has, under the label name kube-state-metrics
// uses for that family.
func conditionSeries(s corev1.ConditionStatus, emit emitFunc, label string, kv ...string) {
	for _, status := range conditionStatuses {
		emit(boolValue(s == status), append(kv[:len(kv):len(kv)], label, strings.ToLower(string(status)))...)
	}
}

func hasPodStatusReason(p *corev1.Pod, reason string) bool {
	if p.Status.Reason == reason {
		return true
	}
	for _, c := range p.Status.Conditions {
		if c.Reason == reason {
			return true
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Terminated != nil && cs.State.Terminated.Reason == reason {
			return true
		}
	}
	return false
}

func containerStatus(statuses []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range statuses {
		if statuses[i].Name == name {
			return &statuses[i]
		}
	}
	return nil
}
