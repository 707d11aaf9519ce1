//go:build e2e

package e2e

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// dayTwo: an upgrade to a rebuilt image under another tag, whose new pod
// serves kubectl top at once (from the index snapshot the old one wrote)
// and still answers queries over samples from before; the pod deleted by
// hand comes back with its history; helm rollback; helm uninstall leaves
// the PVC and nothing else.
func (ic *inCluster) dayTwo(t *testing.T) {
	before := time.Now().Add(-20 * time.Second)
	at := fmt.Sprintf("%.3f", float64(before.UnixMilli())/1000)
	historyKept := func(after string) {
		t.Helper()
		eventually(t, 2*time.Minute, "samples from before the upgrade, "+after, func() error {
			expr := "count(node_cpu_usage_seconds_total @ " + at + ")"
			if _, err := ic.reader("/api/v1/query?query=" + url.QueryEscape(expr)); err != nil {
				return err
			}
			if got := instantQuery(ic.reader, expr); len(got) != 1 || got[0].value < 1 {
				return fmt.Errorf("node CPU series at %s: %v", at, got)
			}
			return nil
		})
	}
	historyKept("before it")

	first := ic.pod(t)
	ic.rebuiltImage(t, "e2e-2")
	runCmd(t, nil, ic.helm, "upgrade", icRelease, ic.chart, "-n", icNS, "-f", ic.values, "--set", "image.tag=e2e-2", "--wait", "--timeout", "5m")
	upgraded := ic.podReplaced(t, first)
	if upgraded.image != icRepo+":e2e-2" || upgraded.imageID == first.imageID {
		t.Errorf("after the upgrade the pod runs %s (%s), before %s (%s)", upgraded.image, upgraded.imageID, first.image, first.imageID)
	}
	ic.topAtOnce(t)
	historyKept("after the upgrade")

	mustKubectl(t, "-n", icNS, "delete", "pod", icRelease+"-0", "--wait=false")
	ic.podReplaced(t, upgraded)
	historyKept("after the pod was deleted")

	runCmd(t, nil, ic.helm, "rollback", icRelease, "-n", icNS, "--wait", "--timeout", "5m")
	rolledBack := ic.podReplaced(t, upgraded)
	if rolledBack.image != icRepo+":e2e-1" {
		t.Errorf("after the rollback the pod runs %s", rolledBack.image)
	}
	historyKept("after the rollback")

	runCmd(t, nil, ic.helm, "uninstall", icRelease, "-n", icNS, "--wait", "--timeout", "3m")
	eventually(t, 2*time.Minute, "only the PVC is left in the release's namespace", func() error {
		out, err := kubectl("-n", icNS, "get", "all,configmaps,secrets,serviceaccounts,roles,rolebindings,servicemonitors,endpointslices,pvc", "-o", "name")
		if err != nil {
			return err
		}
		left := strings.Fields(out)
		sort.Strings(left)
		want := "configmap/kube-root-ca.crt persistentvolumeclaim/data-" + icRelease + "-0 serviceaccount/default"
		if strings.Join(left, " ") != want {
			return fmt.Errorf("left %v, want %s", left, want)
		}
		return nil
	})
	if phase := mustKubectl(t, "-n", icNS, "get", "pvc", "data-"+icRelease+"-0", "-o", "jsonpath={.status.phase}"); phase != "Bound" {
		t.Errorf("the PVC is %s after uninstall", phase)
	}
	for _, kind := range []string{"clusterroles", "clusterrolebindings", "apiservices"} {
		out := mustKubectl(t, "get", kind, "-l", "app.kubernetes.io/instance="+icRelease, "-o", "name")
		if strings.TrimSpace(out) != "" {
			t.Errorf("left by helm uninstall: %s", out)
		}
	}
}

// uninstalled: the release is gone (helm knows no such release).
func (ic *inCluster) uninstalled() bool {
	out, err := exec.Command(ic.helm, "status", icRelease, "-n", icNS).CombinedOutput()
	return err != nil && strings.Contains(string(out), "not found")
}

// icPod is what identifies one incarnation of the kmetrics pod.
type icPod struct{ uid, image, imageID string }

func (ic *inCluster) pod(t *testing.T) icPod {
	t.Helper()
	out := mustKubectl(t, "-n", icNS, "get", "pod", icRelease+"-0", "-o",
		`jsonpath={.metadata.uid} {.spec.containers[0].image} {.status.containerStatuses[0].imageID}`)
	f := strings.Fields(out)
	if len(f) != 3 {
		t.Fatalf("pod %s: %q", icRelease+"-0", out)
	}
	return icPod{uid: f[0], image: f[1], imageID: f[2]}
}

// podReplaced waits for a Ready pod other than old, and the APIServices
// available through it.
func (ic *inCluster) podReplaced(t *testing.T, old icPod) icPod {
	t.Helper()
	eventually(t, 3*time.Minute, "a new kmetrics pod Ready", func() error {
		out, err := kubectl("-n", icNS, "get", "pod", icRelease+"-0", "-o", `jsonpath={.metadata.uid} {.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil {
			return err
		}
		if f := strings.Fields(out); len(f) != 2 || f[0] == old.uid || f[1] != "True" {
			return fmt.Errorf("pod: %q (old uid %s)", out, old.uid)
		}
		return nil
	})
	mustKubectl(t, "wait", "--for=condition=Available", "--timeout=90s", "apiservice/v1.metrics.k8s.io", "apiservice/v1beta1.metrics.k8s.io")
	return ic.pod(t)
}

// topAtOnce: right after the new pod turned Ready, kubectl top answers for
// the real node before two scrapes of its own could have (10 s apart):
// from the snapshot of the index the old pod wrote on its way out.
func (ic *inCluster) topAtOnce(t *testing.T) {
	start := time.Now()
	var err error
	for i := 0; i < 3; i++ {
		if _, err = kubectl("top", "node", ic.node.name); err == nil {
			t.Logf("kubectl top node answered %v after the new pod was available", time.Since(start).Round(100*time.Millisecond))
			return
		}
		time.Sleep(time.Second)
	}
	t.Errorf("kubectl top node right after the upgrade: %v", err)
}

// rebuiltImage builds kmetrics again as another version (a relink) into
// an image of its own, imported under tag.
func (ic *inCluster) rebuiltImage(t *testing.T, tag string) {
	dir := t.TempDir()
	build := exec.Command("go", "build", "-buildvcs=false", "-ldflags", "-s -w -X main.version="+tag, "-o", filepath.Join(dir, "kmetrics"), "./cmd/kmetrics")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	img := exec.Command("go", "run", ".", "-out", filepath.Join(dir, "image"), "-version", tag, "linux/"+runtime.GOARCH+"="+filepath.Join(dir, "kmetrics"))
	img.Dir = filepath.Join(root, "hack", "image")
	img.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := img.CombinedOutput(); err != nil {
		t.Fatalf("hack/image: %v\n%s", err, out)
	}
	if _, err := realNodeScript("import-image", filepath.Join(dir, "image.tar"), icRepo+":"+tag); err != nil {
		t.Fatal(err)
	}
}
