//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// olderKubectl is a kubectl from before metrics.k8s.io/v1 (the machine's
// own, 1.33): its top reads v1beta1 only.
func olderKubectl(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("KMETRICS_OLDER_KUBECTL")
	if bin == "" {
		bin = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the older kubectl (KMETRICS_OLDER_KUBECTL): %v", err)
	}
	return bin
}

// kubectl 1.37 reads metrics.k8s.io/v1 in protobuf, an older kubectl
// v1beta1; both print the same rows, and both versions hold the same objects.
// On an older cluster (K8S_VERSION=v1.35.4) its kubectl reads v1beta1.
func TestMetricsAPIVersions(t *testing.T) {
	t.Parallel()
	const ns = "e2e-versions"
	deployment(t, ns, "web", 2, "250m", "64Mi", "100m")
	deployment(t, ns, "batch", 1, "600m", "160Mi", "100m")
	older := olderKubectl(t)
	mustKubectl(t, "wait", "--for=condition=Available", "apiservice/v1.metrics.k8s.io", "apiservice/v1beta1.metrics.k8s.io", "--timeout=60s")

	client := mustKubectl(t, "version", "--client", "-o", "json")
	if !strings.Contains(client, fmt.Sprintf(`"minor": "%d"`, k8sMinor)) {
		t.Fatalf("kubectl on PATH is not the cluster's 1.%d:\n%s", k8sMinor, client)
	}
	// kubectl reads metrics.k8s.io/v1 from 1.37 on.
	clusterKubectlReads := "v1beta1"
	if k8sMinor >= 37 {
		clusterKubectlReads = "v1"
	}
	eventually(t, 90*time.Second, "every pod served", podsServed(ns, 3))

	t.Run("the cluster's kubectl reads "+clusterKubectlReads+" in protobuf, the older kubectl v1beta1", func(t *testing.T) {
		// -v=8 logs each request's URL (as -v=6 does) and the response's
		// headers, where the encoding shows.
		_, log, err := kubectlBinary("kubectl", "-v=8", "top", "pods", "-n", ns)
		if err != nil {
			t.Fatal(err)
		}
		metricsGET := regexp.MustCompile(`verb="GET" url="https://[^"]+/apis/metrics\.k8s\.io/(v1|v1beta1)/namespaces/` + ns + `/pods"`)
		if got := metricsGET.FindAllStringSubmatch(log, -1); len(got) != 1 || got[0][1] != clusterKubectlReads {
			t.Fatalf("kubectl 1.%d metrics requests %v, want one to %s; log:\n%s", k8sMinor, got, clusterKubectlReads, log)
		}
		if !strings.Contains(responseTo(log, "/apis/metrics.k8s.io/"+clusterKubectlReads+"/namespaces/"+ns+"/pods"), "Content-Type: application/vnd.kubernetes.protobuf") {
			t.Fatalf("kubectl 1.%d did not get protobuf from %s:\n%s", k8sMinor, clusterKubectlReads, log)
		}
		_, log, err = kubectlBinary(older, "-v=6", "top", "pods", "-n", ns)
		if err != nil {
			t.Fatal(err)
		}
		if got := metricsGET.FindAllStringSubmatch(log, -1); len(got) != 1 || got[0][1] != "v1beta1" {
			t.Fatalf("the older kubectl's metrics requests %v, want one to v1beta1; log:\n%s", got, log)
		}
	})

	// Each form of `kubectl top` a 1.37 user types, from both kubectls.
	// The two read a moment apart: a scrape in between can move a value,
	// so they are compared until two reads agree.
	pod := strings.Fields(mustKubectl(t, "get", "pods", "-n", ns, "-l", "app=batch", "-o", "name"))[0]
	for _, args := range [][]string{
		{"top", "nodes"},
		{"top", "nodes", "--sort-by=cpu"},
		{"top", "nodes", "kwok-node-1"},
		{"top", "pods", "-n", ns},
		{"top", "pods", "-n", ns, "--containers"},
		{"top", "pods", "-n", ns, "--sum"},
		{"top", "pods", "-n", ns, "--sort-by=memory"},
		{"top", "pods", "-n", ns, "--sort-by=cpu", "--no-headers"},
		{"top", "pods", "-n", ns, "-l", "app=web"},
		{"top", "pods", "-A", "-l", "app=batch"},
		{"top", "pod", strings.TrimPrefix(pod, "pod/"), "-n", ns},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			eventually(t, 60*time.Second, "both kubectls print the same rows", func() error {
				newer, err := kubectl(args...)
				if err != nil {
					return err
				}
				old, _, err := kubectlBinary(older, args...)
				if err != nil {
					return err
				}
				// The real node is shared and may come and go meanwhile.
				newer, old = withoutRow(newer, "real-node"), withoutRow(old, "real-node")
				if len(parseTop(newer)) == 0 && !strings.Contains(strings.Join(args, " "), "no-headers") {
					return fmt.Errorf("no rows:\n%s", newer)
				}
				if newer != old {
					return fmt.Errorf("kubectl 1.37:\n%s\nolder kubectl:\n%s", newer, old)
				}
				return nil
			})
		})
	}

	// --show-swap is newer than the older kubectl. kmetrics serves cpu and
	// memory, as metrics-server v0.8.0 does: a pod's swap prints as 0Mi and
	// a node without swap capacity as <unknown>, as against metrics-server.
	t.Run("kubectl 1.37 top --show-swap", func(t *testing.T) {
		for _, args := range [][]string{{"top", "pods", "-n", ns, "--show-swap"}, {"top", "nodes", "--show-swap"}} {
			rows := parseTop(mustKubectl(t, args...))
			if len(rows) == 0 {
				t.Fatalf("%v: no rows", args)
			}
			for _, r := range rows {
				if args[1] == "nodes" && !strings.HasPrefix(r["NAME"], "kwok-node-") {
					// Another test's node (the real node, the hostile
					// tenants'): unserved at times, it prints <unknown>.
					continue
				}
				swap, ok := r["SWAP(bytes)"]
				if !ok || (args[1] == "pods" && swap != "0Mi") || (args[1] == "nodes" && swap != "<unknown>") {
					t.Fatalf("%v: row %v", args, r)
				}
				if _, err := millicores(r["CPU(cores)"]); err != nil {
					t.Fatalf("%v: row %v: %v", args, r, err)
				}
			}
		}
	})

	t.Run("get --raw of both versions returns the same objects", func(t *testing.T) {
		for _, path := range []string{"/nodes", "/nodes/kwok-node-2", "/pods", "/namespaces/" + ns + "/pods", "/namespaces/" + ns + "/pods?labelSelector=app%3Dweb", "/namespaces/" + ns + "/pods/" + strings.TrimPrefix(pod, "pod/")} {
			eventually(t, 60*time.Second, path+" equal in v1 and v1beta1", func() error {
				v1, err := kubectl("get", "--raw", "/apis/metrics.k8s.io/v1"+path)
				if err != nil {
					return err
				}
				beta, err := kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1"+path)
				if err != nil {
					return err
				}
				a, b := comparable(t, v1, "metrics.k8s.io/v1"), comparable(t, beta, "metrics.k8s.io/v1beta1")
				if a != b {
					return fmt.Errorf("v1:\n%s\nv1beta1:\n%s", a, b)
				}
				if strings.Count(a, `"usage"`) == 0 {
					return fmt.Errorf("no usage in %s", a)
				}
				return nil
			})
		}
	})

	t.Run("kubectl get prints tables of both resources", func(t *testing.T) {
		out := mustKubectl(t, "get", "podmetrics", "-n", ns)
		if rows := parseTop(out); len(rows) != 3 || !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "WINDOW") {
			t.Fatalf("kubectl get podmetrics:\n%s", out)
		}
		out = mustKubectl(t, "get", "nodemetrics.v1.metrics.k8s.io", "kwok-node-1")
		if !strings.Contains(out, "kwok-node-1") || !strings.Contains(out, "CPU") {
			t.Fatalf("kubectl get nodemetrics:\n%s", out)
		}
	})

	t.Run("a bad selector on v1 is a 400 that names it", func(t *testing.T) {
		for _, q := range []string{"labelSelector=app+in+(", "fieldSelector=spec.nodeName%3Dx"} {
			_, err := kubectl("get", "--raw", "/apis/metrics.k8s.io/v1/namespaces/"+ns+"/pods?"+q)
			param := strings.SplitN(q, "=", 2)[0]
			if err == nil || !strings.Contains(err.Error(), "BadRequest") && !strings.Contains(err.Error(), "400") {
				t.Fatalf("%s: want a 400, got %v", q, err)
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(param[:5])) {
				t.Fatalf("%s: the error does not name the %s: %v", q, param, err)
			}
		}
	})
}

