package promoperator

import (
	"context"
	"fmt"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The files of kmetrics' own service account. A monitor asking for a file
// asks for something of kmetrics' own filesystem; only these two may be
// named, and the token only by monitors in namespaces the operator trusts.
const (
	serviceAccountDir   = "/var/run/secrets/kubernetes.io/serviceaccount/"
	serviceAccountToken = serviceAccountDir + "token"
	serviceAccountCA    = serviceAccountDir + "ca.crt"
)

// Objects reads the Secrets and ConfigMaps monitors refer to.
type Objects interface {
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
}

// NewObjects reads Secrets and ConfigMaps by name (GET, never a list or a
// watch: kmetrics needs only the few a monitor names).
func NewObjects(c kubernetes.Interface) Objects { return clientObjects{c} }

type clientObjects struct{ c kubernetes.Interface }

func (o clientObjects) Secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	return o.c.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
}

func (o clientObjects) ConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	return o.c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
}

// resolver resolves one build's references; a monitor only ever reads
// objects of its own namespace, as under the operator.
type resolver struct {
	ctx     context.Context
	objects Objects
	// tokenNamespaces may send kmetrics' service-account token
	// (bearerTokenFile), and name the other files of kmetrics' service
	// account.
	tokenNamespaces map[string]bool
}

func (r resolver) secret(ns string, sel corev1.SecretKeySelector) (string, error) {
	if r.objects == nil {
		return "", fmt.Errorf("secret %s/%s: kmetrics reads no Secrets (--operator.read-secrets=false)", ns, sel.Name)
	}
	s, err := r.objects.Secret(r.ctx, ns, sel.Name)
	if err != nil {
		return "", fmt.Errorf("secret %s/%s: %w", ns, sel.Name, err)
	}
	v, ok := s.Data[sel.Key]
	if !ok {
		return "", fmt.Errorf("secret %s/%s has no key %q", ns, sel.Name, sel.Key)
	}
	return string(v), nil
}

func (r resolver) secretOrConfigMap(ns string, sc monitoringv1.SecretOrConfigMap) (string, error) {
	switch {
	case sc.Secret != nil:
		return r.secret(ns, *sc.Secret)
	case sc.ConfigMap != nil:
		if r.objects == nil {
			return "", fmt.Errorf("configmap %s/%s: kmetrics reads no ConfigMaps (--operator.read-secrets=false)", ns, sc.ConfigMap.Name)
		}
		cm, err := r.objects.ConfigMap(r.ctx, ns, sc.ConfigMap.Name)
		if err != nil {
			return "", fmt.Errorf("configmap %s/%s: %w", ns, sc.ConfigMap.Name, err)
		}
		v, ok := cm.Data[sc.ConfigMap.Key]
		if !ok {
			return "", fmt.Errorf("configmap %s/%s has no key %q", ns, sc.ConfigMap.Name, sc.ConfigMap.Key)
		}
		return v, nil
	}
	return "", nil
}

// tokenFile allows bearerTokenFile: kmetrics' own token, to monitors of
// trusted namespaces only. Any other path would send a file of kmetrics'
// filesystem (its serving key…) to whatever the monitor selects.
func (r resolver) tokenFile(ns, path string) error {
	if path != serviceAccountToken {
		return fmt.Errorf("bearerTokenFile %q: only %s (kmetrics' service-account token) may be named", path, serviceAccountToken)
	}
	if !r.tokenNamespaces[ns] {
		return fmt.Errorf("bearerTokenFile: kmetrics sends its service-account token only for monitors in the namespaces of --operator.token-namespaces (not %q)", ns)
	}
	return nil
}

// tls builds tls_config with the CA, certificate and key inlined from the
// monitor's Secrets/ConfigMaps. Files: the service-account CA (public) may
// be named by any monitor; nothing else.
func (r resolver) tls(ns string, t *monitoringv1.TLSConfig) (map[string]any, error) {
	out := map[string]any{}
	if t.InsecureSkipVerify != nil {
		out["insecure_skip_verify"] = *t.InsecureSkipVerify
	}
	for _, item := range []struct {
		key string
		ref monitoringv1.SecretOrConfigMap
	}{{"ca", t.CA}, {"cert", t.Cert}} {
		v, err := r.secretOrConfigMap(ns, item.ref)
		if err != nil {
			return nil, fmt.Errorf("tlsConfig %s: %w", item.key, err)
		}
		if v != "" {
			out[item.key] = v
		}
	}
	if t.KeySecret != nil {
		v, err := r.secret(ns, *t.KeySecret)
		if err != nil {
			return nil, fmt.Errorf("tlsConfig keySecret: %w", err)
		}
		out["key"] = v
	}
	if t.ServerName != nil && *t.ServerName != "" {
		out["server_name"] = *t.ServerName
	}
	if t.MinVersion != nil {
		out["min_version"] = string(*t.MinVersion)
	}
	if t.MaxVersion != nil {
		out["max_version"] = string(*t.MaxVersion)
	}
	if t.CAFile != "" {
		if t.CAFile != serviceAccountCA {
			return nil, fmt.Errorf("tlsConfig caFile %q: only %s may be named", t.CAFile, serviceAccountCA)
		}
		out["ca_file"] = t.CAFile
	}
	if t.CertFile != "" || t.KeyFile != "" {
		return nil, fmt.Errorf("tlsConfig certFile/keyFile: files of kmetrics' filesystem cannot be named; use cert and keySecret")
	}
	return out, nil
}
