package kubestate

import (
	appsv1 "k8s.io/api/apps/v1"
)

// deploymentReasons are the condition reasons kube-state-metrics keeps;
// any other is reported as "unknown" (bounded cardinality).
var deploymentReasons = map[string]bool{
	"ReplicaSetUpdated": true, "ReplicaSetCreateError": true, "NewReplicaSetCreated": true, "FoundNewReplicaSet": true,
	"NewReplicaSetAvailable": true, "ProgressDeadlineExceeded": true, "DeploymentPaused": true, "DeploymentResumed": true,
	"MinimumReplicasAvailable": true, "MinimumReplicasUnavailable": true, "": true,
}

func deploymentBase(d *appsv1.Deployment) []string {
	return []string{"namespace", d.Namespace, "deployment", d.Name}
}

func deploymentFamilies() []family[*appsv1.Deployment] {
	type d = *appsv1.Deployment
	return []family[d]{
		{"kube_deployment_owner", "Information about the Deployment's owner.", gauge, func(o d, emit emitFunc) { owners(o.OwnerReferences, emit) }},
		{"kube_deployment_metadata_generation", "Sequence number representing a specific generation of the desired state.", gauge, func(o d, emit emitFunc) { emit(float64(o.Generation)) }},
		{"kube_deployment_spec_replicas", "Number of desired pods for a deployment.", gauge, func(o d, emit emitFunc) { ptrValue(o.Spec.Replicas, emit) }},
		{"kube_deployment_spec_paused", "Whether the deployment is paused and will not be processed by the deployment controller.", gauge, func(o d, emit emitFunc) { emit(boolValue(o.Spec.Paused)) }},
		{"kube_deployment_status_replicas", "The number of replicas per deployment.", gauge, func(o d, emit emitFunc) { emit(float64(o.Status.Replicas)) }},
		{"kube_deployment_status_replicas_ready", "The number of ready replicas per deployment.", gauge, func(o d, emit emitFunc) { emit(float64(o.Status.ReadyReplicas)) }},
		{"kube_deployment_status_replicas_available", "The number of available replicas per deployment.", gauge, func(o d, emit emitFunc) { emit(float64(o.Status.AvailableReplicas)) }},
		{"kube_deployment_status_replicas_unavailable", "The number of unavailable replicas per deployment.", gauge, func(o d, emit emitFunc) { emit(float64(o.Status.UnavailableReplicas)) }},
		{"kube_deployment_status_replicas_updated", "The number of updated replicas per deployment.", gauge, func(o d, emit emitFunc) { emit(float64(o.Status.UpdatedReplicas)) }},
		{"kube_deployment_status_observed_generation", "The generation observed by the deployment controller.", gauge, func(o d, emit emitFunc) { emit(float64(o.Status.ObservedGeneration)) }},
		{"kube_deployment_status_condition", "The current status conditions of a deployment.", gauge, func(o d, emit emitFunc) {
			for _, c := range o.Status.Conditions {
				reason := c.Reason
				if !deploymentReasons[reason] {
					reason = "unknown"
				}
				conditionSeries(c.Status, emit, "status", "reason", reason, "condition", string(c.Type))
			}
		}},
	}
}

func statefulSetBase(s *appsv1.StatefulSet) []string {
	return []string{"namespace", s.Namespace, "statefulset", s.Name}
}

