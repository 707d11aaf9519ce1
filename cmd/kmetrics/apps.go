package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
)

// appTransport reaches applications: no credentials, TLS verified against
// the system roots and the cluster CA.
func appTransport(cfg *rest.Config) (http.RoundTripper, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	ca := cfg.TLSClientConfig.CAData
	if len(ca) == 0 && cfg.TLSClientConfig.CAFile != "" {
		if ca, err = os.ReadFile(cfg.TLSClientConfig.CAFile); err != nil {
			return nil, fmt.Errorf("reading the cluster CA: %w", err)
		}
	}
	if len(ca) > 0 {
		pool.AppendCertsFromPEM(ca)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	t.MaxIdleConnsPerHost = 1
	return t, nil
}

// trimPod drops what no consumer of the full pod cache needs: cluster-state
// series read spec and phase, application scraping the prometheus.io
// annotations, labels and IP.
func trimPod(obj interface{}) (interface{}, error) {
	if p, ok := obj.(*corev1.Pod); ok {
		p.ManagedFields = nil
		for k := range p.Annotations {
			if !strings.HasPrefix(k, "prometheus.io/") {
				delete(p.Annotations, k)
			}
		}
		p.Status.Conditions, p.Status.ContainerStatuses, p.Status.InitContainerStatuses = nil, nil, nil
	}
	return obj, nil
}
