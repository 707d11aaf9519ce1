//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	operatorNS  = "e2e-operator"
	operatorNSB = "e2e-operator-b"
)

// kube-prometheus-style ServiceMonitors and a PodMonitor (named ports, TLS
// with a CA from a Secret, a bearer token from a Secret, relabelings, a
// drop metricRelabeling, a namespaceSelector) given to kmetrics as objects
// and to Prometheus 3.15 as the scrape configuration the operator
// generates from them: the same targets and series with the same labels.
// An HPA scales on a metric scraped through a ServiceMonitor; a broken
// monitor is reported and the rest keep scraping; PrometheusRules evaluate,
// an invalid one is reported, a deleted one's rules are gone.
func TestPrometheusOperatorObjects(t *testing.T) {
	t.Parallel()
	prometheusBin := peerBinary(t, "PROMETHEUS_BIN", "hack/build-prometheus.sh")
	for _, crd := range []string{"servicemonitors", "podmonitors", "prometheusrules"} {
		mustKubectl(t, "apply", "--server-side", "-f", filepath.Join("..", "..", "deploy", "crds", "monitoring.coreos.com_"+crd+".yaml"))
	}
	mustKubectl(t, "wait", "--for=condition=Established", "--timeout=60s", "crd/servicemonitors.monitoring.coreos.com",
		"crd/podmonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com")

	// The Services' endpoints are outside the (loopback) pod network, which
	// Endpoints refuse: this machine's address, one port per app.
	hostIP := nonLoopbackIPv4(t)
	caPEM, serverCert := testServingCert(t, "cart."+operatorNS+".svc")
	cart := listenOn(t, hostIP, &tls.Config{Certificates: []tls.Certificate{serverCert}}, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret-token" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		textHandler("# TYPE cart_orders_total counter\ncart_orders_total 12\ncart_queue_depth 45\ngo_gc_duration_seconds_count 3\n")(w, r)
	})
	plain := listenOn(t, hostIP, nil, textHandler("plain_hits_total 5\n"))
	api := listenOn(t, hostIP, nil, nativeHistogramApp(t))
	fleet := startAppFleet(t, operatorNS, "9100") // the PodMonitor's pods, on their own IPs
	fleet.serve("worker", textHandler("worker_jobs_total 9\n"))

	kubectlApply(t, operatorManifest(hostIP, cart, plain, caPEM))
	kubectlApply(t, nativeHistogramManifest(hostIP, api))
	t.Cleanup(func() {
		_, _ = kubectl("delete", "namespace", operatorNS, operatorNSB, "--wait=false")
	})

	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(operatorGeneratedConfig(filepath.Join(state, "kmetrics.kubeconfig"), caPEM)), 0o600); err != nil {
		t.Fatal(err)
	}
	prom := startPrometheus(t, prometheusBin, config)
	engines := map[string]func(path string) ([]byte, error){
		"prometheus": func(path string) ([]byte, error) { return httpGet(http.DefaultClient, "http://127.0.0.1:"+prom+path) },
		"kmetrics":   mainKmetricsQuery(t),
	}
	jobs := `{job=~"cart|plain|` + operatorNS + `/workers"}`
	for name, get := range engines {
		eventually(t, 3*time.Minute, name+" scraped every monitor's target", func() error {
			up := map[string]float64{}
			for _, s := range instantQuery(get, "up"+jobs) {
				up[s.labels["job"]] = s.value
			}
			for _, job := range []string{"cart", "plain", operatorNS + "/workers"} {
				if up[job] != 1 {
					return fmt.Errorf("up{job=%q} = %v (all: %v)", job, up[job], up)
				}
			}
			return nil
		})
	}
	t.Run("the same targets", func(t *testing.T) {
		compare(t, engines, func(get func(string) ([]byte, error)) []string { return sampleStrings(instantQuery(get, "up"+jobs)) })
	})
	t.Run("the same series labels", func(t *testing.T) {
		compare(t, engines, func(get func(string) ([]byte, error)) []string {
			return seriesStrings(get, jobs, time.Now().Add(-2*time.Minute))
		})
	})
	t.Run("the metricRelabeling drop applied", func(t *testing.T) {
		if got := instantQuery(engines["kmetrics"], "go_gc_duration_seconds_count"+jobs); len(got) > 0 {
			t.Errorf("dropped series stored: %v", got)
		}
	})

	t.Run("a changed monitor applies without a restart", func(t *testing.T) {
		mustKubectl(t, "-n", operatorNS, "patch", "servicemonitor", "plain", "--type=json", "-p",
			`[{"op":"add","path":"/spec/endpoints/0/relabelings","value":[{"targetLabel":"env","replacement":"prod"}]}]`)
		eventually(t, time.Minute, "the new label on plain's series", func() error {
			if got := instantQuery(engines["kmetrics"], `plain_hits_total{env="prod",job="plain"}`); len(got) != 1 {
				return fmt.Errorf("plain_hits_total{env=\"prod\"}: %v", got)
			}
			return nil
		})
	})

	t.Run("an HPA scales on a ServiceMonitor's metric", func(t *testing.T) {
		kubectlApply(t, fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: checkout}}
  template:
    metadata: {labels: {app: checkout}}
    spec: {containers: [{name: main, image: registry.k8s.io/pause:3.10}]}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: checkout, namespace: %[1]s}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: checkout}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: Object
    object:
      describedObject: {apiVersion: v1, kind: Service, name: cart}
      metric: {name: cart_queue_depth}
      target: {type: Value, value: "10"}
