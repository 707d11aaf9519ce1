package servingcert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// The Secret's keys: cert-manager's names, so tools that read a TLS
// Secret find the serving pair and CA where they expect them.
const (
	keyCert   = "tls.crt"
	keyKey    = "tls.key"
	keyBundle = "ca.crt" // every CA still trusted, newest first
	keyCAKey  = "ca.key" // the newest CA's key
)

// clockSkew backdates every certificate: a node whose clock lags the one
// that issued it must not see it as not yet valid.
const clockSkew = 5 * time.Minute

// pki is what the Secret holds, parsed.
type pki struct {
	cas    []*x509.Certificate // newest first
	caKey  crypto.Signer
	leaf   *x509.Certificate
	leafPE []byte // tls.crt and tls.key, as stored
	keyPE  []byte
}

func (p *pki) ca() *x509.Certificate {
	if len(p.cas) == 0 {
		return nil
	}
	return p.cas[0]
}

// bundle is the PEM of every CA, newest first: what the APIServices trust.
func (p *pki) bundle() []byte {
	var b bytes.Buffer
	for _, c := range p.cas {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

func (p *pki) data() (map[string][]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(p.caKey)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		keyCert:   p.leafPE,
		keyKey:    p.keyPE,
		keyBundle: p.bundle(),
		keyCAKey:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
	}, nil
}

// parsePKI reads a Secret's data; an empty Secret (as shipped) is a nil pki
// and no error.
func parsePKI(data map[string][]byte) (*pki, error) {
	if len(data[keyBundle]) == 0 && len(data[keyCert]) == 0 {
		return nil, nil
	}
	p := &pki{leafPE: data[keyCert], keyPE: data[keyKey]}
	for rest := data[keyBundle]; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keyBundle, err)
		}
		p.cas = append(p.cas, c)
	}
	if len(p.cas) == 0 {
		return nil, fmt.Errorf("%s holds no certificate", keyBundle)
	}
	key, err := parseKey(data[keyCAKey])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyCAKey, err)
	}
	p.caKey = key
	b, _ := pem.Decode(p.leafPE)
	if b == nil {
		return nil, fmt.Errorf("%s holds no certificate", keyCert)
	}
	if p.leaf, err = x509.ParseCertificate(b.Bytes); err != nil {
		return nil, fmt.Errorf("%s: %w", keyCert, err)
	}
	if _, err := parseKey(p.keyPE); err != nil {
		return nil, fmt.Errorf("%s: %w", keyKey, err)
	}
	return p, nil
}

func parseKey(pemBytes []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%T is not a signing key", k)
	}
	return s, nil
}

// renewalDue is when a certificate is replaced: after two thirds of its
// life since it was issued (NotBefore is backdated by clockSkew), as
// cert-manager does by default.
func renewalDue(c *x509.Certificate) time.Time {
	issued := c.NotBefore.Add(clockSkew)
	return issued.Add(c.NotAfter.Sub(issued) * 2 / 3)
}

func newCA(now time.Time, validity time.Duration, name string) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name + "-ca@" + fmt.Sprint(now.Unix())},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

// newLeaf issues the serving certificate for dnsNames from the newest CA.
func (p *pki) newLeaf(now time.Time, validity time.Duration, dnsNames []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	notAfter := now.Add(validity)
	if ca := p.ca(); notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter // never outlive the CA that vouches for it
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: dnsNames[0]},
		DNSNames:     dnsNames,
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca(), key.Public(), p.caKey)
	if err != nil {
		return err
	}
	if p.leaf, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	p.leafPE = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	p.keyPE = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return nil
}

// signedByNewest tells whether the leaf chains to the newest CA.
func (p *pki) signedByNewest() bool {
	return p.leaf.CheckSignatureFrom(p.ca()) == nil
}

// trusted tells whether some CA of the bundle signed the leaf.
func (p *pki) trusted() bool {
	for _, c := range p.cas {
		if p.leaf.CheckSignatureFrom(c) == nil {
			return true
		}
	}
	return false
}

// covers tells whether the leaf names exactly dnsNames.
func (p *pki) covers(dnsNames []string) bool {
	return slices.Equal(p.leaf.DNSNames, dnsNames)
}

// pruneExpired drops CAs nobody can present a valid chain to any more.
func (p *pki) pruneExpired(now time.Time) {
	p.cas = slices.DeleteFunc(p.cas, func(c *x509.Certificate) bool { return c != p.cas[0] && now.After(c.NotAfter) })
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}
