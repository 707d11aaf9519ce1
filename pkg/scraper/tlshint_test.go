package scraper

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestVerificationHint dials a real TLS server the ways a kubelet fails
// verification; each error gets a hint naming the cause and both fixes,
// any other error none.
func TestVerificationHint(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	trusting := x509.NewCertPool()
	trusting.AddCert(srv.Certificate())
	get := func(cfg *tls.Config, url string) error {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, c := range []struct {
		name  string
		err   error
		cause string // "" when no hint is due
	}{
		{"unknown authority", get(&tls.Config{RootCAs: x509.NewCertPool()}, srv.URL), "not signed by a CA kmetrics trusts"},
		{"wrong name", get(&tls.Config{RootCAs: trusting, ServerName: "node-7.example"}, srv.URL), "does not name the address"},
		{"refused", get(&tls.Config{}, "https://127.0.0.1:1"), ""},
		{"other", errors.New("unexpected EOF"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.err == nil {
				t.Fatal("the request succeeded: the case tests nothing")
			}
			hint := verificationHint(c.err)
			if c.cause == "" {
				if hint != "" {
					t.Fatalf("hint %q for %v", hint, c.err)
				}
				return
			}
			for _, want := range []string{c.cause, "--kubelet-certificate-authority", "kubelet.certificateAuthority", "serverTLSBootstrap", "--kubelet-insecure-tls"} {
				if !strings.Contains(hint, want) {
					t.Errorf("hint for %v lacks %q: %s", c.err, want, hint)
				}
			}
		})
	}
}
