package kubestate

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConfigMaps and Secrets are watched as metadata only: their data (often
// most of a cluster's etcd) is never read, so never held in memory.

func configMapBase(m *metav1.PartialObjectMetadata) []string {
	return []string{"namespace", m.Namespace, "configmap", m.Name}
}

func secretBase(m *metav1.PartialObjectMetadata) []string {
	return []string{"namespace", m.Namespace, "secret", m.Name}
}

func metadataFamilies(kind string) []family[*metav1.PartialObjectMetadata] {
	type m = *metav1.PartialObjectMetadata
	return []family[m]{
		{"kube_" + kind + "_info", "Information about " + kind + ".", gauge, func(o m, emit emitFunc) { emit(1) }},
		{"kube_" + kind + "_metadata_resource_version", "Resource version representing a specific version of " + kind + ".", gauge, func(o m, emit emitFunc) {
			resourceVersion(o.ResourceVersion, emit)
		}},
	}
}

func serviceBase(s *corev1.Service) []string {
	return []string{"namespace", s.Namespace, "service", s.Name, "uid", string(s.UID)}
}

func serviceFamilies() []family[*corev1.Service] {
	type s = *corev1.Service
	return []family[s]{
		{"kube_service_info", "Information about service.", gauge, func(o s, emit emitFunc) {
			emit(1, "cluster_ip", o.Spec.ClusterIP, "external_name", o.Spec.ExternalName, "load_balancer_ip", o.Spec.LoadBalancerIP,
				"external_traffic_policy", string(o.Spec.ExternalTrafficPolicy))
		}},
		{"kube_service_spec_type", "Type about service.", gauge, func(o s, emit emitFunc) { emit(1, "type", string(o.Spec.Type)) }},
	}
}

func ingressBase(i *networkingv1.Ingress) []string {
	return []string{"namespace", i.Namespace, "ingress", i.Name}
}

func ingressFamilies() []family[*networkingv1.Ingress] {
	type i = *networkingv1.Ingress
	return []family[i]{
		{"kube_ingress_info", "Information about ingress.", gauge, func(o i, emit emitFunc) {
			class := "_default"
			if o.Spec.IngressClassName != nil {
				class = *o.Spec.IngressClassName
			} else if c, ok := o.Annotations["kubernetes.io/ingress.class"]; ok {
				class = c
			}
			emit(1, "ingressclass", class)
		}},
		{"kube_ingress_metadata_resource_version", "Resource version representing a specific version of ingress.", gauge, func(o i, emit emitFunc) {
			resourceVersion(o.ResourceVersion, emit)
		}},
	}
}

func networkPolicyBase(n *networkingv1.NetworkPolicy) []string {
	return []string{"namespace", n.Namespace, "networkpolicy", n.Name}
}

func networkPolicyFamilies() []family[*networkingv1.NetworkPolicy] {
	type n = *networkingv1.NetworkPolicy
	return []family[n]{
		{"kube_networkpolicy_spec_ingress_rules", "Number of ingress rules on the networkpolicy", gauge, func(o n, emit emitFunc) { emit(float64(len(o.Spec.Ingress))) }},
		{"kube_networkpolicy_spec_egress_rules", "Number of egress rules on the networkpolicy", gauge, func(o n, emit emitFunc) { emit(float64(len(o.Spec.Egress))) }},
	}
}

func resourceQuotaBase(q *corev1.ResourceQuota) []string {
	return []string{"namespace", q.Namespace, "resourcequota", q.Name}
}

func resourceQuotaFamilies() []family[*corev1.ResourceQuota] {
	type q = *corev1.ResourceQuota
	return []family[q]{
		{"kube_resourcequota", "Information about resource quota.", gauge, func(o q, emit emitFunc) {
			for _, part := range []struct {
				typ string
				rl  corev1.ResourceList
			}{{"hard", o.Status.Hard}, {"used", o.Status.Used}} {
				names := make([]string, 0, len(part.rl))
				for r := range part.rl {
					names = append(names, string(r))
				}
				slices.Sort(names)
				for _, r := range names {
					emit(quantityValue(part.rl[corev1.ResourceName(r)]), "resource", r, "type", part.typ)
				}
			}
		}},
	}
}

func pdbBase(p *policyv1.PodDisruptionBudget) []string {
	return []string{"namespace", p.Namespace, "poddisruptionbudget", p.Name}
}

func pdbFamilies() []family[*policyv1.PodDisruptionBudget] {
	type p = *policyv1.PodDisruptionBudget
	return []family[p]{
		{"kube_poddisruptionbudget_status_current_healthy", "Current number of healthy pods", gauge, func(o p, emit emitFunc) { emit(float64(o.Status.CurrentHealthy)) }},
		{"kube_poddisruptionbudget_status_desired_healthy", "Minimum desired number of healthy pods", gauge, func(o p, emit emitFunc) { emit(float64(o.Status.DesiredHealthy)) }},
		{"kube_poddisruptionbudget_status_pod_disruptions_allowed", "Number of pod disruptions that are currently allowed", gauge, func(o p, emit emitFunc) { emit(float64(o.Status.DisruptionsAllowed)) }},
		{"kube_poddisruptionbudget_status_expected_pods", "Total number of pods counted by this disruption budget", gauge, func(o p, emit emitFunc) { emit(float64(o.Status.ExpectedPods)) }},
		{"kube_poddisruptionbudget_status_observed_generation", "Most recent generation observed when updating this PDB status", gauge, func(o p, emit emitFunc) { emit(float64(o.Status.ObservedGeneration)) }},
	}
}

func endpointsBase(e *corev1.Endpoints) []string {
	return []string{"namespace", e.Namespace, "endpoint", e.Name}
}

// endpointsFamilies: kube-state-metrics still reads v1 Endpoints (deprecated
// since Kubernetes 1.33, still served); only metadata is read, the
// addresses are dropped as objects arrive.
func endpointsFamilies() []family[*corev1.Endpoints] {
	type e = *corev1.Endpoints
	return []family[e]{
		{"kube_endpoint_info", "Information about endpoint.", gauge, func(o e, emit emitFunc) { emit(1) }},
	}
}
