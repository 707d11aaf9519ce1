// Package servingcert gives kmetrics a serving certificate of its own: a CA
// and a certificate for its Service, kept in one Secret, renewed before
// they expire, served without a restart, and the CA injected into the
// caBundle of kmetrics' APIServices so the aggregator verifies it. What
// KEDA does with cert-controller, without controller-runtime.
//
// Replicas share the Secret: each reads it, and only writes when it is
// empty or due for renewal, with the version it read; the loser of a
// conflict takes the winner's certificates.
package servingcert

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/klog/v2"
)

// Config names the Secret, the Service the certificate is for, and the
// APIServices to inject the CA into.
type Config struct {
	Namespace string
	Secret    string
	Service   string
	// APIServices get the CA bundle when they point at Service in
	// Namespace; others (another adapter's, say) are left alone.
	APIServices []string
	Validity    time.Duration // of the serving certificate
	CAValidity  time.Duration
}

var apiServicesResource = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// Controller keeps the serving certificate; it is the generic API server's
// certificate provider (dynamiccertificates), so a renewed certificate is
// served from the next handshake.
type Controller struct {
	cfg         Config
	pol         policy
	interval    time.Duration
	secrets     corev1client.SecretInterface
	apiServices dynamic.ResourceInterface
	now         func() time.Time

	mu        sync.Mutex
	cert, key []byte
	listeners []dynamiccertificates.Listener
	foreign   map[string]bool // APIServices reported as someone else's
}

var (
	_ dynamiccertificates.CertKeyContentProvider = (*Controller)(nil)
	_ dynamiccertificates.ControllerRunner       = (*Controller)(nil)
)

// New returns a controller; nothing is read or written before RunOnce.
func New(client kubernetes.Interface, dyn dynamic.Interface, cfg Config) (*Controller, error) {
	if cfg.Namespace == "" || cfg.Secret == "" || cfg.Service == "" {
		return nil, fmt.Errorf("serving certificate: namespace, Secret and Service are required")
	}
	if cfg.Validity < time.Minute || cfg.CAValidity < cfg.Validity {
		return nil, fmt.Errorf("serving certificate: validity %v must be at least 1m and at most the CA's %v", cfg.Validity, cfg.CAValidity)
	}
	svc := cfg.Service + "." + cfg.Namespace
	// Checked often enough to renew a short-lived certificate in time,
	// never more than once a minute for a year-long one.
	interval := min(max(cfg.Validity/30, time.Second), time.Minute)
	return &Controller{
		cfg: cfg,
		pol: policy{
			dnsNames:   []string{svc + ".svc", cfg.Service, svc, svc + ".svc.cluster.local"},
			validity:   cfg.Validity,
			caValidity: cfg.CAValidity,
			settle:     3 * interval,
		},
		interval:    interval,
		secrets:     client.CoreV1().Secrets(cfg.Namespace),
		apiServices: dyn.Resource(apiServicesResource),
		now:         time.Now,
		foreign:     map[string]bool{},
	}, nil
}

// Name identifies the provider in the API server's logs.
func (c *Controller) Name() string { return "secret/" + c.cfg.Namespace + "/" + c.cfg.Secret }

// CurrentCertKeyContent is the serving pair in force.
func (c *Controller) CurrentCertKeyContent() ([]byte, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert, c.key
}

// AddListener is told when the serving pair changes.
func (c *Controller) AddListener(l dynamiccertificates.Listener) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners = append(c.listeners, l)
}