func statefulSetFamilies() []family[*appsv1.StatefulSet] {
	type s = *appsv1.StatefulSet
	return []family[s]{
		{"kube_statefulset_metadata_generation", "Sequence number representing a specific generation of the desired state for the StatefulSet.", gauge, func(o s, emit emitFunc) { emit(float64(o.Generation)) }},
		{"kube_statefulset_replicas", "Number of desired pods for a StatefulSet.", gauge, func(o s, emit emitFunc) { ptrValue(o.Spec.Replicas, emit) }},
		{"kube_statefulset_status_replicas", "The number of replicas per StatefulSet.", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.Replicas)) }},
		{"kube_statefulset_status_replicas_available", "The number of available replicas per StatefulSet.", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.AvailableReplicas)) }},
		{"kube_statefulset_status_replicas_current", "The number of current replicas per StatefulSet.", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.CurrentReplicas)) }},
		{"kube_statefulset_status_replicas_ready", "The number of ready replicas per StatefulSet.", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.ReadyReplicas)) }},
		{"kube_statefulset_status_replicas_updated", "The number of updated replicas per StatefulSet.", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.UpdatedReplicas)) }},
		{"kube_statefulset_status_observed_generation", "The generation observed by the StatefulSet controller.", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.ObservedGeneration)) }},
		{"kube_statefulset_status_current_revision", "Indicates the version of the StatefulSet used to generate Pods in the sequence [0,currentReplicas).", gauge, func(o s, emit emitFunc) {
			if o.Status.CurrentRevision != "" {
				emit(1, "revision", o.Status.CurrentRevision)
			}
		}},
		{"kube_statefulset_status_update_revision", "Indicates the version of the StatefulSet used to generate Pods in the sequence [replicas-updatedReplicas,replicas)", gauge, func(o s, emit emitFunc) {
			if o.Status.UpdateRevision != "" {
				emit(1, "revision", o.Status.UpdateRevision)
			}
		}},
	}
}

func daemonSetBase(s *appsv1.DaemonSet) []string {
	return []string{"namespace", s.Namespace, "daemonset", s.Name}
}

func daemonSetFamilies() []family[*appsv1.DaemonSet] {
	type s = *appsv1.DaemonSet
	return []family[s]{
		{"kube_daemonset_metadata_generation", "Sequence number representing a specific generation of the desired state.", gauge, func(o s, emit emitFunc) { emit(float64(o.Generation)) }},
		{"kube_daemonset_status_current_number_scheduled", "The number of nodes running at least one daemon pod and are supposed to.", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.CurrentNumberScheduled)) }},
		{"kube_daemonset_status_desired_number_scheduled", "The number of nodes that should be running the daemon pod.", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.DesiredNumberScheduled)) }},
		{"kube_daemonset_status_number_available", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.NumberAvailable)) }},
		{"kube_daemonset_status_number_misscheduled", "The number of nodes running a daemon pod but are not supposed to.", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.NumberMisscheduled)) }},
		{"kube_daemonset_status_number_ready", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.NumberReady)) }},
		{"kube_daemonset_status_number_unavailable", "The number of nodes that should be running the daemon pod and have none of the daemon pod running and available", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.NumberUnavailable)) }},
		{"kube_daemonset_status_observed_generation", "The most recent generation observed by the daemon set controller.", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.ObservedGeneration)) }},
		{"kube_daemonset_status_updated_number_scheduled", "The total number of nodes that are running updated daemon pod", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.UpdatedNumberScheduled)) }},
	}
}

func replicaSetBase(s *appsv1.ReplicaSet) []string {
	return []string{"namespace", s.Namespace, "replicaset", s.Name}
}

func replicaSetFamilies() []family[*appsv1.ReplicaSet] {
	type s = *appsv1.ReplicaSet
	return []family[s]{
		{"kube_replicaset_owner", "Information about the ReplicaSet's owner.", gauge, func(o s, emit emitFunc) { owners(o.OwnerReferences, emit) }},
		{"kube_replicaset_metadata_generation", "Sequence number representing a specific generation of the desired state.", gauge, func(o s, emit emitFunc) { emit(float64(o.Generation)) }},
		{"kube_replicaset_spec_replicas", "Number of desired pods for a ReplicaSet.", gauge, func(o s, emit emitFunc) { ptrValue(o.Spec.Replicas, emit) }},
		{"kube_replicaset_status_replicas", "The number of replicas per ReplicaSet.", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.Replicas)) }},
		{"kube_replicaset_status_ready_replicas", "The number of ready replicas per ReplicaSet.", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.ReadyReplicas)) }},
		{"kube_replicaset_status_fully_labeled_replicas", "The number of fully labeled replicas per ReplicaSet.", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.FullyLabeledReplicas)) }},
		{"kube_replicaset_status_observed_generation", "The generation observed by the ReplicaSet controller.", gauge, func(o s, emit emitFunc) { emit(float64(o.Status.ObservedGeneration)) }},
	}
}
