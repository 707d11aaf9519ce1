//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testKubelet is a kubelet of the test's own: TLS with a serving
// certificate of the cluster CA (what kmetrics verifies), registered as a
// tainted Node whose InternalIP is ip. kwok cannot lie about its clock.
type testKubelet struct {
	node, ip string
}

// startTestKubelet serves h as a kubelet at ip:10250 and registers node.
func startTestKubelet(t *testing.T, node, ip string, h http.HandlerFunc) *testKubelet {
	t.Helper()
	cert := clusterSignedCert(t, ip)
	ln, err := tls.Listen("tcp", net.JoinHostPort(ip, "10250"), &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	kubectlApply(t, fmt.Sprintf(`
apiVersion: v1
kind: Node
metadata:
  name: %s
  labels: {type: e2e-test-kubelet}
spec:
  taints: [{key: e2e/test-kubelet, effect: NoSchedule}]
`, node))
	mustKubectl(t, "patch", "node", node, "--subresource=status", "--type=merge", "-p",
		fmt.Sprintf(`{"status":{"addresses":[{"type":"InternalIP","address":%q}]}}`, ip))
	t.Cleanup(func() { _, _ = kubectl("delete", "node", node, "--wait=false") })
	return &testKubelet{node: node, ip: ip}
}

// clusterSignedCert issues a serving certificate for ip from the e2e
// cluster's CA.
func clusterSignedCert(t *testing.T, ip string) tls.Certificate {
	t.Helper()
	certs := filepath.Join(state, "certs")
	caPEM, err := os.ReadFile(filepath.Join(certs, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(certs, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	caBlock, _ := pem.Decode(caPEM)
	keyBlock, _ := pem.Decode(keyPEM)
	if caBlock == nil || keyBlock == nil {
		t.Fatal("cannot read the cluster CA")
	}
	ca, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := x509.ParseECPrivateKey(keyBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "e2e-test-kubelet"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP(ip)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