// responseTo is the response headers kubectl -v=8 logged for its request
// to path: from the "Response" line after the request to the end of its
// header block.
func responseTo(log, path string) string {
	i := strings.Index(log, path)
	if i < 0 {
		return ""
	}
	rest := log[i:]
	j := strings.Index(rest, `"Response"`)
	if j < 0 {
		return ""
	}
	rest = rest[j:]
	if k := strings.Index(rest, "\n >"); k >= 0 {
		rest = rest[:k]
	}
	return rest
}

func withoutRow(out, name string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}

// comparable is a metrics.k8s.io answer with its apiVersion checked and
// removed, and without the creation times (the time of the request).
func comparable(t *testing.T, body, apiVersion string) string {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal([]byte(body), &obj); err != nil {
		t.Fatalf("%s: %v: %s", apiVersion, err, body)
	}
	if obj["apiVersion"] != apiVersion {
		t.Fatalf("apiVersion %v, want %s", obj["apiVersion"], apiVersion)
	}
	delete(obj, "apiVersion")
	strip := func(o map[string]any) {
		if md, ok := o["metadata"].(map[string]any); ok {
			delete(md, "creationTimestamp")
		}
	}
	strip(obj)
	items, _ := obj["items"].([]any)
	for _, it := range items {
		strip(it.(map[string]any))
	}
	b, _ := json.Marshal(obj)
	return string(b)
}
