//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// kubeStateObjects are one object of most resources kube-state-metrics
// describes, in one namespace, for the controllers to act on.
const kubeStateObjects = `
apiVersion: v1
kind: Namespace
metadata: {name: e2e-ksm, labels: {team: shop, cost-center: "42"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: e2e-ksm, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, tier: front}, annotations: {owner: alice}}
    spec:
      containers:
      - {name: main, image: registry.k8s.io/pause:3.10, resources: {requests: {cpu: 50m, memory: 32Mi}, limits: {memory: 64Mi}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: e2e-ksm}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 4
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: e2e-ksm}
spec: {minAvailable: 1, selector: {matchLabels: {app: web}}}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute, namespace: e2e-ksm}
spec: {hard: {pods: "10", requests.cpu: "2"}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: e2e-ksm}
spec: {accessModes: [ReadWriteOnce], storageClassName: none, resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: e2e-ksm}
data: {big: "not read by kmetrics"}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: e2e-ksm}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
# kwok's pod addresses are loopback, which Endpoints refuse: an Endpoints
# object of a selector-less Service, as an operator writes one.
apiVersion: v1
kind: Service
metadata: {name: external, namespace: e2e-ksm}
spec: {ports: [{port: 5432}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: external, namespace: e2e-ksm}
subsets: [{addresses: [{ip: 192.0.2.10}], ports: [{port: 5432}]}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: e2e-ksm}
spec:
  schedule: "*/5 * * * *"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: run, image: registry.k8s.io/pause:3.10}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: e2e-ksm}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: e2e-ksm}
spec: {defaultBackend: {service: {name: web, port: {number: 80}}}}
`

