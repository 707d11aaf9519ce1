package kubestate

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
)

// jobFailureReasons are the Failed-condition reasons kube-state-metrics names.
var jobFailureReasons = []string{"BackoffLimitExceeded", "DeadlineExceeded", "Evicted"}

func jobBase(j *batchv1.Job) []string { return []string{"namespace", j.Namespace, "job_name", j.Name} }

func jobFamilies() []family[*batchv1.Job] {
	type j = *batchv1.Job
	return []family[j]{
		{"kube_job_info", "Information about job.", gauge, func(o j, emit emitFunc) { emit(1) }},
		{"kube_job_owner", "Information about the Job's owner.", gauge, func(o j, emit emitFunc) { owners(o.OwnerReferences, emit) }},
		{"kube_job_spec_parallelism", "The maximum desired number of pods the job should run at any given time.", gauge, func(o j, emit emitFunc) { ptrValue(o.Spec.Parallelism, emit) }},
		{"kube_job_spec_completions", "The desired number of successfully finished pods the job should be run with.", gauge, func(o j, emit emitFunc) { ptrValue(o.Spec.Completions, emit) }},
		{"kube_job_status_active", "The number of actively running pods.", gauge, func(o j, emit emitFunc) { emit(float64(o.Status.Active)) }},
		{"kube_job_status_succeeded", "The number of pods which reached Phase Succeeded.", gauge, func(o j, emit emitFunc) { emit(float64(o.Status.Succeeded)) }},
		{"kube_job_status_failed", "The number of pods which reached Phase Failed and the reason for failure.", gauge, func(o j, emit emitFunc) {
			if o.Status.Failed == 0 {
				emit(0)
				return
			}
			known := false
			for _, c := range o.Status.Conditions {
				if c.Type != batchv1.JobFailed {
					continue
				}
				for _, r := range jobFailureReasons {
					known = known || c.Reason == r
					emit(boolValue(c.Reason == r), "reason", r)
				}
			}
			if !known {
				emit(float64(o.Status.Failed), "reason", "")
			}
		}},
		{"kube_job_complete", "The job has completed its execution.", gauge, func(o j, emit emitFunc) {
			for _, c := range o.Status.Conditions {
				if c.Type == batchv1.JobComplete {
					conditionSeries(c.Status, emit, "condition")
				}
			}
		}},
		{"kube_job_failed", "The job has failed its execution.", gauge, func(o j, emit emitFunc) {
			for _, c := range o.Status.Conditions {
				if c.Type == batchv1.JobFailed {
					conditionSeries(c.Status, emit, "condition")
				}
			}
		}},
		{"kube_job_status_start_time", "StartTime represents time when the job was acknowledged by the Job Manager.", gauge, func(o j, emit emitFunc) { timestamp(o.Status.StartTime, emit) }},
		{"kube_job_status_completion_time", "CompletionTime represents time when the job was completed.", gauge, func(o j, emit emitFunc) { timestamp(o.Status.CompletionTime, emit) }},
	}
}

func cronJobBase(c *batchv1.CronJob) []string {
	return []string{"namespace", c.Namespace, "cronjob", c.Name}
}

func cronJobFamilies() []family[*batchv1.CronJob] {
	type c = *batchv1.CronJob
	return []family[c]{
		{"kube_cronjob_info", "Info about cronjob.", gauge, func(o c, emit emitFunc) {
			tz := "local"
			if o.Spec.TimeZone != nil {
				tz = *o.Spec.TimeZone
			}
			emit(1, "schedule", o.Spec.Schedule, "concurrency_policy", string(o.Spec.ConcurrencyPolicy), "timezone", tz)
		}},
		{"kube_cronjob_status_active", "Active holds pointers to currently running jobs.", gauge, func(o c, emit emitFunc) { emit(float64(len(o.Status.Active))) }},
		{"kube_cronjob_status_last_schedule_time", "LastScheduleTime keeps information of when was the last time the job was successfully scheduled.", gauge, func(o c, emit emitFunc) {
			timestamp(o.Status.LastScheduleTime, emit)
		}},
		{"kube_cronjob_status_last_successful_time", "LastSuccessfulTime keeps information of when was the last time the job was completed successfully.", gauge, func(o c, emit emitFunc) {
			timestamp(o.Status.LastSuccessfulTime, emit)
		}},
		{"kube_cronjob_spec_suspend", "Suspend flag tells the controller to suspend subsequent executions.", gauge, func(o c, emit emitFunc) {
			if o.Spec.Suspend != nil {
				emit(boolValue(*o.Spec.Suspend))
			}
		}},
	}
}

func hpaBase(h *autoscalingv2.HorizontalPodAutoscaler) []string {
	return []string{"namespace", h.Namespace, "horizontalpodautoscaler", h.Name}
}

func hpaFamilies() []family[*autoscalingv2.HorizontalPodAutoscaler] {
	type h = *autoscalingv2.HorizontalPodAutoscaler
	return []family[h]{
		{"kube_horizontalpodautoscaler_info", "Information about this autoscaler.", gauge, func(o h, emit emitFunc) {
			emit(1, "scaletargetref_api_version", o.Spec.ScaleTargetRef.APIVersion, "scaletargetref_kind", o.Spec.ScaleTargetRef.Kind, "scaletargetref_name", o.Spec.ScaleTargetRef.Name)
		}},
		{"kube_horizontalpodautoscaler_metadata_generation", "The generation observed by the HorizontalPodAutoscaler controller.", gauge, func(o h, emit emitFunc) { emit(float64(o.Generation)) }},
		{"kube_horizontalpodautoscaler_spec_max_replicas", "Upper limit for the number of pods that can be set by the autoscaler; cannot be smaller than MinReplicas.", gauge, func(o h, emit emitFunc) {
			emit(float64(o.Spec.MaxReplicas))
		}},
		{"kube_horizontalpodautoscaler_spec_min_replicas", "Lower limit for the number of pods that can be set by the autoscaler, default 1.", gauge, func(o h, emit emitFunc) {
			if o.Spec.MinReplicas == nil {
				emit(1) // the API's default
				return
			}
			emit(float64(*o.Spec.MinReplicas))
		}},
		{"kube_horizontalpodautoscaler_status_current_replicas", "Current number of replicas of pods managed by this autoscaler.", gauge, func(o h, emit emitFunc) {
			emit(float64(o.Status.CurrentReplicas))
		}},
		{"kube_horizontalpodautoscaler_status_desired_replicas", "Desired number of replicas of pods managed by this autoscaler.", gauge, func(o h, emit emitFunc) {
			emit(float64(o.Status.DesiredReplicas))
		}},
		{"kube_horizontalpodautoscaler_status_condition", "The condition of this autoscaler.", gauge, func(o h, emit emitFunc) {
			for _, c := range o.Status.Conditions {
				conditionSeries(c.Status, emit, "status", "condition", string(c.Type))
			}
		}},
	}
}
