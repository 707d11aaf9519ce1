package servingcert

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const ns = "kube-system"

func apiService(name, svcNS, svcName string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"service": map[string]any{"name": svcName, "namespace": svcNS, "port": int64(443)}},
	}}
}

type fixture struct {
	client *fake.Clientset
	dyn    *dynamicfake.FakeDynamicClient
	now    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	shipped := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kmetrics-serving", Namespace: ns}, Type: corev1.SecretTypeOpaque}
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme,
		map[schema.GroupVersionResource]string{apiServicesResource: "APIServiceList"},
		apiService("v1beta1.metrics.k8s.io", ns, "kmetrics"),
		apiService("v1beta1.external.metrics.k8s.io", "keda", "keda-operator-metrics-apiserver"))
	return &fixture{client: fake.NewClientset(shipped), dyn: dyn, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (f *fixture) controller(t *testing.T) *Controller {
	t.Helper()
	c, err := New(f.client, f.dyn, Config{
		Namespace: ns, Secret: "kmetrics-serving", Service: "kmetrics",
		APIServices: []string{"v1beta1.metrics.k8s.io", "v1beta1.external.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"},
		Validity:    90 * 24 * time.Hour, CAValidity: 365 * 24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return f.now }
	return c
}

func (f *fixture) caBundle(t *testing.T, name string) []byte {
	t.Helper()
	obj, err := f.dyn.Resource(apiServicesResource).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, _, _ := unstructured.NestedString(obj.Object, "spec", "caBundle")
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verify checks the served certificate as the aggregator does: against the
// APIService's caBundle, for the Service's DNS name, at now.
func verify(t *testing.T, c *Controller, bundle []byte, now time.Time) *x509.Certificate {
	t.Helper()
	certPEM, _ := c.CurrentCertKeyContent()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("no certificate served")
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		t.Fatal("the caBundle holds no CA")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "kmetrics.kube-system.svc", CurrentTime: now}); err != nil {
		t.Fatalf("the aggregator would refuse the served certificate: %v", err)
	}
	return leaf
}

type listener struct{ n int }

func (l *listener) Enqueue() { l.n++ }

func TestIssuesServesAndInjects(t *testing.T) {
	f := newFixture(t)
	c := f.controller(t)
	var l listener
	c.AddListener(&l)
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	verify(t, c, f.caBundle(t, "v1beta1.metrics.k8s.io"), f.now)
	if l.n != 1 {
		t.Errorf("listener told %d times, want 1", l.n)
	}
	// KEDA's APIService is not kmetrics' to change.
	obj, _ := f.dyn.Resource(apiServicesResource).Get(context.Background(), "v1beta1.external.metrics.k8s.io", metav1.GetOptions{})
	if _, found, _ := unstructured.NestedString(obj.Object, "spec", "caBundle"); found {
		t.Error("injected a CA into another Service's APIService")
	}
	// Nothing due: nothing written, nothing re-served.
	writes := countWrites(f.client)
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if countWrites(f.client) != writes || l.n != 1 {
		t.Errorf("an unchanged certificate was rewritten or re-served")
	}
}

func countWrites(c *fake.Clientset) int {
	n := 0
	for _, a := range c.Actions() {
		if a.GetVerb() == "update" || a.GetVerb() == "create" {
			n++
		}
	}
	return n
}

func TestReplicasShareOneCertificate(t *testing.T) {
	f := newFixture(t)
	a, b := f.controller(t), f.controller(t)
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	writes := countWrites(f.client)
	if err := b.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if countWrites(f.client) != writes {
		t.Error("the second replica rewrote a valid Secret")
	}
	ca, _ := a.CurrentCertKeyContent()
	cb, _ := b.CurrentCertKeyContent()
	if string(ca) != string(cb) {
		t.Error("the replicas serve different certificates")
	}
}

// Two replicas renew at once: the one whose write conflicts takes the
// other's certificates instead of overwriting them.
func TestConflictTakesTheWinnersCertificate(t *testing.T) {
	winner := newFixture(t)
	w := winner.controller(t)
	if err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	won, _ := winner.client.CoreV1().Secrets(ns).Get(context.Background(), "kmetrics-serving", metav1.GetOptions{})

	f := newFixture(t)
	conflicted := false
	f.client.PrependReactor("update", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		if conflicted {
			return false, nil, nil
		}
		conflicted = true
		if err := f.client.Tracker().Update(corev1.SchemeGroupVersion.WithResource("secrets"), won.DeepCopy(), ns); err != nil {
			t.Fatal(err)
		}
		return true, nil, apierrors.NewConflict(corev1.Resource("secrets"), "kmetrics-serving", nil)
	})
	c := f.controller(t)
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := c.CurrentCertKeyContent()
	if !conflicted || string(got) != string(won.Data[keyCert]) {
		t.Error("after a conflict the replica does not serve the winner's certificate")
	}
}

