package servingcert

import (
	"crypto/x509"
	"fmt"
	"time"
)

// policy is when certificates are issued and replaced.
type policy struct {
	dnsNames   []string
	validity   time.Duration // of the serving certificate
	caValidity time.Duration
	// settle is how long a new CA is only trusted before it signs the
	// serving certificate: every replica has injected it into the
	// APIServices by then, so the aggregator trusts the new certificate
	// from its first handshake.
	settle time.Duration
}

// plan returns what the Secret should hold at now, and why it changed
// ("" when cur is right as it is). cur is nil for an empty Secret.
func (pol policy) plan(now time.Time, cur *pki) (*pki, string, error) {
	if cur == nil {
		ca, key, err := newCA(now, pol.caValidity, pol.dnsNames[0])
		if err != nil {
			return nil, "", err
		}
		next := &pki{cas: []*x509.Certificate{ca}, caKey: key}
		if err := next.newLeaf(now, pol.validity, pol.dnsNames); err != nil {
			return nil, "", err
		}
		return next, "issued a new CA and serving certificate", nil
	}
	next := &pki{cas: append([]*x509.Certificate(nil), cur.cas...), caKey: cur.caKey,
		leaf: cur.leaf, leafPE: cur.leafPE, keyPE: cur.keyPE}
	var reason string
	if now.After(renewalDue(next.ca())) {
		ca, key, err := newCA(now, pol.caValidity, pol.dnsNames[0])
		if err != nil {
			return nil, "", err
		}
		next.cas = append([]*x509.Certificate{ca}, next.cas...)
		next.caKey = key
		reason = "rotated the CA (the previous one stays trusted until it expires)"
	}
	before := len(next.cas)
	next.pruneExpired(now)
	if reason == "" && len(next.cas) != before {
		reason = "dropped an expired CA"
	}
	caCreated := next.ca().NotBefore.Add(clockSkew)
	switch {
	case !next.covers(pol.dnsNames):
		reason = fmt.Sprintf("reissued the serving certificate for %v", pol.dnsNames)
	case now.After(renewalDue(next.leaf)):
		reason = "renewed the serving certificate"
	case !next.signedByNewest() && (now.Sub(caCreated) >= pol.settle || !next.trusted()):
		reason = "reissued the serving certificate from the newest CA"
	default:
		return next, reason, nil
	}
	if err := next.newLeaf(now, pol.validity, pol.dnsNames); err != nil {
		return nil, "", err
	}
	return next, reason, nil
}
