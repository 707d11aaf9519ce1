//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// vpaRecommender is the Vertical Pod Autoscaler's recommender, built
// unchanged from the Go module proxy (hack/build-vpa.sh; make e2e sets
// VPA_RECOMMENDER), with its CRDs beside it.
func vpaRecommender(t *testing.T) (bin, crds string) {
	bin = peerBinary(t, "VPA_RECOMMENDER", "hack/build-vpa.sh")
	return bin, bin + ".crds.yaml"
}

// vpaOnRealNode: the VPA's recommender against kmetrics, both ways its
// users run it. A Deployment on the real node burns 300m for three minutes,
// then idles. Live: a recommender reading metrics.k8s.io (through the
// aggregator, from the shared kmetrics) recommends for a VPA in Off mode
// within a few loops. History: a recommender started after the burn, with
// --storage=prometheus against kmetrics' PromQL API (bearer token file,
// kmetrics' CA), recommends from that history — the live usage is idle by
// then, so only the history can say 300m.
func vpaOnRealNode(t *testing.T, node *realNode) {
	bin, crds := vpaRecommender(t)
	mustKubectl(t, "apply", "--server-side", "-f", crds)
	// The history: a kmetrics writing every pod label into kube_pod_labels,
	// what the recommender's --metric-for-pod-labels reads.
	k := startSecondKmetrics(t, "vpa", "--scrape.annotated=false", "--cluster-state.interval=10s",
		"--cluster-state.metric-labels-allowlist=pods=[*]")
	setLoad := loadBurner(t, node, realNS, "vpa-burn", 300)
	kubectlApply(t, `
apiVersion: autoscaling.k8s.io/v1
kind: VerticalPodAutoscaler
metadata: {name: vpa-live, namespace: `+realNS+`}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: vpa-burn}
  updatePolicy: {updateMode: "Off"}
`)
	t.Cleanup(func() {
		_, _ = kubectl("-n", realNS, "delete", "deployment", "vpa-burn", "--ignore-not-found")
		_, _ = kubectl("-n", realNS, "delete", "vpa", "--all", "--ignore-not-found")
	})
	burnStart := time.Now()
	eventually(t, 2*time.Minute, "the burner served by kubectl top", func() error {
		_, err := kubectl("-n", realNS, "top", "pod", "-l", "app=vpa-burn")
		return err
	})

	t.Run("live: a recommendation from metrics.k8s.io within a few loops", func(t *testing.T) {
		stop := runRecommender(t, bin, "live", "--recommender-interval=15s")
		defer stop()
		eventually(t, 3*time.Minute, "vpa-live's recommendation near the burn", recommendsNear("vpa-live", 300))
	})

	// The rest of three minutes of burning, then idling.
	time.Sleep(time.Until(burnStart.Add(3 * time.Minute)))
	setLoad(0)
	eventually(t, 2*time.Minute, "the burner idle in kmetrics' history", func() error {
		got := instantQuery(k.query, `sum(rate(container_cpu_usage_seconds_total{job="kubelet", namespace="`+realNS+`", container="burner"}[30s]))`)
		if len(got) != 1 || got[0].value > 0.05 {
			return fmt.Errorf("usage %v", got)
		}
		return nil
	})

	t.Run("history: the first loop recommends from kmetrics' PromQL history", func(t *testing.T) {
		kubectlApply(t, `
apiVersion: autoscaling.k8s.io/v1
kind: VerticalPodAutoscaler
metadata: {name: vpa-history, namespace: `+realNS+`}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: vpa-burn}
  updatePolicy: {updateMode: "Off"}
`)
		token := serviceAccountToken(t, "default", "e2e-vpa")
		mustKubectl(t, "create", "clusterrolebinding", "e2e-vpa-query-reader", "--clusterrole=kmetrics:query-reader", "--serviceaccount=default:e2e-vpa")
		t.Cleanup(func() { _, _ = kubectl("delete", "clusterrolebinding", "e2e-vpa-query-reader") })
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
		// The recommender reads its history once, at start, and goes on
		// without it after any error: it starts once kmetrics answers its
		// token (the binding seen by RBAC and by kmetrics' authorization
		// cache, which keeps a refusal for a while) with the burn and the
		// pod's labels.
		historyAnswered(t, k, token)
		stop := runRecommender(t, bin, "history", "--recommender-interval=1m",
			"--storage=prometheus", "--prometheus-address=https://127.0.0.1:"+k.port+"/prometheus",
			"--prometheus-bearer-token-file="+tokenFile,
			"--prometheus-cadvisor-job-name=kubelet", "--history-length=1h", "--history-resolution=30s",
			"--metric-for-pod-labels=kube_pod_labels{job=\"kube-state-metrics\"}[1h]", "--pod-label-prefix=label_",
			"--pod-namespace-label=namespace", "--pod-name-label=pod",
			"--container-namespace-label=namespace", "--container-pod-name-label=pod", "--container-name-label=container")
		defer stop()
		// The burner is idle by now (checked above): live usage alone gives
		// the minimum (25m), so a target near 300m can only come from the
		// history it read at start.
		eventually(t, 3*time.Minute, "vpa-history's recommendation near the burn", recommendsNear("vpa-history", 300))
	})
}

