package kubestate

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

func nodeBase(n *corev1.Node) []string { return []string{"node", n.Name} }

func nodeFamilies() []family[*corev1.Node] {
	return []family[*corev1.Node]{
		{"kube_node_info", "Information about a cluster node.", gauge, func(n *corev1.Node, emit emitFunc) {
			internalIP := ""
			for _, a := range n.Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					internalIP = a.Address
				}
			}
			i := n.Status.NodeInfo
			emit(1, "kernel_version", i.KernelVersion, "os_image", i.OSImage, "container_runtime_version", i.ContainerRuntimeVersion,
				"kubelet_version", i.KubeletVersion, "kubeproxy_version", "deprecated", "provider_id", n.Spec.ProviderID,
				"pod_cidr", n.Spec.PodCIDR, "system_uuid", i.SystemUUID, "internal_ip", internalIP)
		}},
		{"kube_node_role", "The role of a cluster node.", gauge, func(n *corev1.Node, emit emitFunc) {
			const prefix = "node-role.kubernetes.io/"
			var roles []string
			for k := range n.Labels {
				if strings.HasPrefix(k, prefix) {
					roles = append(roles, strings.TrimPrefix(k, prefix))
				}
			}
			slices.Sort(roles)
			for _, r := range roles {
				emit(1, "role", r)
			}
		}},
		{"kube_node_spec_unschedulable", "Whether a node can schedule new pods.", gauge, func(n *corev1.Node, emit emitFunc) {
			emit(boolValue(n.Spec.Unschedulable))
		}},
		{"kube_node_spec_taint", "The taint of a cluster node.", gauge, func(n *corev1.Node, emit emitFunc) {
			for _, t := range n.Spec.Taints {
				emit(1, "key", t.Key, "value", t.Value, "effect", string(t.Effect))
			}
		}},
		{"kube_node_status_condition", "The condition of a cluster node.", gauge, func(n *corev1.Node, emit emitFunc) {
			for _, c := range n.Status.Conditions {
				conditionSeries(c.Status, emit, "status", "condition", string(c.Type))
			}
		}},
		{"kube_node_status_capacity", "The total amount of resources available for a node.", gauge, func(n *corev1.Node, emit emitFunc) {
			resources(n.Status.Capacity, emit)
		}},
		{"kube_node_status_allocatable", "The allocatable for different resources of a node that are available for scheduling.", gauge, func(n *corev1.Node, emit emitFunc) {
			resources(n.Status.Allocatable, emit)
		}},
	}
}

func namespaceBase(ns *corev1.Namespace) []string { return []string{"namespace", ns.Name} }

func namespaceFamilies() []family[*corev1.Namespace] {
	return []family[*corev1.Namespace]{
		{"kube_namespace_status_phase", "kubernetes namespace status phase.", gauge, func(ns *corev1.Namespace, emit emitFunc) {
			for _, phase := range []corev1.NamespacePhase{corev1.NamespaceActive, corev1.NamespaceTerminating} {
				emit(boolValue(ns.Status.Phase == phase), "phase", string(phase))
			}
		}},
		{"kube_namespace_status_condition", "The condition of a namespace.", gauge, func(ns *corev1.Namespace, emit emitFunc) {
			for _, c := range ns.Status.Conditions {
				conditionSeries(c.Status, emit, "status", "condition", string(c.Type))
			}
		}},
	}
}
