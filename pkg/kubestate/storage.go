package kubestate

import (
	"math"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func pvcBase(c *corev1.PersistentVolumeClaim) []string {
	return []string{"namespace", c.Namespace, "persistentvolumeclaim", c.Name}
}

func pvcFamilies() []family[*corev1.PersistentVolumeClaim] {
	type c = *corev1.PersistentVolumeClaim
	return []family[c]{
		{"kube_persistentvolumeclaim_info", "Information about persistent volume claim.", gauge, func(o c, emit emitFunc) {
			mode := ""
			if o.Spec.VolumeMode != nil {
				mode = string(*o.Spec.VolumeMode)
			}
			emit(1, "storageclass", claimClass(o), "volumename", o.Spec.VolumeName, "volumemode", mode)
		}},
		{"kube_persistentvolumeclaim_status_phase", "The phase the persistent volume claim is currently in.", gauge, func(o c, emit emitFunc) {
			if o.Status.Phase == "" {
				return
			}
			for _, p := range []corev1.PersistentVolumeClaimPhase{corev1.ClaimLost, corev1.ClaimBound, corev1.ClaimPending} {
				emit(boolValue(o.Status.Phase == p), "phase", string(p))
			}
		}},
		{"kube_persistentvolumeclaim_resource_requests_storage_bytes", "The capacity of storage requested by the persistent volume claim.", gauge, func(o c, emit emitFunc) {
			if q, ok := o.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
				emit(float64(q.Value()))
			}
		}},
		{"kube_persistentvolumeclaim_access_mode", "The access mode(s) specified by the persistent volume claim.", gauge, func(o c, emit emitFunc) {
			for _, m := range o.Spec.AccessModes {
				emit(1, "access_mode", string(m))
			}
		}},
		{"kube_persistentvolumeclaim_status_condition", "Information about status of different conditions of persistent volume claim.", gauge, func(o c, emit emitFunc) {
			for _, cond := range o.Status.Conditions {
				conditionSeries(cond.Status, emit, "status", "condition", string(cond.Type))
			}
		}},
	}
}

// claimClass is the claim's class, from the field or the beta annotation
// older claims carry, as kube-state-metrics reads it.
func claimClass(c *corev1.PersistentVolumeClaim) string {
	if c.Spec.StorageClassName != nil {
		return *c.Spec.StorageClassName
	}
	return c.Annotations[corev1.BetaStorageClassAnnotation]
}

func pvBase(v *corev1.PersistentVolume) []string { return []string{"persistentvolume", v.Name} }

func pvFamilies() []family[*corev1.PersistentVolume] {
	type v = *corev1.PersistentVolume
	return []family[v]{
		{"kube_persistentvolume_info", "Information about persistentvolume.", gauge, func(o v, emit emitFunc) {
			emit(1, pvSourceLabels(o)...)
		}},
		{"kube_persistentvolume_status_phase", "The phase indicates if a volume is available, bound to a claim, or released by a claim.", gauge, func(o v, emit emitFunc) {
			if o.Status.Phase == "" {
				return
			}
			for _, p := range []corev1.PersistentVolumePhase{corev1.VolumePending, corev1.VolumeAvailable, corev1.VolumeBound, corev1.VolumeReleased, corev1.VolumeFailed} {
				emit(boolValue(o.Status.Phase == p), "phase", string(p))
			}
		}},
		{"kube_persistentvolume_capacity_bytes", "Persistentvolume capacity in bytes.", gauge, func(o v, emit emitFunc) {
			q := o.Spec.Capacity[corev1.ResourceStorage]
			emit(float64(q.Value()))
		}},
		{"kube_persistentvolume_claim_ref", "Information about the Persistent Volume Claim Reference.", gauge, func(o v, emit emitFunc) {
			if r := o.Spec.ClaimRef; r != nil {
				emit(1, "claim_namespace", r.Namespace, "name", r.Name)
			}
		}},
	}
}

// pvSourceLabels are kube_persistentvolume_info's labels; the ones of
// volume sources not set stay empty, as kube-state-metrics writes them.
func pvSourceLabels(v *corev1.PersistentVolume) []string {
	s := v.Spec.PersistentVolumeSource
	l := []string{"storageclass", v.Spec.StorageClassName, "reclaim_policy", string(v.Spec.PersistentVolumeReclaimPolicy)}
	switch {
	case s.CSI != nil:
		l = append(l, "csi_driver", s.CSI.Driver, "csi_volume_handle", s.CSI.VolumeHandle)
	case s.Local != nil:
		fs := ""
		if s.Local.FSType != nil {
			fs = *s.Local.FSType
		}
		l = append(l, "local_path", s.Local.Path, "local_fs", fs)
	case s.HostPath != nil:
		t := ""
		if s.HostPath.Type != nil {
			t = string(*s.HostPath.Type)
		}
		l = append(l, "host_path", s.HostPath.Path, "host_path_type", t)
	case s.NFS != nil:
		l = append(l, "nfs_server", s.NFS.Server, "nfs_path", s.NFS.Path)
	case s.GCEPersistentDisk != nil:
		l = append(l, "gce_persistent_disk_name", s.GCEPersistentDisk.PDName)
	case s.AWSElasticBlockStore != nil:
		l = append(l, "ebs_volume_id", s.AWSElasticBlockStore.VolumeID)
	case s.AzureDisk != nil:
		l = append(l, "azure_disk_name", s.AzureDisk.DiskName)
	}
	return l
}

// quantityValue is kube-state-metrics' conversion of quota quantities:
// milli-precision, unless that would overflow.
func quantityValue(q resource.Quantity) float64 {
	if q.Value() > math.MaxInt64/1000 {
		return float64(q.Value())
	}
	return float64(q.MilliValue()) / 1000
}