`, operatorNS))
		eventually(t, 3*time.Minute, "the HPA scales checkout to 4 on cart_queue_depth", replicasOf(operatorNS, "checkout", "4"))
	})

	t.Run("a broken monitor is reported, the others keep scraping", func(t *testing.T) {
		kubectlApply(t, fmt.Sprintf(`
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: broken, namespace: %[1]s}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: cart}}
  endpoints:
  - port: https-metrics
    bearerTokenSecret: {name: no-such-secret, key: token}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: steals-the-token, namespace: %[1]s}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: cart}}
  endpoints:
  - port: https-metrics
    bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
`, operatorNS))
		for _, name := range []string{"broken", "steals-the-token"} {
			eventually(t, 2*time.Minute, name+" reported in an event", func() error {
				msg := mustKubectl(t, "-n", operatorNS, "get", "events", "--field-selector",
					"involvedObject.kind=ServiceMonitor,involvedObject.name="+name+",reason=InvalidConfiguration", "-o", "jsonpath={.items[*].message}")
				if msg == "" {
					return fmt.Errorf("no event yet")
				}
				t.Logf("%s: %s", name, msg)
				return nil
			})
		}
		for _, s := range instantQuery(engines["kmetrics"], "up"+jobs) {
			if s.value != 1 {
				t.Errorf("target down after broken monitors were added: %v", s.labels)
			}
		}
		if got := instantQuery(engines["kmetrics"], `up{job=~".*broken.*|.*steals.*"}`); len(got) > 0 {
			t.Errorf("a refused monitor scrapes: %v", got)
		}
	})

	t.Run("native histograms, exemplars, an HPA on p95 latency", func(t *testing.T) {
		get := engines["kmetrics"]
		eventually(t, 2*time.Minute, "histogram_quantile over the native histogram", func() error {
			got := instantQuery(get, `histogram_quantile(0.95, sum(rate(request_duration_seconds{job="api"}[1m])))`)
			if len(got) != 1 || got[0].value < 1.5 || got[0].value > 2.5 {
				return fmt.Errorf("p95 = %v, want about 2s", got)
			}
			return nil
		})
		if got := instantQuery(get, `count({__name__=~"request_duration_seconds_bucket",job="api"})`); len(got) > 0 {
			t.Errorf("classic buckets stored beside the native histogram: %v", got)
		}
		eventually(t, time.Minute, "exemplars from query_exemplars", func() error {
			now := time.Now()
			body, err := get(fmt.Sprintf("/api/v1/query_exemplars?query=%s&start=%d&end=%d", "request_duration_seconds%7Bjob%3D%22api%22%7D",
				now.Add(-5*time.Minute).Unix(), now.Unix()))
			if err != nil {
				return err
			}
			if !strings.Contains(string(body), `"trace_id":"`) {
				return fmt.Errorf("no exemplar: %.300s", body)
			}
			return nil
		})
		// kube-prometheus' way: a recording rule (a PrometheusRule) keeps
		// the p95 per Service, served as a custom metric of the Service.
		kubectlApply(t, fmt.Sprintf(`
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: api-latency, namespace: %[1]s}
spec:
  groups:
  - name: api-latency
    interval: 5s
    rules:
    - record: service:request_duration_seconds:p95
      expr: histogram_quantile(0.95, sum by (namespace, service, endpoint) (rate(request_duration_seconds[1m])))
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api-backend, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: api-backend}}
  template:
    metadata: {labels: {app: api-backend}}
    spec: {containers: [{name: main, image: registry.k8s.io/pause:3.10}]}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: api-backend, namespace: %[1]s}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api-backend}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: Object
    object:
      describedObject: {apiVersion: v1, kind: Service, name: api}
      metric: {name: "service:request_duration_seconds:p95"}
      target: {type: Value, value: 500m}
`, operatorNS))
		eventually(t, 3*time.Minute, "the HPA scales api-backend to 4 on the p95 latency", replicasOf(operatorNS, "api-backend", "4"))
	})

	t.Run("PrometheusRules", func(t *testing.T) {
		kubectlApply(t, fmt.Sprintf(`
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: cart-rules, namespace: %[1]s}
spec:
  groups:
  - name: cart
    interval: 10s
    rules:
    - record: cart:orders:sum
      expr: sum(cart_orders_total{namespace="%[1]s"})
    - alert: CartQueueDeep
      expr: cart_queue_depth{namespace="%[1]s"} > 40
      labels: {severity: warning}
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: invalid-rules, namespace: %[1]s}
spec:
  groups:
  - name: invalid
    rules:
    - record: broken:sum
      expr: sum(cart_orders_total
`, operatorNS))
		eventually(t, 2*time.Minute, "the recording rule evaluated", func() error {
			got := instantQuery(engines["kmetrics"], "cart:orders:sum")
			if len(got) != 1 || got[0].value != 12 {
				return fmt.Errorf("cart:orders:sum = %v", got)
			}
			return nil
		})
		eventually(t, 2*time.Minute, "the alert firing", func() error {
			if got := instantQuery(engines["kmetrics"], `ALERTS{alertname="CartQueueDeep",alertstate="firing"}`); len(got) != 1 {
				return fmt.Errorf("ALERTS = %v", got)
			}
			return nil
		})
		eventually(t, 2*time.Minute, "the invalid rule reported", func() error {
			msg := mustKubectl(t, "-n", operatorNS, "get", "events", "--field-selector",
				"involvedObject.kind=PrometheusRule,involvedObject.name=invalid-rules,reason=InvalidConfiguration", "-o", "jsonpath={.items[*].message}")
			if !strings.Contains(msg, "unclosed left parenthesis") {
				return fmt.Errorf("event %q", msg)
			}
			return nil
		})
		mustKubectl(t, "-n", operatorNS, "delete", "prometheusrule", "cart-rules")
		eventually(t, 2*time.Minute, "the deleted rule's group gone", func() error {
			body, err := engines["kmetrics"]("/api/v1/rules")
			if err != nil {
				return err
			}
			if strings.Contains(string(body), "cart:orders:sum") {
				return fmt.Errorf("still listed")
			}
			return nil
		})
	})
}