// historyAnswered waits until k answers, to token, the burn's CPU history and
// the burner pod's labels, as the recommender's history provider asks.
func historyAnswered(t *testing.T, k *secondKmetrics, token string) {
	t.Helper()
	get := k.queryAs(t, token)
	queries := map[string]string{
		"the burn": `max_over_time(rate(container_cpu_usage_seconds_total{job="kubelet", namespace="` + realNS +
			`", container="burner"}[30s])[1h:30s])`,
		"the pod's labels": `kube_pod_labels{job="kube-state-metrics", namespace="` + realNS + `", label_app="vpa-burn"}`,
	}
	eventually(t, time.Minute, "kmetrics answers the recommender's token with its history", func() error {
		for what, q := range queries {
			body, err := get("/api/v1/query?query=" + url.QueryEscape(q))
			if err != nil {
				return fmt.Errorf("%s: %v", what, err)
			}
			if !strings.Contains(string(body), `"metric"`) {
				return fmt.Errorf("%s: nothing yet: %s", what, body)
			}
		}
		return nil
	})
	t.Logf("the burn's peak in kmetrics' history: %v", instantQuery(get, queries["the burn"]))
}

// runRecommender starts a recommender as the cluster admin, its own
// checkpoints and metrics port; the returned func stops it.
func runRecommender(t *testing.T, bin, name string, args ...string) func() {
	t.Helper()
	log := filepath.Join(state, "logs", "vpa-recommender-"+name+".log")
	logf, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", filepath.Join(state, "admin.kubeconfig"),
		"--address=127.0.0.1:" + freePort(t), "--v=2", "--pod-recommendation-min-cpu-millicores=25"}, args...)...)
	// The recommender has no CA flag for Prometheus: it trusts the system
	// pool, which SSL_CERT_FILE replaces (kmetrics' CA is the cluster's here).
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+filepath.Join(state, "certs", "ca.crt"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logTailOnFailure(t, log) })
	return func() {
		cancel()
		_ = cmd.Wait()
		logf.Close()
	}
}

// recommendsNear: the VPA's target CPU for the burner is within what a
// 300m burn gives (the VPA adds a 15% margin and rounds to its buckets).
func recommendsNear(vpa string, millicores int) func() error {
	return func() error {
		out, err := kubectl("-n", realNS, "get", "vpa", vpa, "-o", "json")
		if err != nil {
			return err
		}
		var v struct {
			Status struct {
				Recommendation struct {
					ContainerRecommendations []struct {
						ContainerName string
						Target        map[string]string
					}
				}
			}
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			return err
		}
		recs := v.Status.Recommendation.ContainerRecommendations
		if len(recs) != 1 {
			return fmt.Errorf("recommendations %+v", recs)
		}
		cpu, err := resource.ParseQuantity(recs[0].Target["cpu"])
		if err != nil {
			return err
		}
		got := cpu.MilliValue()
		if got < int64(millicores)*8/10 || got > int64(millicores)*2 {
			return fmt.Errorf("target CPU %dm, the burner used %dm", got, millicores)
		}
		return nil
	}
}