// WaitForCertificate runs RunOnce until it succeeds: kmetrics cannot serve
// before it has a certificate. It gives up when ctx ends.
func (c *Controller) WaitForCertificate(ctx context.Context) error {
	backoff := time.Second
	for {
		err := c.RunOnce(ctx)
		if err == nil {
			return nil
		}
		klog.ErrorS(err, "No serving certificate yet", "secret", c.Name(), "retryIn", backoff)
		select {
		case <-ctx.Done():
			return fmt.Errorf("no serving certificate: %w", err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// Run keeps the certificate and the caBundles right until ctx ends.
func (c *Controller) Run(ctx context.Context, _ int) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.RunOnce(ctx); err != nil {
				klog.ErrorS(err, "Keeping the serving certificate", "secret", c.Name())
			}
		}
	}
}

// RunOnce reads the Secret, renews what is due, serves the result and
// injects the CA bundle.
func (c *Controller) RunOnce(ctx context.Context) error {
	p, err := c.sync(ctx)
	syncSuccessful.Set(boolGauge(err == nil))
	if err != nil {
		return err
	}
	c.serve(p)
	if err := c.inject(ctx, p.bundle()); err != nil {
		syncSuccessful.Set(0)
		return err
	}
	return nil
}

// sync returns the Secret's certificates after renewing what is due.
func (c *Controller) sync(ctx context.Context) (*pki, error) {
	secret, err := c.secrets.Get(ctx, c.cfg.Secret, metav1.GetOptions{})
	exists := err == nil
	if apierrors.IsNotFound(err) {
		secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: c.cfg.Secret, Namespace: c.cfg.Namespace}, Type: corev1.SecretTypeOpaque}
	} else if err != nil {
		return nil, fmt.Errorf("reading the Secret: %w", err)
	}
	cur, err := parsePKI(secret.Data)
	if err != nil {
		// kmetrics' own Secret: what it cannot read is replaced.
		klog.ErrorS(err, "The serving certificate Secret is unreadable: issuing new certificates", "secret", c.Name())
		cur = nil
	}
	next, reason, err := c.pol.plan(c.now(), cur)
	if err != nil {
		return nil, err
	}
	if reason == "" {
		return next, nil
	}
	if secret.Data, err = next.data(); err != nil {
		return nil, err
	}
	if !exists {
		_, err = c.secrets.Create(ctx, secret, metav1.CreateOptions{})
		if apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("the Secret does not exist and kmetrics may not create it (the manifests ship it empty): %w", err)
		}
	} else {
		_, err = c.secrets.Update(ctx, secret, metav1.UpdateOptions{})
	}
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		// Another replica wrote first: take its certificates.
		klog.InfoS("Another replica renewed the serving certificate first: using its", "secret", c.Name())
		return c.reread(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("writing the Secret: %w", err)
	}
	klog.InfoS("Serving certificate: "+reason, "secret", c.Name(), "notAfter", next.leaf.NotAfter, "caNotAfter", next.ca().NotAfter)
	return next, nil
}

func (c *Controller) reread(ctx context.Context) (*pki, error) {
	secret, err := c.secrets.Get(ctx, c.cfg.Secret, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading the Secret: %w", err)
	}
	p, err := parsePKI(secret.Data)
	if err == nil && p == nil {
		err = fmt.Errorf("empty after another replica wrote it")
	}
	return p, err
}

func (c *Controller) serve(p *pki) {
	c.mu.Lock()
	changed := !bytes.Equal(c.cert, p.leafPE) || !bytes.Equal(c.key, p.keyPE)
	c.cert, c.key = p.leafPE, p.keyPE
	listeners := c.listeners
	c.mu.Unlock()
	expiry.Set(float64(p.leaf.NotAfter.Unix()))
	if !changed {
		return
	}
	klog.InfoS("Serving the certificate from the Secret", "secret", c.Name(), "serial", p.leaf.SerialNumber.Text(16), "notAfter", p.leaf.NotAfter)
	for _, l := range listeners {
		l.Enqueue()
	}
}

// inject writes the CA bundle into each APIService that points at
// kmetrics' Service. A missing one is not an error (that group may not be
// installed); one pointing elsewhere is reported once and left alone.
func (c *Controller) inject(ctx context.Context, bundle []byte) error {
	want := base64.StdEncoding.EncodeToString(bundle)
	var errs []error
	for _, name := range c.cfg.APIServices {
		obj, err := c.apiServices.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("APIService %s: %w", name, err))
			continue
		}
		svcName, _, _ := unstructured.NestedString(obj.Object, "spec", "service", "name")
		svcNS, _, _ := unstructured.NestedString(obj.Object, "spec", "service", "namespace")
		if svcName != c.cfg.Service || svcNS != c.cfg.Namespace {
			c.reportForeign(name, svcNS+"/"+svcName)
			continue
		}
		if have, _, _ := unstructured.NestedString(obj.Object, "spec", "caBundle"); have == want {
			continue
		}
		if err := unstructured.SetNestedField(obj.Object, want, "spec", "caBundle"); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := c.apiServices.Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("APIService %s: injecting the CA: %w", name, err))
			continue
		}
		klog.InfoS("Injected the serving CA into the APIService", "apiService", name)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}

func (c *Controller) reportForeign(name, service string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.foreign[name] {
		return
	}
	c.foreign[name] = true
	klog.InfoS("The APIService points at another Service: its caBundle is left alone", "apiService", name, "service", service)
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
