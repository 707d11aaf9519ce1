//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// refusedWithoutNodeMetrics runs a kmetrics whose account has everything
// but nodes/metrics: the real kubelet (webhook authorization) refuses it,
// kwok (no authorization) does not; kmetrics says so for that node only.
func refusedWithoutNodeMetrics(t *testing.T, node *realNode) {
	const sa = "kmetrics-no-node-metrics"
	mustKubectl(t, "-n", realNS, "create", "serviceaccount", sa)
	role := mustKubectl(t, "get", "clusterrole", "system:kmetrics", "-o", "json")
	var cr map[string]any
	if err := json.Unmarshal([]byte(role), &cr); err != nil {
		t.Fatal(err)
	}
	var rules []any
	for _, r := range cr["rules"].([]any) {
		if !strings.Contains(fmt.Sprint(r.(map[string]any)["resources"]), "nodes/metrics") {
			rules = append(rules, r)
		}
	}
	limited, _ := json.Marshal(map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
		"metadata": map[string]any{"name": "e2e:kmetrics-without-node-metrics"}, "rules": rules})
	kubectlApply(t, string(limited))
	subject := "--serviceaccount=" + realNS + ":" + sa
	mustKubectl(t, "create", "clusterrolebinding", "e2e:kmetrics-without-node-metrics", "--clusterrole=e2e:kmetrics-without-node-metrics", subject)
	mustKubectl(t, "create", "clusterrolebinding", "e2e:kmetrics-without-node-metrics:auth-delegator", "--clusterrole=system:auth-delegator", subject)
	mustKubectl(t, "-n", "kube-system", "create", "rolebinding", "e2e:kmetrics-without-node-metrics", "--role=extension-apiserver-authentication-reader", subject)
	t.Cleanup(func() {
		_, _ = kubectl("delete", "clusterrolebinding", "e2e:kmetrics-without-node-metrics", "e2e:kmetrics-without-node-metrics:auth-delegator")
		_, _ = kubectl("delete", "clusterrole", "e2e:kmetrics-without-node-metrics")
		_, _ = kubectl("-n", "kube-system", "delete", "rolebinding", "e2e:kmetrics-without-node-metrics")
	})
	if can := strings.TrimSpace(mustKubectlNoFail("auth", "can-i", "get", "nodes", "--subresource=metrics", "--as=system:serviceaccount:"+realNS+":"+sa)); can != "no" {
		t.Fatalf("the limited account can get nodes/metrics: %q", can)
	}
	token := strings.TrimSpace(mustKubectl(t, "-n", realNS, "create", "token", sa, "--duration", "1h"))
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	for _, args := range [][]string{
		{"config", "set-cluster", "local", "--server=https://127.0.0.1:" + apiserverPort, "--certificate-authority=" + filepath.Join(state, "certs", "ca.crt"), "--embed-certs=true"},
		{"config", "set-credentials", sa, "--token=" + token},
		{"config", "set-context", "local", "--cluster=local", "--user=" + sa},
		{"config", "use-context", "local"},
	} {
		mustKubectl(t, append(args, "--kubeconfig="+kubeconfig)...)
	}
	k := startSecondKmetrics(t, "no-node-metrics", "--kubeconfig", kubeconfig)
	log := filepath.Join(state, "logs", "kmetrics-no-node-metrics.log")
	eventually(t, time.Minute, "the real node refused, the kwok nodes served", func() error {
		metrics, err := k.raw("/metrics")
		if err != nil {
			return err
		}
		if n := sumMetric(string(metrics), "kmetrics_kubelet_scrape_errors_total", `node="`+node.name+`"`); n == 0 {
			return fmt.Errorf("no scrape error counted for %s", node.name)
		}
		if n := sumMetric(string(metrics), "kmetrics_kubelet_scrape_errors_total", `node="kwok-node-1"`); n != 0 {
			return fmt.Errorf("%v scrape errors for kwok-node-1", n)
		}
		nodes, err := k.raw("/apis/metrics.k8s.io/v1beta1/nodes")
		if err != nil {
			return err
		}
		if !strings.Contains(string(nodes), `"kwok-node-1"`) || strings.Contains(string(nodes), `"`+node.name+`"`) {
			return fmt.Errorf("want kwok-node-1 served and %s not: %.300s", node.name, nodes)
		}
		return logHas(log, `node="`+node.name+`"`, "403")
	})
}

// wrongCA restarts the kubelet serving a certificate from a CA nobody
// trusts: the suite's kmetrics fails that node with a TLS error and keeps
// serving every other; the kubelet back on the cluster CA is served again.
func wrongCA(t *testing.T, node *realNode) {
	if _, err := realNodeScript("restart-kubelet", "stranger"); err != nil {
		t.Fatal(err)
	}
	restored := false
	defer func() {
		if !restored {
			_, _ = realNodeScript("restart-kubelet", "cluster")
		}
	}()
	admin := adminCert(t)
	eventually(t, time.Minute, "the node fails with a TLS error, the others are served", func() error {
		// The line names the cause and both fixes (the CA, or insecure TLS).
		if err := logHas(km.log, `node="`+node.name+`"`, "x509: certificate signed by unknown authority",
			"not signed by a CA kmetrics trusts", "--kubelet-certificate-authority", "serverTLSBootstrap", "--kubelet-insecure-tls"); err != nil {
			return err
		}
		code, metrics := direct(t, "/metrics", "", &admin)
		if code != 200 {
			return fmt.Errorf("/metrics: %d", code)
		}
		before := sumMetric(metrics, "kmetrics_kubelet_scrape_errors_total", `node="`+node.name+`"`)
		if before == 0 {
			return fmt.Errorf("no scrape error counted for %s", node.name)
		}
		return othersFresh(node.name)
	})
	if _, err := realNodeScript("restart-kubelet", "cluster"); err != nil {
		t.Fatal(err)
	}
	restored = true
	back := time.Now()
	eventually(t, time.Minute, "the node served again", func() error {
		ts, err := nodeTimestamps()
		if err != nil {
			return err
		}
		if !ts[node.name].After(back) {
			return fmt.Errorf("%s's newest row is from %v, before the kubelet came back", node.name, ts[node.name])
		}
		return nil
	})
}

// nodeTimestamps is the timestamp of every node's row of metrics.k8s.io.
func nodeTimestamps() (map[string]time.Time, error) {
	out, err := kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes")
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []struct {
			Metadata  struct{ Name string }
			Timestamp time.Time
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, err
	}
	ts := map[string]time.Time{}
	for _, it := range list.Items {
		ts[it.Metadata.Name] = it.Timestamp
	}
	return ts, nil
}

// othersFresh checks that every kwok node's row is recent.
func othersFresh(except string) error {
	ts, err := nodeTimestamps()
	if err != nil {
		return err
	}
	for i := 1; i <= nodeCount; i++ {
		name := fmt.Sprintf("kwok-node-%d", i)
		if name == except {
			continue
		}
		if age := time.Since(ts[name]); age > 4*resolution {
			return fmt.Errorf("node %s: row %v old", name, age.Round(time.Second))
		}
	}
	return nil
}

// logHas checks that one line of a log holds every part.
func logHas(path string, parts ...string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(b), "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("no line of %s holds all of %q", filepath.Base(path), parts)
}
