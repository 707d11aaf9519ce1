//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestKubernetesMixinAlerts: the shipped kubernetes-mixin rules load, every
// rule evaluates on kmetrics' data without an error, and alerts fire on the
// conditions they describe, made by the real controllers, and resolve when
// the condition goes. The rules run as shipped except their "for:" (15m
// and more, set to nothing: the expressions are what is tested).
func TestKubernetesMixinAlerts(t *testing.T) {
	t.Parallel()
	rules := immediateMixinRules(t)
	const ns, blocked, nodes = "e2e-mixin", "e2e-mixin-blocked", "e2e-mixin-nodes"
	kubectlApply(t, `
apiVersion: v1
kind: Namespace
metadata: {name: `+ns+`}
---
# The node-wide conditions' objects.
apiVersion: v1
kind: Namespace
metadata: {name: `+nodes+`}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: pods, namespace: `+ns+`}
spec: {hard: {pods: "3"}}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: configmaps, namespace: `+ns+`}
spec: {hard: {configmaps: "20"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: `+ns+`}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}, annotations: {kwok.x-k8s.io/usage-cpu: 400m}}
    spec:
      containers: [{name: main, image: registry.k8s.io/pause:3.10, resources: {requests: {cpu: 100m}}}]
---
# Wants three healthy pods of a two-pod Deployment.
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: `+ns+`}
spec: {minAvailable: 3, selector: {matchLabels: {app: web}}}
---
# Scheduled nowhere: Pending.
apiVersion: apps/v1
kind: Deployment
metadata: {name: stuck, namespace: `+ns+`}
spec:
  replicas: 1
  selector: {matchLabels: {app: stuck}}
  template:
    metadata: {labels: {app: stuck}}
    spec:
      nodeSelector: {e2e.kmetrics.dev/no-such-node: "true"}
      containers: [{name: main, image: registry.k8s.io/pause:3.10}]
---
# web uses 4× its CPU request: the HPA wants more than its maximum of 2.
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: `+ns+`}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 2
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}}]
---
# A namespace whose quota admits no pod: its workloads' controllers can
# create nothing, so their status never moves.
apiVersion: v1
kind: Namespace
metadata: {name: `+blocked+`}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: pods, namespace: `+blocked+`}
spec: {hard: {pods: "0"}}
---
# Quotas promising 1,000 cores and 1 PiB, more than 1.5× what the nodes have.
apiVersion: v1
kind: ResourceQuota
metadata: {name: overcommit, namespace: `+blocked+`}
spec: {hard: {requests.cpu: "1000", requests.memory: 1Pi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: blocked, namespace: `+blocked+`}
spec:
  replicas: 1
  progressDeadlineSeconds: 5
  selector: {matchLabels: {app: blocked}}
  template:
    metadata: {labels: {app: blocked}}
    spec: {containers: [{name: main, image: registry.k8s.io/pause:3.10}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: blocked, namespace: `+blocked+`}
spec:
  replicas: 1
  serviceName: blocked
  selector: {matchLabels: {app: blocked-sts}}
  template:
    metadata: {labels: {app: blocked-sts}}
    spec: {containers: [{name: main, image: registry.k8s.io/pause:3.10}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: blocked, namespace: `+blocked+`}
spec:
  selector: {matchLabels: {app: blocked-ds}}
  template:
    metadata: {labels: {app: blocked-ds}}
    spec: {containers: [{name: main, image: registry.k8s.io/pause:3.10}]}
---
# Updated only when its pods are deleted, and it has none: once its template
# changes, the update is never rolled out.
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ondelete, namespace: `+blocked+`}
spec:
  replicas: 1
  serviceName: ondelete
  updateStrategy: {type: OnDelete}
  selector: {matchLabels: {app: ondelete}}
  template:
    metadata: {labels: {app: ondelete}}
    spec: {containers: [{name: main, image: registry.k8s.io/pause:3.10}]}
---
# Two replicas wanted and none can start, so the HPA has no metric to act
# on: it keeps wanting what it wanted (nothing yet) beside its 2 current.
apiVersion: apps/v1
kind: Deployment
metadata: {name: scaled, namespace: `+blocked+`}
spec:
  replicas: 2
  selector: {matchLabels: {app: scaled}}
  template:
    metadata: {labels: {app: scaled}}
    spec: {containers: [{name: main, image: registry.k8s.io/pause:3.10, resources: {requests: {cpu: 100m}}}]}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: scaled, namespace: `+blocked+`}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: scaled}
  minReplicas: 1
  maxReplicas: 5
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}}]
---
# Past its deadline before it could start a pod: failed.
apiVersion: batch/v1
kind: Job
metadata: {name: blocked, namespace: `+blocked+`}
spec:
  activeDeadlineSeconds: 5
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: registry.k8s.io/pause:3.10}]
---
# Claimed by a claim that does not exist, to be deleted by a plugin that
# cannot delete local volumes: Failed.
apiVersion: v1
kind: PersistentVolume
metadata: {name: e2e-mixin-failed}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  storageClassName: e2e-mixin
  claimRef: {namespace: `+ns+`, name: gone, uid: 00000000-0000-0000-0000-000000000001}
  local: {path: /nonexistent}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [kwok-node-1]}]
`)
	t.Cleanup(func() {
		_, _ = kubectl("delete", "namespace", blocked, "--wait=false")
		_, _ = kubectl("delete", "namespace", nodes, "--wait=false")
		_, _ = kubectl("delete", "pv", "e2e-mixin-failed", "--wait=false")
	})
	// KubeHpaReplicasMismatch wants the current count unchanged for 15
	// minutes: kmetrics starts once the HPA has counted its 2 replicas (a 0
	// before them would be a change).
	eventually(t, 2*time.Minute, "HPA scaled counting its target's replicas", func() error {
		out, err := kubectl("-n", blocked, "get", "hpa", "scaled", "-o", "jsonpath={.status.currentReplicas}")
		if err != nil || strings.TrimSpace(out) != "2" {
			return fmt.Errorf("currentReplicas %q, %v", out, err)
		}
		return nil
	})
	k := startSecondKmetrics(t, "mixin", "--scrape.annotated=false", "--cluster-state.interval=10s",
		"--rules.file", rules, "--rules.evaluation-interval=5s")

	t.Run("every rule loads and evaluates without an error", func(t *testing.T) {
		eventually(t, 2*time.Minute, "45 alerts and 20 recording rules evaluated, none failing", func() error {
			body, err := k.query("/api/v1/rules")
			if err != nil {
				return err
			}
			var resp struct {
				Data struct {
					Groups []struct {
						Name  string
						Rules []struct {
							Name, Type, Health, LastError string
							LastEvaluation                time.Time
						}
					}
				}
			}
			if err := json.Unmarshal(body, &resp); err != nil {
				return err
			}
			alerts, records := 0, 0
			for _, g := range resp.Data.Groups {
				for _, r := range g.Rules {
					if r.LastError != "" || (r.Health != "ok" && r.Health != "") {
						return fmt.Errorf("%s/%s: %s %s", g.Name, r.Name, r.Health, r.LastError)
					}
					if r.LastEvaluation.IsZero() {
						return fmt.Errorf("%s/%s not evaluated yet", g.Name, r.Name)
					}
					if r.Type == "alerting" {
						alerts++
					} else {
						records++
					}
				}
			}
			if alerts != 45 || records != 20 {
				return fmt.Errorf("%d alerts, %d recording rules", alerts, records)
			}
			return nil
		})
	})

	type alert struct {
		name  string
		match map[string]string
	}
	in := alertLabels
	// In order: a case's resolution may make the next one's condition.
	cases := []struct {
		alerts  []alert
		resolve []string // kubectl arguments that end the condition
	}{
		// 3 pods (two of web, one stuck) of a quota of 3; then of 1
		// (exceeded), then of 10.
		{[]alert{{"KubeQuotaFullyUsed", in(ns, "resourcequota", "pods")}}, []string{"-n", ns, "patch", "resourcequota", "pods", "-p", `{"spec":{"hard":{"pods":"1"}}}`}},
		{[]alert{{"KubeQuotaExceeded", in(ns, "resourcequota", "pods")}}, []string{"-n", ns, "patch", "resourcequota", "pods", "-p", `{"spec":{"hard":{"pods":"10"}}}`}},
		{[]alert{{"KubePodNotReady", in(ns)}}, []string{"-n", ns, "delete", "deployment", "stuck"}},
		{[]alert{{"KubePdbNotEnoughHealthyPods", in(ns, "poddisruptionbudget", "web")}}, []string{"-n", ns, "delete", "pdb", "web"}},
		{[]alert{{"KubeHpaMaxedOut", in(ns, "horizontalpodautoscaler", "web")}}, []string{"-n", ns, "delete", "hpa", "web"}},
		{[]alert{{"KubeDeploymentReplicasMismatch", in(blocked, "deployment", "blocked")}, {"KubeDeploymentRolloutStuck", in(blocked, "deployment", "blocked")}},
			[]string{"-n", blocked, "delete", "deployment", "blocked"}},
		{[]alert{{"KubeStatefulSetReplicasMismatch", in(blocked, "statefulset", "blocked")}}, []string{"-n", blocked, "delete", "statefulset", "blocked"}},
		{[]alert{{"KubeDaemonSetRolloutStuck", in(blocked, "daemonset", "blocked")}, {"KubeDaemonSetNotScheduled", in(blocked, "daemonset", "blocked")}},
			[]string{"-n", blocked, "delete", "daemonset", "blocked"}},
		{[]alert{{"KubeJobFailed", in(blocked, "job_name", "blocked")}}, []string{"-n", blocked, "delete", "job", "blocked"}},
		{[]alert{{"KubeHpaReplicasMismatch", in(blocked, "horizontalpodautoscaler", "scaled")}}, []string{"-n", blocked, "delete", "hpa", "scaled"}},
		{[]alert{{"KubeCPUQuotaOvercommit", nil}, {"KubeMemoryQuotaOvercommit", nil}}, []string{"-n", blocked, "delete", "resourcequota", "overcommit"}},
		{[]alert{{"KubePersistentVolumeErrors", map[string]string{"persistentvolume": "e2e-mixin-failed"}}}, []string{"delete", "pv", "e2e-mixin-failed"}},
	}
	for _, c := range cases {
		t.Run(c.alerts[0].name+" fires and resolves", func(t *testing.T) {
			for _, a := range c.alerts {
				eventually(t, 3*time.Minute, a.name+" firing", alertFiring(k, a.name, a.match))
			}
			mustKubectl(t, c.resolve...)
			for _, a := range c.alerts {
				eventually(t, 2*time.Minute, a.name+" resolved", alertResolved(k, a.name, a.match))
			}
		})
	}
	t.Run("KubeStatefulSetUpdateNotRolledOut fires and resolves", func(t *testing.T) {
		// The template changes once the controller recorded the first
		// revision as current (before that, the new one would become it).
		eventually(t, time.Minute, "StatefulSet ondelete at a revision", func() error {
			out, err := kubectl("-n", blocked, "get", "statefulset", "ondelete", "-o", "jsonpath={.status.currentRevision}")
			if err != nil || strings.TrimSpace(out) == "" {
				return fmt.Errorf("currentRevision %q, %v", out, err)
			}
			return nil
		})
		mustKubectl(t, "-n", blocked, "patch", "statefulset", "ondelete", "-p",
			`{"spec":{"template":{"metadata":{"annotations":{"e2e.kmetrics.dev/revision":"2"}}}}}`)
		match := in(blocked, "statefulset", "ondelete")
		eventually(t, 3*time.Minute, "KubeStatefulSetUpdateNotRolledOut firing", alertFiring(k, "KubeStatefulSetUpdateNotRolledOut", match))
		mustKubectl(t, "-n", blocked, "delete", "statefulset", "ondelete")
		eventually(t, 2*time.Minute, "KubeStatefulSetUpdateNotRolledOut resolved", alertResolved(k, "KubeStatefulSetUpdateNotRolledOut", match))
	})
	t.Run("KubeDeploymentGenerationMismatch and KubeStatefulSetGenerationMismatch fire and resolve", func(t *testing.T) {
		generationMismatch(t, k, ns)
	})
	t.Run("KubeCPUOvercommit and KubeMemoryOvercommit fire and resolve", func(t *testing.T) {
		nodesOvercommitted(t, k, nodes)
	})
	t.Run("KubeDaemonSetMisScheduled fires and resolves", func(t *testing.T) {
		daemonSetMisScheduled(t, k, nodes)
	})
	t.Run("KubeNodeReadinessFlapping fires and resolves", func(t *testing.T) {
		readinessFlapping(t, k)
	})
	t.Run("KubeJobNotCompleted fires and resolves", func(t *testing.T) {
		jobNotCompleted(t, k, nodes)
	})
	t.Run("KubeQuotaAlmostFull fires and resolves", func(t *testing.T) {
		// 19 ConfigMaps of 20, above the alert's 90% (the namespace's
		// kube-root-ca.crt is one).
		for i := range 18 {
			mustKubectl(t, "-n", ns, "create", "configmap", fmt.Sprintf("c%d", i))
		}
		match := map[string]string{"namespace": ns, "resourcequota": "configmaps"}
		eventually(t, 3*time.Minute, "KubeQuotaAlmostFull firing", alertFiring(k, "KubeQuotaAlmostFull", match))
		mustKubectl(t, "-n", ns, "delete", "configmap", "c0", "c1", "c2", "c3", "c4")
		eventually(t, 2*time.Minute, "KubeQuotaAlmostFull resolved", alertResolved(k, "KubeQuotaAlmostFull", match))
	})
}