// TestKubeStateMetrics: the cluster-state families as kube-state-metrics
// writes them, from the real controllers' objects, through the query API.
func TestKubeStateMetrics(t *testing.T) {
	t.Parallel()
	kubectlApply(t, kubeStateObjects)
	// Every family, as kube-state-metrics writes them (the default is the
	// ones dashboards, alerts and the VPA read: checked below).
	k := startSecondKmetrics(t, "kube-state", "--scrape.annotated=false", "--cluster-state.metric-allowlist=.*", "--cluster-state.interval=10s",
		"--cluster-state.metric-labels-allowlist=pods=[app,tier],namespaces=[*]",
		"--cluster-state.metric-annotations-allowlist=pods=[owner]")
	value := func(expr string) (float64, error) {
		got := instantQuery(k.query, expr)
		if len(got) != 1 {
			return 0, fmt.Errorf("%s: %d series, want 1", expr, len(got))
		}
		return got[0].value, nil
	}
	tests := []struct {
		expr string
		want float64
	}{
		// Workloads, as the controllers set them.
		{`kube_deployment_spec_replicas{job="kube-state-metrics", namespace="e2e-ksm", deployment="web"}`, 2},
		{`kube_deployment_status_replicas_available{namespace="e2e-ksm", deployment="web"}`, 2},
		{`kube_deployment_status_condition{namespace="e2e-ksm", deployment="web", condition="Available", status="true"}`, 1},
		{`count(kube_replicaset_owner{namespace="e2e-ksm", owner_kind="Deployment", owner_name="web", owner_is_controller="true"})`, 1},
		{`count(kube_pod_owner{namespace="e2e-ksm", owner_kind="ReplicaSet"})`, 2},
		// The VPA's pod labels (--metric-for-pod-labels) and the allowlists.
		{`count(kube_pod_labels{namespace="e2e-ksm", label_app="web", label_tier="front"})`, 2},
		{`count(kube_pod_labels{namespace="e2e-ksm", label_pod_template_hash!=""})`, 0},
		{`count(kube_pod_annotations{namespace="e2e-ksm", annotation_owner="alice"})`, 2},
		{`kube_namespace_labels{namespace="e2e-ksm", label_team="shop", label_cost_center="42"}`, 1},
		// Pods and containers.
		{`count(kube_pod_status_phase{namespace="e2e-ksm", phase="Running"} == 1)`, 2},
		{`count(kube_pod_container_status_ready{namespace="e2e-ksm", container="main"} == 1)`, 2},
		{`sum(kube_pod_container_status_restarts_total{namespace="e2e-ksm"})`, 0},
		{`sum(kube_pod_container_resource_limits{namespace="e2e-ksm", resource="memory", unit="byte"})`, 2 * 64 << 20},
		{`count(kube_pod_status_qos_class{namespace="e2e-ksm", qos_class="Burstable"} == 1)`, 2},
		// The HPA, the PDB, the quota the quota controller counts.
		{`kube_horizontalpodautoscaler_spec_max_replicas{namespace="e2e-ksm", horizontalpodautoscaler="web"}`, 4},
		{`kube_horizontalpodautoscaler_spec_min_replicas{namespace="e2e-ksm", horizontalpodautoscaler="web"}`, 2},
		{`kube_poddisruptionbudget_status_expected_pods{namespace="e2e-ksm", poddisruptionbudget="web"}`, 2},
		{`kube_resourcequota{namespace="e2e-ksm", resourcequota="compute", resource="pods", type="used"}`, 2},
		{`kube_resourcequota{namespace="e2e-ksm", resourcequota="compute", resource="requests.cpu", type="used"}`, 0.1},
		// Storage, services, config, batch, network.
		{`kube_persistentvolumeclaim_status_phase{namespace="e2e-ksm", persistentvolumeclaim="data", phase="Pending"}`, 1},
		{`kube_persistentvolumeclaim_resource_requests_storage_bytes{namespace="e2e-ksm", persistentvolumeclaim="data"}`, 1 << 30},
		{`kube_persistentvolumeclaim_access_mode{namespace="e2e-ksm", persistentvolumeclaim="data", access_mode="ReadWriteOnce"}`, 1},
		{`kube_configmap_info{namespace="e2e-ksm", configmap="settings"}`, 1},
		{`count(kube_service_info{namespace="e2e-ksm", service="web", cluster_ip!=""})`, 1},
		{`kube_endpoint_info{namespace="e2e-ksm", endpoint="external"}`, 1},
		{`kube_cronjob_info{namespace="e2e-ksm", cronjob="report", schedule="*/5 * * * *", concurrency_policy="Allow", timezone="local"}`, 1},
		{`kube_cronjob_spec_suspend{namespace="e2e-ksm", cronjob="report"}`, 1},
		{`kube_networkpolicy_spec_ingress_rules{namespace="e2e-ksm", networkpolicy="deny"}`, 0},
		{`kube_ingress_info{namespace="e2e-ksm", ingress="web", ingressclass="_default"}`, 1},
		// Every node's Ready condition, one series per status.
		{`count(kube_node_status_condition{condition="Ready"}) / count(kube_node_info)`, 3},
		// Secrets are not listed by default (kmetrics reads a Secret by name only).
		{`count(kube_secret_info)`, 0},
	}
	// The quota's usage is the quota controller's count: a pod created
	// before the controller first counted the new quota is counted at its
	// next full resync (--resource-quota-sync-period, 5 min). kmetrics is
	// compared once the API server shows both pods.
	eventually(t, 6*time.Minute, "the quota controller counts both pods", func() error {
		used, err := kubectl("-n", "e2e-ksm", "get", "resourcequota", "compute", "-o", "jsonpath={.status.used.pods} {.status.used.requests\\.cpu}")
		if err != nil || strings.TrimSpace(used) != "2 100m" {
			return fmt.Errorf("quota status used: %q (%v)", used, err)
		}
		return nil
	})
	for _, tc := range tests {
		want := tc.want
		eventually(t, 2*time.Minute, tc.expr, func() error {
			if strings.HasPrefix(tc.expr, "count(") && want == 0 {
				if got := instantQuery(k.query, tc.expr); len(got) != 0 {
					return fmt.Errorf("%s: %v, want no series", tc.expr, got)
				}
				return nil
			}
			v, err := value(tc.expr)
			if err != nil {
				return err
			}
			if v != want {
				return fmt.Errorf("%s = %v, want %v", tc.expr, v, want)
			}
			return nil
		})
	}

	t.Run("the default families only, by default", func(t *testing.T) {
		main := mainKmetricsQuery(t)
		eventually(t, 2*time.Minute, "the shared kmetrics writes e2e-ksm's pods", func() error {
			if got := instantQuery(main, `count(kube_pod_info{namespace="e2e-ksm"})`); len(got) != 1 || got[0].value != 2 {
				return fmt.Errorf("%v", got)
			}
			return nil
		})
		for _, name := range []string{"kube_cronjob_info", "kube_pod_annotations", "kube_replicaset_status_replicas", "kube_secret_info"} {
			if got := instantQuery(main, `count(`+name+`)`); len(got) != 0 {
				t.Errorf("%s written by default: %v", name, got)
			}
		}
	})

	t.Run("types and help in /metadata", func(t *testing.T) {
		body, err := k.query("/api/v1/metadata?metric=" + url.QueryEscape("kube_pod_container_status_restarts_total"))
		if err != nil {
			t.Fatal(err)
		}
		var resp struct {
			Data map[string][]struct{ Type, Help string } `json:"data"`
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatal(err)
		}
		if m := resp.Data["kube_pod_container_status_restarts_total"]; len(m) != 1 || m[0].Type != "counter" {
			t.Errorf("metadata %s, want a counter", body)
		}
	})

	t.Run("a deleted object's series end", func(t *testing.T) {
		mustKubectl(t, "-n", "e2e-ksm", "delete", "configmap", "settings")
		eventually(t, time.Minute, "kube_configmap_info of the deleted ConfigMap gone", func() error {
			if got := instantQuery(k.query, `kube_configmap_info{namespace="e2e-ksm", configmap="settings"}`); len(got) != 0 {
				return fmt.Errorf("still %v", got)
			}
			return nil
		})
	})
}
