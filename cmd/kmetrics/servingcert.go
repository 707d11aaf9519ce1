package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kmetrics/kmetrics/pkg/servingcert"
)

// servingCertOptions are the flags of the self-managed serving
// certificate (pkg/servingcert).
type servingCertOptions struct {
	secret      string
	namespace   string
	service     string
	apiServices []string
	validity    time.Duration
	caValidity  time.Duration
}

func newServingCertOptions() servingCertOptions {
	return servingCertOptions{
		service:     "kmetrics",
		apiServices: []string{"v1.metrics.k8s.io", "v1beta1.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io", "v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io"},
		validity:    90 * 24 * time.Hour,
		caValidity:  10 * 365 * 24 * time.Hour,
	}
}

func (s *servingCertOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.secret, "serving-cert.secret", "", "Manage the serving certificate: a CA and a certificate for the Service, kept in this Secret (shared by replicas), renewed after two thirds of their life and served without a restart; the CA is written into the caBundle of --serving-cert.apiservices. Needs get/update on that Secret and get/update on those APIServices. Instead of --tls-cert-file.")
	fs.StringVar(&s.namespace, "serving-cert.namespace", "", "Namespace of the Secret and the Service (default: kmetrics' own, from its service account).")
	fs.StringVar(&s.service, "serving-cert.service", s.service, "The Service the APIServices point at: the certificate is for <service>.<namespace>.svc.")
	fs.StringSliceVar(&s.apiServices, "serving-cert.apiservices", s.apiServices, "APIServices whose caBundle kmetrics keeps; one that is missing, or points at another Service (KEDA's external metrics, say), is left alone.")
	fs.DurationVar(&s.validity, "serving-cert.validity", s.validity, "Lifetime of the serving certificate.")
	fs.DurationVar(&s.caValidity, "serving-cert.ca-validity", s.caValidity, "Lifetime of the CA; when it is renewed, the old one stays in the caBundle until it expires.")
}

func (s *servingCertOptions) validate(tlsCertFile string) []error {
	if s.secret == "" {
		return nil
	}
	var errs []error
	if tlsCertFile != "" {
		errs = append(errs, fmt.Errorf("--serving-cert.secret and --tls-cert-file exclude each other: one source of the serving certificate"))
	}
	if s.validity < time.Minute || s.caValidity < s.validity {
		errs = append(errs, fmt.Errorf("--serving-cert.validity must be at least 1m and at most --serving-cert.ca-validity"))
	}
	return errs
}

// servingCertNamespaceFile is where a pod learns its namespace.
const servingCertNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// newServingCert returns the certificate controller with its first
// certificate in hand (nil without --serving-cert.secret). kmetrics cannot
// serve without one: after two minutes of failing it exits, and the
// restart shows in the pod's status.
func newServingCert(ctx context.Context, s servingCertOptions, restConfig *rest.Config, client kubernetes.Interface) (dynamiccertificates.CertKeyContentProvider, error) {
	if s.secret == "" {
		return nil, nil
	}
	ns := s.namespace
	if ns == "" {
		ns = "kube-system"
		if b, err := os.ReadFile(servingCertNamespaceFile); err == nil && strings.TrimSpace(string(b)) != "" {
			ns = strings.TrimSpace(string(b))
		}
	}
	dyn, err := dynamic.NewForConfig(jsonConfig(restConfig))
	if err != nil {
		return nil, err
	}
	servingcert.RegisterMetrics()
	c, err := servingcert.New(client, dyn, servingcert.Config{
		Namespace: ns, Secret: s.secret, Service: s.service, APIServices: s.apiServices,
		Validity: s.validity, CAValidity: s.caValidity,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := c.WaitForCertificate(ctx); err != nil {
		return nil, err
	}
	klog.InfoS("Serving with the self-managed certificate", "secret", c.Name())
	return c, nil
}
