//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// TestHelmChart checks deploy/helm/kmetrics against the real API server
// and against the kustomize manifests it must not drift from: with default
// values it renders exactly deploy/ (replicas: 2 exactly deploy/ha,
// certManager exactly deploy/with-cert-manager), every value away from its
// default still passes the server's validation, and a release installs,
// upgrades (keeping the certificates kmetrics wrote) and uninstalls.
func TestHelmChart(t *testing.T) {
	t.Parallel()
	helm := peerBinary(t, "HELM_BIN", "hack/build-helm.sh")
	chart := filepath.Join(root, "deploy", "helm", "kmetrics")
	values := filepath.Join(root, "test", "e2e", "testdata", "helm-values.yaml")
	run := runCmd

	t.Run("lint", func(t *testing.T) {
		run(t, nil, helm, "lint", "--strict", chart)
		run(t, nil, helm, "lint", "--strict", chart, "-f", values)
		// A mistyped mode is refused with the reason, not rendered as
		// something else.
		out, err := exec.Command(helm, "template", "kmetrics", chart, "--set", "servingCert.mode=selfmanaged").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "servingCert.mode must be selfManaged or certManager") {
			t.Errorf("servingCert.mode=selfmanaged: %v\n%s", err, out)
		}
		// A CA and no verification at once is a contradiction, not a choice.
		out, err = exec.Command(helm, "template", "kmetrics", chart, "--set", "kubelet.insecureTLS=true", "--set", "kubelet.certificateAuthority=x").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "kubelet.insecureTLS and kubelet.certificateAuthority exclude each other") {
			t.Errorf("kubelet.insecureTLS with a CA: %v\n%s", err, out)
		}
		// In the node's network the default port is the kubelet's: the pod
		// would never bind it.
		out, err = exec.Command(helm, "template", "kmetrics", chart, "--set", "hostNetwork=true").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "the kubelet already listens on the node's port 10250") {
			t.Errorf("hostNetwork on port 10250: %v\n%s", err, out)
		}
	})

	t.Run("defaults render the kustomize manifests", func(t *testing.T) {
		for _, c := range []struct {
			kustomize string
			set       []string
		}{
			{"deploy", nil},
			{"deploy/ha", []string{"--set", "replicas=2"}},
			{"deploy/with-cert-manager", []string{"--set", "servingCert.mode=certManager"}},
		} {
			want := manifestObjects(t, run(t, nil, "kubectl", "kustomize", filepath.Join(root, c.kustomize)))
			if len(want) < 15 {
				t.Fatalf("kubectl kustomize %s gave %d objects", c.kustomize, len(want))
			}
			got := manifestObjects(t, run(t, nil, helm, append([]string{"template", "kmetrics", chart, "-n", "kube-system"}, c.set...)...))
			for _, d := range diffObjects(want, got) {
				t.Errorf("helm template %v vs kubectl kustomize %s: %s", c.set, c.kustomize, d)
			}
		}
	})

	t.Run("the API server accepts default and non-default renderings", func(t *testing.T) {
		// The values file turns the ServiceMonitor on: its kind must exist.
		mustKubectl(t, "apply", "--server-side", "-f", filepath.Join(root, "deploy", "crds", "monitoring.coreos.com_servicemonitors.yaml"))
		for _, extra := range [][]string{nil, {"-f", values}} {
			rendered := run(t, nil, helm, append([]string{"template", "kmetrics", chart, "-n", "kube-system"}, extra...)...)
			run(t, rendered, "kubectl", "apply", "--dry-run=server", "-f", "-")
			// Every flag the chart passes is one kmetrics has.
			for _, obj := range manifestObjects(t, rendered) {
				if obj["kind"] != "StatefulSet" {
					continue
				}
				args := containerArgs(obj)
				cmd := exec.Command(filepath.Join(root, "bin", "kmetrics"), append(args, "--version")...)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("values %v: kmetrics refuses the chart's flags %v: %v\n%s", extra, args, err, out)
				}
			}
		}
	})

	t.Run("metrics-server's chart values reach the pod", func(t *testing.T) {
		rendered := manifestObjects(t, run(t, nil, helm, "template", "kmetrics", chart, "-n", "kube-system", "-f", values))
		var sts appsv1.StatefulSet
		decodeInto(t, rendered["StatefulSet kube-system/kmetrics"], &sts)
		pod := sts.Spec.Template.Spec
		c := pod.Containers[0]
		if !pod.HostNetwork || pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
			t.Errorf("hostNetwork %v, dnsPolicy %q", pod.HostNetwork, pod.DNSPolicy)
		}
		if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 4443 || c.Args[0] != "--secure-port=4443" {
			t.Errorf("port: %v, first flag %q; want 4443 both", c.Ports, c.Args[0])
		}
		if sc := pod.SecurityContext; sc == nil || *sc.RunAsUser != 1000 || *sc.RunAsGroup != 1000 || *sc.FSGroup != 1000 {
			t.Errorf("pod securityContext %+v", sc)
		}
		if sc := c.SecurityContext; sc == nil || !*sc.ReadOnlyRootFilesystem || !*sc.RunAsNonRoot || *sc.AllowPrivilegeEscalation {
			t.Errorf("container securityContext %+v", sc)
		}
		// args and extraArgs come last, in that order (they win).
		if n := len(c.Args); n < 2 || c.Args[n-2] != "--query.max-samples=10000000" || c.Args[n-1] != "--query.timeout=1m" {
			t.Errorf("args end %v", c.Args[max(0, len(c.Args)-3):])
		}
		var env []string
		for _, e := range c.Env {
			env = append(env, e.Name)
		}
		if strings.Join(env, ",") != "POD_NAME,GOMAXPROCS" {
			t.Errorf("env %v, want POD_NAME (HA) then GOMAXPROCS", env)
		}
		// The kubelet CA: a ConfigMap holding the PEM, mounted where the
		// flag points.
		var cm corev1.ConfigMap
		decodeInto(t, rendered["ConfigMap kube-system/kmetrics-kubelet-ca"], &cm)
		if !strings.HasPrefix(cm.Data["ca.crt"], "-----BEGIN CERTIFICATE-----\nMIIBkTCC") {
			t.Errorf("kubelet CA ConfigMap: %q", cm.Data["ca.crt"])
		}
		if !slices.Contains(c.Args, "--kubelet-certificate-authority=/etc/kmetrics/kubelet-ca/ca.crt") || slices.Contains(c.Args, "--kubelet-insecure-tls") {
			t.Errorf("kubelet CA flags: %v", c.Args)
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			mounted = mounted || (m.Name == "kubelet-ca" && m.MountPath == "/etc/kmetrics/kubelet-ca")
		}
		if !mounted {
			t.Errorf("kubelet CA not mounted: %v", c.VolumeMounts)
		}
		// Testing only: --kubelet-insecure-tls, and no CA.
		insecure := manifestObjects(t, run(t, nil, helm, "template", "kmetrics", chart, "-n", "kube-system", "--set", "kubelet.insecureTLS=true"))
		if args := containerArgs(insecure["StatefulSet kube-system/kmetrics"]); !slices.Contains(args, "--kubelet-insecure-tls") {
			t.Errorf("kubelet.insecureTLS: %v", args)
		}
		// The ServiceMonitor: scrapes the Service's https port with the
		// Prometheus' token, verifying kmetrics' certificate by its CA.
		sm := rendered["ServiceMonitor kube-system/kmetrics"]
		b, _ := json.Marshal(sm)
		for _, want := range []string{`"release":"kube-prometheus"`, `"port":"https"`, `"scheme":"https"`, `"interval":"15s"`,
			`"serverName":"kmetrics.kube-system.svc"`, `"secret":{"key":"ca.crt","name":"kmetrics-serving"}`, `"bearerTokenFile":"/var/run/secrets/kubernetes.io/serviceaccount/token"`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("ServiceMonitor lacks %s: %s", want, b)
			}
		}
		if _, ok := manifestObjects(t, run(t, nil, helm, "template", "kmetrics", chart))["ServiceMonitor default/kmetrics"]; ok {
			t.Error("a ServiceMonitor by default (it needs the operator's CRDs)")
		}
	})

	t.Run("install, upgrade, uninstall", func(t *testing.T) {
		const release, ns = "kmetrics-e2e", "e2e-helm"
		// The test cluster's APIServices belong to the shared kmetrics:
		// this release serves the groups without registering them.
		run(t, nil, helm, "install", release, chart, "-n", ns, "--create-namespace", "--set", "apiServices.register=false")
		defer func() { _, _ = kubectl("delete", "namespace", ns, "--wait=false") }()
		installed := manifestObjects(t, run(t, nil, helm, "get", "manifest", release, "-n", ns))

		// The release's objects are the kustomize manifests' (but the
		// APIServices), named after the release in its namespace.
		rename := func(kind, namespace, name string) string {
			if name == "system:aggregated-metrics-reader" {
				name = "system:" + release + ":aggregated-metrics-reader"
			} else {
				name = strings.Replace(name, "kmetrics", release, 1)
			}
			if namespace == "kube-system" && !(kind == "RoleBinding" && strings.HasSuffix(name, "-auth-reader")) {
				namespace = ns
			}
			return kind + " " + namespace + "/" + name
		}
		var want, got []string
		kustomized := manifestObjects(t, run(t, nil, "kubectl", "kustomize", filepath.Join(root, "deploy")))
		for _, obj := range kustomized {
			if kind, ns, name := objectKey(obj); kind != "APIService" {
				want = append(want, rename(kind, ns, name))
			}
		}
		for key, obj := range installed {
			kind, namespace, name := objectKey(obj)
			got = append(got, kind+" "+namespace+"/"+name)
			args := []string{"get", strings.ToLower(kind), name, "-o", "name"}
			if namespace != "" {
				args = append(args, "-n", namespace)
			}
			if _, err := kubectl(args...); err != nil {
				t.Errorf("%s: rendered but not in the cluster: %v", key, err)
			}
		}
		sort.Strings(want)
		sort.Strings(got)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("installed objects differ from the kustomize manifests':\n want %v\n got  %v", want, got)
		}
		for key, obj := range kustomized {
			if obj["kind"] != "StatefulSet" {
				continue
			}
			var wantArgs []string
			for _, a := range containerArgs(obj) {
				wantArgs = append(wantArgs, strings.Replace(a, "=kmetrics", "="+release, 1))
			}
			live := manifestObjects(t, run(t, nil, "kubectl", "get", "statefulset", release, "-n", ns, "-o", "json"))
			for _, obj := range live {
				if got := containerArgs(obj); !reflect.DeepEqual(got, wantArgs) {
					t.Errorf("%s: the release runs kmetrics with %v, the manifests with %v", key, got, wantArgs)
				}
			}
		}

		// What kmetrics writes into its Secret survives an upgrade.
		mustKubectl(t, "-n", ns, "patch", "secret", release+"-serving", "--type=merge", "-p", `{"data":{"ca.crt":"a2VwdA=="}}`)
		run(t, nil, helm, "upgrade", release, chart, "-n", ns, "--set", "apiServices.register=false", "--set", "metricResolution=30s")
		if got := mustKubectl(t, "-n", ns, "get", "secret", release+"-serving", "-o", `jsonpath={.data.ca\.crt}`); got != "a2VwdA==" {
			t.Errorf("helm upgrade blanked the serving certificate Secret (ca.crt %q)", got)
		}
		if args := mustKubectl(t, "-n", ns, "get", "statefulset", release, "-o", "jsonpath={.spec.template.spec.containers[0].args}"); !strings.Contains(args, "--metric-resolution=30s") {
			t.Errorf("upgrade not applied: %s", args)
		}

		run(t, nil, helm, "uninstall", release, "-n", ns)
		for _, obj := range installed {
			kind, namespace, name := objectKey(obj)
			args := []string{"get", strings.ToLower(kind), name, "--ignore-not-found", "-o", "name"}
			if namespace != "" {
				args = append(args, "-n", namespace)
			}
			if out, _ := kubectl(args...); strings.TrimSpace(out) != "" {
				t.Errorf("%s %s/%s left behind by helm uninstall", kind, namespace, name)
			}
		}
	})
}

