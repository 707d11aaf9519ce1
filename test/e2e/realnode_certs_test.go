//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// refusedRenewalPolicy is the admission policy standing for whatever keeps
// a node from renewing its certificates (an approver down, a webhook
// refusing): it refuses the node's CertificateSigningRequests, and only
// that node's.
const refusedRenewalPolicy = "e2e-real-node-renewal-refused"

// expiringCertificates restarts the real node with client and serving
// certificates issued ten days ago that end in 20 hours, renewal on, while
// an admission policy refuses the node's CertificateSigningRequests:
// KubeletClientCertificateExpiration and KubeletServerCertificateExpiration
// fire at both severities (under a week, under a day), and the kubelet's
// failed renewals fire KubeletClientCertificateRenewalErrors and
// KubeletServerCertificateRenewalErrors. The policy gone, the node's
// requests are approved (as an operator does: nothing in a cluster approves
// a kubelet's serving certificate) and the controller-manager signs them:
// the expiry alerts resolve.
//
// The renewal alerts read five minutes of errors; it returns when the
// errors ended, for the caller to check them resolved minutes later (the
// node keeps renewal on, and its counters, across its later restarts).
func expiringCertificates(t *testing.T, node *realNode, k *secondKmetrics) (renewed time.Time) {
	t.Cleanup(func() {
		_, _ = kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", refusedRenewalPolicy, "--ignore-not-found")
	})
	nodeUser := "system:node:" + node.name
	kubectlApply(t, refusingPolicyWhen(refusedRenewalPolicy, `request.userInfo.username == "`+nodeUser+`"`, "renewal refused by the e2e test",
		`{apiGroups: [certificates.k8s.io], apiVersions: ["*"], operations: [CREATE], resources: [certificatesigningrequests]}`))
	// The policy must refuse the kubelet's first request: one that got
	// through would wait 15 minutes for an approval, counting no error.
	eventually(t, time.Minute, "the policy refuses the node's requests", func() error {
		err := nodeRequestsCertificate(t, node.name)
		if err == nil || !strings.Contains(err.Error(), "renewal refused by the e2e test") {
			return fmt.Errorf("a request as the node: %v", err)
		}
		return nil
	})

	if _, err := realNodeScript("restart-kubelet", "expiring"); err != nil {
		t.Fatal(err)
	}
	onNode := map[string]string{"node": node.name}
	for _, name := range []string{"KubeletClientCertificateExpiration", "KubeletServerCertificateExpiration"} {
		for _, severity := range []string{"warning", "critical"} {
			eventually(t, 3*time.Minute, name+" "+severity+" firing",
				alertFiring(k, name, map[string]string{"node": node.name, "severity": severity}))
		}
	}
	for _, name := range []string{"KubeletClientCertificateRenewalErrors", "KubeletServerCertificateRenewalErrors"} {
		eventually(t, 3*time.Minute, name+" firing", alertFiring(k, name, onNode))
	}
	ttl := instantQuery(k.query, `kubelet_certificate_manager_client_ttl_seconds{node="`+node.name+`"}`)
	t.Logf("client certificate TTL while refused: %v", ttl)

	mustKubectl(t, "delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", refusedRenewalPolicy)
	eventually(t, time.Minute, "the node's requests admitted again", func() error { return nodeRequestsCertificate(t, node.name) })
	renewed = time.Now()
	// The kubelet retries every 32 seconds; each request it makes is
	// approved until both certificates are renewed.
	eventually(t, 3*time.Minute, "both certificates renewed", func() error {
		if err := approveNodeRequests(nodeUser); err != nil {
			return err
		}
		both := instantQuery(k.query, `kubelet_certificate_manager_client_ttl_seconds{node="`+node.name+`"} > 604800
			and on(node) kubelet_certificate_manager_server_ttl_seconds{node="`+node.name+`"} > 604800`)
		if len(both) != 1 {
			return fmt.Errorf("TTLs: client %v, server %v",
				instantQuery(k.query, `kubelet_certificate_manager_client_ttl_seconds{node="`+node.name+`"}`),
				instantQuery(k.query, `kubelet_certificate_manager_server_ttl_seconds{node="`+node.name+`"}`))
		}
		return nil
	})
	for _, name := range []string{"KubeletClientCertificateExpiration", "KubeletServerCertificateExpiration"} {
		eventually(t, 3*time.Minute, name+" resolved", alertResolved(k, name, onNode))
	}
	return renewed
}

// nodeRequestsCertificate asks for a client certificate as the node would
// (impersonated, not stored: a server-side dry run), through admission.
func nodeRequestsCertificate(t *testing.T, node string) error {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	request := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	cmd := exec.Command("kubectl", "create", "--dry-run=server", "-f", "-",
		"--as", "system:node:"+node, "--as-group", "system:nodes", "--as-group", "system:authenticated")
	cmd.Stdin = strings.NewReader(fmt.Sprintf(`
apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {generateName: e2e-dry-run-}
spec:
  request: %s
  signerName: kubernetes.io/kube-apiserver-client-kubelet
  usages: [digital signature, client auth]
`, request))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// approveNodeRequests approves every pending CertificateSigningRequest the
// node made.
func approveNodeRequests(nodeUser string) error {
	out, err := kubectl("get", "csr", "-o",
		`jsonpath={range .items[*]}{.metadata.name} {.spec.username} {.status.conditions[*].type}{"\n"}{end}`)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[1] == nodeUser {
			if _, err := kubectl("certificate", "approve", f[0]); err != nil {
				return err
			}
		}
	}
	return nil
}
