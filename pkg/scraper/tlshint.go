package scraper

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// verificationHint explains a failed verification of a kubelet's serving
// certificate: the most common reason metrics-server's users end up with
// --kubelet-insecure-tls is an x509 error in the log that names neither
// the cause nor the fixes. It returns "" for any other error.
func verificationHint(err error) string {
	const fixes = " Fix: give kmetrics the CA that signs the kubelets' serving certificates" +
		" (--kubelet-certificate-authority; chart value kubelet.certificateAuthority), or have the kubelets" +
		" serve certificates signed by the cluster CA (kubelet serverTLSBootstrap: true, then approve their CSRs)." +
		" Testing only: --kubelet-insecure-tls (kubelet.insecureTLS) turns verification off."
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &unknown):
		return "the kubelet's serving certificate is not signed by a CA kmetrics trusts (self-signed kubelet certificates, as kind and kubeadm issue by default)." + fixes
	case errors.As(err, &hostname):
		return "the kubelet's serving certificate does not name the address kmetrics dialled (see --kubelet-preferred-address-types)." + fixes
	case errors.As(err, &invalid):
		return "the kubelet's serving certificate is invalid (expired, not yet valid, or not for serving)." + fixes
	case errors.As(err, &verify):
		return "the kubelet's serving certificate failed verification." + fixes
	}
	return ""
}
