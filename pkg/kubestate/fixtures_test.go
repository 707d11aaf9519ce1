package kubestate

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// list is a Lister over fixed objects.
type list[T any] []T

func (l list[T]) List(k8slabels.Selector) ([]T, error) { return l, nil }

var (
	created    = metav1.NewTime(time.Unix(1_700_000_000, 0))
	started    = metav1.NewTime(time.Unix(1_700_000_100, 0))
	objectMeta = func(ns, name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), CreationTimestamp: created, Generation: 3, ResourceVersion: "42",
			Labels:      map[string]string{"app.kubernetes.io/name": name, "team": "shop"},
			Annotations: map[string]string{"owner": "alice"}}
	}
	controller = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-7d", Controller: ptr.To(true)}}
)

// everyResource has one object of every resource, with the fields each
// family reads set.
func everyResource() Sources {
	web := &corev1.Pod{ObjectMeta: objectMeta("shop", "web-1"),
		Spec: corev1.PodSpec{NodeName: "n1", PriorityClassName: "high",
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}, Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Mi")}}}},
			Containers: []corev1.Container{{Name: "main", Image: "web:1", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), "nvidia.com/gpu": resource.MustParse("1")},
			}}, {Name: "side", Image: "side:2"}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-web"}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.1.0.5", HostIP: "10.0.0.1", QOSClass: corev1.PodQOSBurstable, StartTime: &started,
			Conditions:            []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "main", Image: "docker.io/web:1", ImageID: "sha256:ab", ContainerID: "containerd://c1", Ready: true, RestartCount: 4,
					State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137, FinishedAt: started}}},
				{Name: "side", Image: "docker.io/side:2", RestartCount: 7,
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}},
			}}}
	web.OwnerReferences = controller
	evicted := &corev1.Pod{ObjectMeta: objectMeta("shop", "evicted-1"), Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted",
		ContainerStatuses: []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", StartedAt: started}}}}}}
	node := &corev1.Node{ObjectMeta: objectMeta("", "n1"), Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24", ProviderID: "kind://n1", Unschedulable: true,
		Taints: []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3900m"), corev1.ResourcePods: resource.MustParse("110")},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}, {Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}},
			Addresses:   []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}},
			NodeInfo:    corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", KernelVersion: "6.1", OSImage: "Debian", ContainerRuntimeVersion: "containerd://2.1", SystemUUID: "u"}}}
	node.Labels["node-role.kubernetes.io/control-plane"] = ""
	ns := &corev1.Namespace{ObjectMeta: objectMeta("", "shop"), Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive,
		Conditions: []corev1.NamespaceCondition{{Type: corev1.NamespaceDeletionDiscoveryFailure, Status: corev1.ConditionFalse}}}}
	dep := &appsv1.Deployment{ObjectMeta: objectMeta("shop", "web"), Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3)},
		Status: appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 2, AvailableReplicas: 2, UnavailableReplicas: 1, UpdatedReplicas: 3, ObservedGeneration: 3,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable"},
				{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "SomethingNew"}}}}
	sts := &appsv1.StatefulSet{ObjectMeta: objectMeta("shop", "db"), Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2)},
		Status: appsv1.StatefulSetStatus{Replicas: 2, ReadyReplicas: 2, CurrentReplicas: 2, UpdatedReplicas: 1, AvailableReplicas: 2, ObservedGeneration: 3, CurrentRevision: "db-1", UpdateRevision: "db-2"}}
	ds := &appsv1.DaemonSet{ObjectMeta: objectMeta("kube-system", "agent"), Status: appsv1.DaemonSetStatus{CurrentNumberScheduled: 3, DesiredNumberScheduled: 3, NumberAvailable: 2,
		NumberReady: 2, NumberUnavailable: 1, UpdatedNumberScheduled: 3, ObservedGeneration: 3}}
	rs := &appsv1.ReplicaSet{ObjectMeta: objectMeta("shop", "web-7d"), Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](3)}, Status: appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 2}}
	rs.OwnerReferences = []metav1.OwnerReference{{Kind: "Deployment", Name: "web", Controller: ptr.To(true)}}
	job := &batchv1.Job{ObjectMeta: objectMeta("shop", "report-1"), Spec: batchv1.JobSpec{Parallelism: ptr.To[int32](1), Completions: ptr.To[int32](1)},
		Status: batchv1.JobStatus{Failed: 2, StartTime: &started, CompletionTime: &started,
			Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded"}}}}
	job.OwnerReferences = []metav1.OwnerReference{{Kind: "CronJob", Name: "report", Controller: ptr.To(true)}}
	done := &batchv1.Job{ObjectMeta: objectMeta("shop", "report-0"), Status: batchv1.JobStatus{Succeeded: 1,
		Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}}
	cron := &batchv1.CronJob{ObjectMeta: objectMeta("shop", "report"), Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *", ConcurrencyPolicy: batchv1.ForbidConcurrent, Suspend: ptr.To(false)},
		Status: batchv1.CronJobStatus{LastScheduleTime: &started, LastSuccessfulTime: &started, Active: []corev1.ObjectReference{{Name: "report-1"}}}}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: objectMeta("shop", "web"), Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 5,
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 5, DesiredReplicas: 5,
			Conditions: []autoscalingv2.HorizontalPodAutoscalerCondition{{Type: autoscalingv2.ScalingLimited, Status: corev1.ConditionTrue}}}}
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: objectMeta("shop", "data-web"), Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("local"), VolumeName: "pv-1",
		VolumeMode: ptr.To(corev1.PersistentVolumeFilesystem), AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound,
			Conditions: []corev1.PersistentVolumeClaimCondition{{Type: corev1.PersistentVolumeClaimResizing, Status: corev1.ConditionTrue}}}}
	pv := &corev1.PersistentVolume{ObjectMeta: objectMeta("", "pv-1"), Spec: corev1.PersistentVolumeSpec{StorageClassName: "local", PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
		Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
		ClaimRef:               &corev1.ObjectReference{Namespace: "shop", Name: "data-web"},
		PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/mnt/pv-1"}}},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound}}
	quota := &corev1.ResourceQuota{ObjectMeta: objectMeta("shop", "compute"), Status: corev1.ResourceQuotaStatus{
		Hard: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("4")}, Used: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("1500m")}}}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: objectMeta("shop", "web"), Status: policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 2, DesiredHealthy: 2, ExpectedPods: 3, DisruptionsAllowed: 0, ObservedGeneration: 3}}
	svc := &corev1.Service{ObjectMeta: objectMeta("shop", "web"), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10"}}
	ing := &networkingv1.Ingress{ObjectMeta: objectMeta("shop", "web"), Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("nginx")}}
	np := &networkingv1.NetworkPolicy{ObjectMeta: objectMeta("shop", "deny"), Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}}
	ep := &corev1.Endpoints{ObjectMeta: objectMeta("shop", "web")}
	cm := &metav1.PartialObjectMetadata{ObjectMeta: objectMeta("shop", "settings")}
	secret := &metav1.PartialObjectMetadata{ObjectMeta: objectMeta("shop", "token")}
	return Sources{
		Pods: list[*corev1.Pod]{web, evicted}, Nodes: list[*corev1.Node]{node}, Namespaces: list[*corev1.Namespace]{ns},
		Deployments: list[*appsv1.Deployment]{dep}, StatefulSets: list[*appsv1.StatefulSet]{sts}, DaemonSets: list[*appsv1.DaemonSet]{ds},
		ReplicaSets: list[*appsv1.ReplicaSet]{rs}, Jobs: list[*batchv1.Job]{job, done}, CronJobs: list[*batchv1.CronJob]{cron},
		HorizontalPodAutoscalers: list[*autoscalingv2.HorizontalPodAutoscaler]{hpa},
		PersistentVolumeClaims:   list[*corev1.PersistentVolumeClaim]{pvc}, PersistentVolumes: list[*corev1.PersistentVolume]{pv},
		ResourceQuotas: list[*corev1.ResourceQuota]{quota}, PodDisruptionBudgets: list[*policyv1.PodDisruptionBudget]{pdb},
		Services: list[*corev1.Service]{svc}, Ingresses: list[*networkingv1.Ingress]{ing}, NetworkPolicies: list[*networkingv1.NetworkPolicy]{np},
		Endpoints: list[*corev1.Endpoints]{ep}, ConfigMaps: list[*metav1.PartialObjectMetadata]{cm}, Secrets: list[*metav1.PartialObjectMetadata]{secret},
	}
}