// nativeHistogramApp is an application instrumented with client_golang: a
// native histogram of request latency (nine in ten requests take 2 s, so
// the p95 is 2 s) with exemplars, exposed with promhttp (which negotiates
// Prometheus' protobuf format).
func nativeHistogramApp(t *testing.T) http.HandlerFunc {
	reg := prometheus.NewRegistry()
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "request_duration_seconds", Help: "Request latency.",
		Buckets:                     prometheus.DefBuckets, // classic ones too, as real applications keep them
		NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: 100,
	})
	reg.MustRegister(latency)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			latency.Observe(0.1)
			for j := 0; j < 9; j++ {
				latency.(prometheus.ExemplarObserver).ObserveWithExemplar(2, prometheus.Labels{"trace_id": fmt.Sprintf("%016x", i*10+j)})
			}
		}
	}()
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP
}

func nativeHistogramManifest(hostIP, port string) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: api-1, namespace: %[1]s, labels: {app: api}}
spec:
  containers: [{name: api, image: registry.k8s.io/pause:3.10, ports: [{name: http-metrics, containerPort: %[3]s}]}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: %[1]s, labels: {app: api}}
spec: {ports: [{name: http-metrics, port: %[3]s}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: api, namespace: %[1]s}
subsets: [{addresses: [{ip: %[2]s, targetRef: {kind: Pod, name: api-1, namespace: %[1]s}}], ports: [{name: http-metrics, port: %[3]s}]}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: api, namespace: %[1]s}
spec:
  selector: {matchLabels: {app: api}}
  endpoints: [{port: http-metrics, interval: 5s}]
`, operatorNS, hostIP, port)
}

// operatorManifest: two namespaces; the cart Service (TLS, token) and its
// pod; plain in the second namespace, selected across namespaces; the
// worker pods of the PodMonitor; the monitors and their Secrets.
func operatorManifest(hostIP, cartPort, plainPort, caPEM string) string {
	ca := strings.ReplaceAll(strings.TrimSpace(caPEM), "\n", "\n    ")
	return fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: v1
kind: Namespace
metadata: {name: %[2]s}
---
apiVersion: v1
kind: Secret
metadata: {name: cart-scrape, namespace: %[1]s}
stringData:
  token: s3cret-token
  ca.crt: |
    %[6]s
---
apiVersion: v1
kind: Pod
metadata: {name: cart-1, namespace: %[1]s, labels: {app.kubernetes.io/name: cart, version: v2}}
spec:
  containers: [{name: app, image: registry.k8s.io/pause:3.10, ports: [{name: https-metrics, containerPort: %[4]s}]}]
---
apiVersion: v1
kind: Service
metadata: {name: cart, namespace: %[1]s, labels: {app.kubernetes.io/name: cart, team: payments}}
spec: {ports: [{name: https-metrics, port: %[4]s}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: cart, namespace: %[1]s, labels: {app.kubernetes.io/name: cart}}
subsets: [{addresses: [{ip: %[3]s, targetRef: {kind: Pod, name: cart-1, namespace: %[1]s}}], ports: [{name: https-metrics, port: %[4]s}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: plain-1, namespace: %[2]s, labels: {app: plain}}
spec:
  containers: [{name: web, image: registry.k8s.io/pause:3.10, ports: [{name: web, containerPort: %[5]s}]}]
---
apiVersion: v1
kind: Service
metadata: {name: plain, namespace: %[2]s, labels: {app: plain}}
spec: {ports: [{name: web, port: %[5]s}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: plain, namespace: %[2]s}
subsets: [{addresses: [{ip: %[3]s, targetRef: {kind: Pod, name: plain-1, namespace: %[2]s}}], ports: [{name: web, port: %[5]s}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, namespace: %[1]s}
spec:
  replicas: 2
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker, tier: batch}}
    spec:
      containers: [{name: worker, image: registry.k8s.io/pause:3.10, ports: [{name: metrics, containerPort: 9100}]}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: cart, namespace: %[1]s}
spec:
  jobLabel: app.kubernetes.io/name
  targetLabels: [team]
  podTargetLabels: [version]
  selector: {matchLabels: {app.kubernetes.io/name: cart}}
  endpoints:
  - port: https-metrics
    scheme: https
    interval: 5s
    bearerTokenSecret: {name: cart-scrape, key: token}
    tlsConfig:
      ca: {secret: {name: cart-scrape, key: ca.crt}}
      serverName: cart.%[1]s.svc
    relabelings:
    - {targetLabel: tier, replacement: backend}
    metricRelabelings:
    - {sourceLabels: [__name__], regex: "go_gc_.*", action: drop}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: plain, namespace: %[1]s}
spec:
  namespaceSelector: {matchNames: [%[2]s]}
  selector: {matchExpressions: [{key: app, operator: In, values: [plain]}]}
  endpoints: [{port: web, interval: 5s}]
---
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: {name: workers, namespace: %[1]s}
spec:
  podTargetLabels: [tier]
  selector: {matchLabels: {app: worker}}
  podMetricsEndpoints: [{port: metrics, interval: 5s}]
`, operatorNS, operatorNSB, hostIP, cartPort, plainPort, ca)
}

