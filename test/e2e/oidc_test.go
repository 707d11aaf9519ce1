//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// oidcAudience is the client ID of the identity provider's Grafana client:
// the audience of the tokens Grafana forwards, which the API server accepts.
const oidcAudience = "grafana"

// oidcIssuer is an OpenID Connect identity provider the test cluster's API
// server trusts (kube-apiserver --authentication-config, a JWT
// authenticator): it serves discovery and its signing key over TLS, and
// mints ID tokens as the provider would for a signed-in user. What kmetrics
// receives from Grafana's "Forward OAuth identity" is such a token; the API
// server, not kmetrics, decides whom it names (TokenReview).
type oidcIssuer struct {
	server *httptest.Server
	key    *ecdsa.PrivateKey
	keyID  string
}

// startOIDCIssuer serves discovery and JWKS on a loopback port. It must run
// before the API server starts (the authenticator fetches discovery when
// it starts) and until the cluster is down.
func startOIDCIssuer() (*oidcIssuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	i := &oidcIssuer{key: key, keyID: "e2e-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": i.url(), "jwks_uri": i.url() + "/keys",
			"id_token_signing_alg_values_supported": []string{"ES256"},
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
		})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: i.keyID, Algorithm: "ES256", Use: "sig"}}})
	})
	// httptest's TLS certificate names 127.0.0.1; the authentication
	// configuration carries it as the issuer's CA.
	i.server = httptest.NewTLSServer(mux)
	return i, nil
}

func (i *oidcIssuer) url() string { return i.server.URL }

func (i *oidcIssuer) close() { i.server.Close() }

// authenticationConfig is the API server's AuthenticationConfiguration
// trusting this issuer as a cluster would trust its company's identity
// provider: usernames from the email claim and groups from the groups
// claim, both prefixed "oidc:" so no token can claim a service account's
// or system: name. apiserver.config.k8s.io/v1 is GA from 1.34; older
// releases read v1beta1.
func (i *oidcIssuer) authenticationConfig(k8sMinor int) []byte {
	version := "v1"
	if k8sMinor < 34 {
		version = "v1beta1"
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: i.server.Certificate().Raw})
	return fmt.Appendf(nil, `apiVersion: apiserver.config.k8s.io/%s
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: %s
    audiences: [%s]
    certificateAuthority: |
      %s
  claimMappings:
    username: {claim: email, prefix: "oidc:"}
    groups: {claim: groups, prefix: "oidc:"}
`, version, i.url(), oidcAudience, strings.ReplaceAll(strings.TrimSpace(string(ca)), "\n", "\n      "))
}

// idToken is what the provider issues a signed-in user for Grafana.
type idToken struct {
	email    string
	groups   []string
	audience string
	expiry   time.Time
	// signer, when set, signs instead of the issuer's key (a forgery).
	signer *ecdsa.PrivateKey
}

// token mints the ID token.
func (i *oidcIssuer) token(t idToken) (string, error) {
	key := i.key
	if t.signer != nil {
		key = t.signer
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", i.keyID))
	if err != nil {
		return "", err
	}
	now := time.Now()
	if t.audience == "" {
		t.audience = oidcAudience
	}
	if t.expiry.IsZero() {
		t.expiry = now.Add(time.Hour)
	}
	claims := jwt.Claims{
		Issuer: i.url(), Subject: t.email, Audience: jwt.Audience{t.audience},
		IssuedAt: jwt.NewNumericDate(now.Add(-time.Minute)), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), Expiry: jwt.NewNumericDate(t.expiry),
	}
	user := map[string]any{"email": t.email, "email_verified": true, "groups": t.groups}
	return jwt.Signed(signer).Claims(claims).Claims(user).Serialize()
}

// oidc is the e2e cluster's identity provider (nil when it could not start:
// run fails first).
var oidc *oidcIssuer

// startClusterIdentityProvider starts the issuer and writes the API
// server's authentication configuration where hack/cluster.sh reads it.
func startClusterIdentityProvider(path string) error {
	var err error
	if oidc, err = startOIDCIssuer(); err != nil {
		return err
	}
	// A fresh clone has no .state yet: hack/cluster.sh makes it later.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, oidc.authenticationConfig(k8sMinor), 0o600); err != nil {
		return err
	}
	return os.Setenv("KMETRICS_AUTHENTICATION_CONFIG", path)
}