// helmLabels are the labels the chart adds to the manifests' own.
var helmLabels = map[string]bool{"app.kubernetes.io/instance": true, "app.kubernetes.io/managed-by": true,
	"app.kubernetes.io/version": true, "helm.sh/chart": true}

// manifestObjects parses YAML or JSON objects by
// "kind namespace/name", the chart's own labels removed.
func manifestObjects(t *testing.T, raw []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 1<<20)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("parsing manifests: %v", err)
		}
		if obj == nil {
			continue
		}
		obj = stripLabels(obj).(map[string]any)
		kind, ns, name := objectKey(obj)
		out[kind+" "+ns+"/"+name] = obj
	}
}

func stripLabels(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range v {
			if !helmLabels[k] {
				m[k] = stripLabels(e)
			}
		}
		return m
	case []any:
		for i := range v {
			v[i] = stripLabels(v[i])
		}
	}
	return v
}

func objectKey(obj map[string]any) (kind, namespace, name string) {
	meta, _ := obj["metadata"].(map[string]any)
	kind, _ = obj["kind"].(string)
	namespace, _ = meta["namespace"].(string)
	name, _ = meta["name"].(string)
	return kind, namespace, name
}

func containerArgs(obj map[string]any) []string {
	var sts struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Args []string `json:"args"`
					} `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	b, _ := json.Marshal(obj)
	_ = json.Unmarshal(b, &sts)
	if len(sts.Spec.Template.Spec.Containers) == 0 {
		return nil
	}
	return sts.Spec.Template.Spec.Containers[0].Args
}

// decodeInto converts a parsed manifest object into a typed one.
func decodeInto(t *testing.T, obj map[string]any, into any) {
	t.Helper()
	if obj == nil {
		t.Fatalf("no such object rendered (for %T)", into)
	}
	b, err := json.Marshal(obj)
	if err == nil {
		err = json.Unmarshal(b, into)
	}
	if err != nil {
		t.Fatalf("decoding %T: %v", into, err)
	}
}

// diffObjects names what differs between two object sets.
func diffObjects(want, got map[string]map[string]any) []string {
	var diffs []string
	for key, w := range want {
		g, ok := got[key]
		switch {
		case !ok:
			diffs = append(diffs, key+": missing")
		case !reflect.DeepEqual(w, g):
			wj, _ := json.Marshal(w)
			gj, _ := json.Marshal(g)
			diffs = append(diffs, fmt.Sprintf("%s differs:\n want %s\n got  %s", key, wj, gj))
		}
	}
	for key := range got {
		if _, ok := want[key]; !ok {
			diffs = append(diffs, key+": not in the manifests")
		}
	}
	sort.Strings(diffs)
	return diffs
}