func TestRenewalAndCARotation(t *testing.T) {
	f := newFixture(t)
	c := f.controller(t)
	ctx := context.Background()
	if err := c.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	first := verify(t, c, f.caBundle(t, "v1beta1.metrics.k8s.io"), f.now)

	// Two thirds into the certificate's 90 days: renewed by the same CA.
	f.now = f.now.Add(61 * 24 * time.Hour)
	if err := c.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	renewed := verify(t, c, f.caBundle(t, "v1beta1.metrics.k8s.io"), f.now)
	if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 || renewed.Issuer.String() != first.Issuer.String() {
		t.Fatalf("not renewed by the same CA: %v → %v", first.Issuer, renewed.Issuer)
	}

	// Renewed every 60 days; day 241 is the last before the CA is due.
	for day := 91; day <= 241; day += 30 {
		f.now = f.now.Add(30 * 24 * time.Hour)
		if err := c.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	renewed = verify(t, c, f.caBundle(t, "v1beta1.metrics.k8s.io"), f.now)
	if renewed.NotBefore.Before(f.now.Add(-31 * 24 * time.Hour)) {
		t.Fatalf("not renewed every 60 days: in force since %v at %v", renewed.NotBefore, f.now)
	}

	// Two thirds into the CA's year (day 244): a new CA is trusted first,
	// the serving certificate still the old CA's, and both verify.
	f.now = f.now.Add(3 * 24 * time.Hour)
	if err := c.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	bundle := f.caBundle(t, "v1beta1.metrics.k8s.io")
	if n := countCerts(bundle); n != 2 {
		t.Fatalf("caBundle holds %d CAs during the rotation, want 2", n)
	}
	same := verify(t, c, bundle, f.now)
	if same.SerialNumber.Cmp(renewed.SerialNumber) != 0 {
		t.Error("the serving certificate changed before the new CA was injected everywhere")
	}
	// After the settling time the serving certificate is the new CA's.
	f.now = f.now.Add(c.pol.settle)
	if err := c.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	reissued := verify(t, c, f.caBundle(t, "v1beta1.metrics.k8s.io"), f.now)
	if reissued.Issuer.String() == renewed.Issuer.String() {
		t.Error("not reissued from the new CA")
	}
	// Once the old CA has expired it leaves the bundle.
	f.now = f.now.Add(130 * 24 * time.Hour)
	if err := c.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	bundle = f.caBundle(t, "v1beta1.metrics.k8s.io")
	if n := countCerts(bundle); n != 1 {
		t.Errorf("caBundle holds %d CAs after the old one expired, want 1", n)
	}
	verify(t, c, bundle, f.now)
}

func countCerts(bundle []byte) int {
	n := 0
	for rest := bundle; ; n++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return n
		}
	}
}

// A Secret someone broke is replaced; the API server keeps serving.
func TestUnreadableSecretIsReplaced(t *testing.T) {
	f := newFixture(t)
	s, _ := f.client.CoreV1().Secrets(ns).Get(context.Background(), "kmetrics-serving", metav1.GetOptions{})
	s.Data = map[string][]byte{keyBundle: []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), keyCert: []byte("x")}
	if _, err := f.client.CoreV1().Secrets(ns).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := f.controller(t)
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	verify(t, c, f.caBundle(t, "v1beta1.metrics.k8s.io"), f.now)
}

func TestConfigRefused(t *testing.T) {
	f := newFixture(t)
	for name, cfg := range map[string]Config{
		"no secret":            {Namespace: ns, Service: "kmetrics", Validity: time.Hour, CAValidity: time.Hour},
		"CA shorter than cert": {Namespace: ns, Secret: "s", Service: "kmetrics", Validity: 2 * time.Hour, CAValidity: time.Hour},
		"seconds-long cert":    {Namespace: ns, Secret: "s", Service: "kmetrics", Validity: time.Second, CAValidity: time.Hour},
	} {
		if _, err := New(f.client, f.dyn, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Without the shipped Secret, and without the right to create one, the
// error says what to do.
func TestMissingSecretNamesTheCause(t *testing.T) {
	f := newFixture(t)
	if err := f.client.CoreV1().Secrets(ns).Delete(context.Background(), "kmetrics-serving", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.client.PrependReactor("create", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("secrets"), "kmetrics-serving", nil)
	})
	c := f.controller(t)
	err := c.RunOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "may not create it") {
		t.Errorf("got %v, want an error saying the Secret is missing and cannot be created", err)
	}
	if cert, _ := c.CurrentCertKeyContent(); cert != nil {
		t.Error("serves a certificate nobody stored")
	}
}