// operatorGeneratedConfig is what the prometheus-operator (v0.94) generates
// for those three monitors (promcfg.go), the Secrets inlined.
func operatorGeneratedConfig(kubeconfig, caPEM string) string {
	keep := func(src, regex string) string {
		return fmt.Sprintf("  - {action: keep, source_labels: [%s], regex: %q}\n", src, regex)
	}
	common := func(string) string { return "  - {source_labels: [job], target_label: __tmp_prometheus_job_name}\n" }
	endpointLabels := `  - {source_labels: [__meta_kubernetes_endpoint_address_target_kind, __meta_kubernetes_endpoint_address_target_name], separator: ";", regex: "Node;(.*)", replacement: "${1}", target_label: node}
  - {source_labels: [__meta_kubernetes_endpoint_address_target_kind, __meta_kubernetes_endpoint_address_target_name], separator: ";", regex: "Pod;(.*)", replacement: "${1}", target_label: pod}
  - {source_labels: [__meta_kubernetes_namespace], target_label: namespace}
  - {source_labels: [__meta_kubernetes_service_name], target_label: service}
  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
  - {source_labels: [__meta_kubernetes_pod_container_name], target_label: container}
  - {action: drop, source_labels: [__meta_kubernetes_pod_phase], regex: "(Failed|Succeeded)"}
`
	sd := func(role, ns string) string {
		return fmt.Sprintf("  kubernetes_sd_configs: [{role: %s, kubeconfig_file: %s, namespaces: {names: [%s]}}]\n", role, kubeconfig, ns)
	}
	ca := strings.ReplaceAll(strings.TrimSpace(caPEM), "\n", "\n      ")
	return `global: {scrape_interval: 5s, scrape_timeout: 4s}
scrape_configs:
- job_name: serviceMonitor/` + operatorNS + `/cart/0
  honor_labels: false
  scrape_interval: 5s
  scheme: https
  bearer_token: s3cret-token
  tls_config:
    server_name: cart.` + operatorNS + `.svc
    ca: |
      ` + ca + "\n" + sd("endpoints", operatorNS) + `  relabel_configs:
` + common("endpoints") +
		keep("__meta_kubernetes_service_label_app_kubernetes_io_name, __meta_kubernetes_service_labelpresent_app_kubernetes_io_name", "(cart);true") +
		keep("__meta_kubernetes_endpoint_port_name", "https-metrics") + endpointLabels +
		`  - {source_labels: [__meta_kubernetes_service_label_team], target_label: team, regex: "(.+)", replacement: "${1}"}
  - {source_labels: [__meta_kubernetes_pod_label_version], target_label: version, regex: "(.+)", replacement: "${1}"}
  - {source_labels: [__meta_kubernetes_service_name], target_label: job, replacement: "${1}"}
  - {source_labels: [__meta_kubernetes_service_label_app_kubernetes_io_name], target_label: job, regex: "(.+)", replacement: "${1}"}
  - {target_label: endpoint, replacement: https-metrics}
  - {target_label: tier, replacement: backend}
  metric_relabel_configs:
  - {source_labels: [__name__], regex: "go_gc_.*", action: drop}
- job_name: serviceMonitor/` + operatorNS + `/plain/0
  honor_labels: false
  scrape_interval: 5s
` + sd("endpoints", operatorNSB) + `  relabel_configs:
` + common("endpoints") +
		keep("__meta_kubernetes_service_label_app, __meta_kubernetes_service_labelpresent_app", "(plain);true") +
		keep("__meta_kubernetes_endpoint_port_name", "web") + endpointLabels +
		`  - {source_labels: [__meta_kubernetes_service_name], target_label: job, replacement: "${1}"}
  - {target_label: endpoint, replacement: web}
- job_name: podMonitor/` + operatorNS + `/workers/0
  honor_labels: false
  scrape_interval: 5s
` + sd("pod", operatorNS) + `  relabel_configs:
` + common("pod") +
		`  - {action: drop, source_labels: [__meta_kubernetes_pod_phase], regex: "(Failed|Succeeded)"}
` + keep("__meta_kubernetes_pod_label_app, __meta_kubernetes_pod_labelpresent_app", "(worker);true") +
		keep("__meta_kubernetes_pod_container_port_name", "metrics") +
		`  - {source_labels: [__meta_kubernetes_namespace], target_label: namespace}
  - {source_labels: [__meta_kubernetes_pod_container_name], target_label: container}
  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
  - {source_labels: [__meta_kubernetes_pod_label_tier], target_label: tier, regex: "(.+)", replacement: "${1}"}
  - {target_label: job, replacement: ` + operatorNS + `/workers}
  - {target_label: endpoint, replacement: metrics}
`
}

// mainKmetricsQuery reads the suite's kmetrics' query API as the cluster
// admin.
func mainKmetricsQuery(t *testing.T) func(path string) ([]byte, error) {
	admin := adminCert(t)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: kmetricsTLS(t, &admin)}}
	return func(path string) ([]byte, error) {
		return httpGet(client, "https://127.0.0.1:"+kmetricsPort+"/prometheus"+path)
	}
}

// listenOn serves h on ip (TLS when tlsConfig is set); it returns the port.
func listenOn(t *testing.T, ip string, tlsConfig *tls.Config, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// testServingCert makes a CA and a serving certificate for dnsName signed
// by it; it returns the CA (PEM) and the certificate.
func testServingCert(t *testing.T, dnsName string) (string, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e app CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