// immediateMixinRules writes the shipped kubernetes-mixin rules with every
// "for:" (15m and more) set to 0s — the expressions are what is tested —
// and returns the file.
func immediateMixinRules(t *testing.T) string {
	t.Helper()
	shipped, err := os.ReadFile(filepath.Join(root, "deploy", "base", "rules", "kubernetes-mixin.rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(t.TempDir(), "mixin.yaml")
	immediate := regexp.MustCompile(`(?m)^(\s+)for: \S+$`).ReplaceAll(shipped, []byte("${1}for: 0s"))
	if err := os.WriteFile(rules, immediate, 0o644); err != nil {
		t.Fatal(err)
	}
	return rules
}

// alertLabels are the labels an alert of namespace carries: namespace and
// the name/value pairs given.
func alertLabels(namespace string, pairs ...string) map[string]string {
	m := map[string]string{"namespace": namespace}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return m
}

type activeAlert struct {
	Labels map[string]string
	State  string
}

func activeAlerts(k *secondKmetrics) []activeAlert {
	body, err := k.query("/api/v1/alerts")
	if err != nil {
		return nil
	}
	var resp struct {
		Data struct{ Alerts []activeAlert }
	}
	_ = json.Unmarshal(body, &resp)
	return resp.Data.Alerts
}

// alertFiring, polled by eventually, passes once k's alert name whose labels
// include match fires; its error lists what is active instead.
func alertFiring(k *secondKmetrics, name string, match map[string]string) func() error {
	return func() error {
		if s := alertState(k, name, match); s != "firing" {
			return fmt.Errorf("%s%v %q; active: %v", name, match, s, activeAlerts(k))
		}
		return nil
	}
}

// alertResolved, polled by eventually, passes once no alert name whose
// labels include match is active (pending or firing) in k.
func alertResolved(k *secondKmetrics, name string, match map[string]string) func() error {
	return func() error {
		if s := alertState(k, name, match); s != "" {
			return fmt.Errorf("%s%v still %s", name, match, s)
		}
		return nil
	}
}

// alertState is the state of the alert whose labels include match ("" when
// none is active).
func alertState(k *secondKmetrics, name string, match map[string]string) string {
	for _, a := range activeAlerts(k) {
		if a.Labels["alertname"] != name {
			continue
		}
		ok := true
		for l, v := range match {
			ok = ok && a.Labels[l] == v
		}
		if ok {
			return strings.ToLower(a.State)
		}
	}
	return ""
}
