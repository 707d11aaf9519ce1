package promoperator

import (
	"fmt"
	"sort"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/prometheus/prometheus/util/strutil"
)

// The generation below follows the prometheus-operator's
// pkg/prometheus/promcfg.go (v0.94): the same job names, kubernetes_sd
// roles and namespaces, and the same relabeling in the same order, so the
// labels (job, instance, namespace, service, pod, container, endpoint and
// the target labels) are the ones Prometheus under the operator produces.
// What is left out is what has no meaning without a Prometheus object:
// scrape classes, sharding, enforced limits and namespace labels.

// job is one scrape_configs entry as YAML-ready maps.
type job map[string]any

// endpoint is what ServiceMonitor and PodMonitor endpoints share.
type endpoint struct {
	path, scheme, interval, timeout string
	params                          map[string][]string
	honorLabels                     bool
	honorTimestamps, trackStaleness *bool
	relabelings, metricRelabelings  []monitoringv1.RelabelConfig
	followRedirects, enableHTTP2    *bool
	bearerTokenFile                 string
	bearerTokenSecret               *corev1.SecretKeySelector
	basicAuth                       *monitoringv1.BasicAuth
	authorization                   *monitoringv1.SafeAuthorization
	oauth2                          *monitoringv1.OAuth2
	tls                             *monitoringv1.TLSConfig
	proxyURL                        *string
}

// limits are the per-monitor limits and protocol settings.
type limits struct {
	sample, target, label, labelName, labelValue, keepDropped *int64
	protocols                                                 []monitoringv1.ScrapeProtocol
	fallback                                                  *monitoringv1.ScrapeProtocol
	histograms                                                monitoringv1.NativeHistogramConfig
	bodySize                                                  *monitoringv1.ByteSize
}

// serviceMonitorJobs are the scrape jobs of one ServiceMonitor, one per
// endpoint, named serviceMonitor/<namespace>/<name>/<i> as the operator
// names them.
func serviceMonitorJobs(m *monitoringv1.ServiceMonitor, r resolver) ([]job, error) {
	var jobs []job
	for i, ep := range m.Spec.Endpoints {
		e := endpoint{
			path: ep.Path, scheme: ep.Scheme.String(), interval: string(ep.Interval), timeout: string(ep.ScrapeTimeout),
			params: ep.Params, honorLabels: ep.HonorLabels, honorTimestamps: ep.HonorTimestamps, trackStaleness: ep.TrackTimestampsStaleness,
			relabelings: ep.RelabelConfigs, metricRelabelings: ep.MetricRelabelConfigs,
			followRedirects: ep.FollowRedirects, enableHTTP2: ep.EnableHTTP2,
			bearerTokenFile:   ep.BearerTokenFile,   //nolint:staticcheck // deprecated, still what kube-prometheus uses
			bearerTokenSecret: ep.BearerTokenSecret, //nolint:staticcheck
			basicAuth:         ep.BasicAuth, authorization: ep.Authorization, oauth2: ep.OAuth2, tls: ep.TLSConfig,
			proxyURL: ep.ProxyURL,
		}
		j := job{"job_name": fmt.Sprintf("serviceMonitor/%s/%s/%d", m.Namespace, m.Name, i)}
		j.sd("endpoints", namespaces(m.Spec.NamespaceSelector, m.Namespace))
		if err := j.http(e, m.Namespace, r); err != nil {
			return nil, fmt.Errorf("endpoint %d: %w", i, err)
		}

		rl := initRelabelings()
		rl = append(rl, selectorRelabelings("service", m.Spec.Selector)...)
		switch {
		case ep.Port != "":
			rl = append(rl, relabel{"action": "keep", "source_labels": []string{"__meta_kubernetes_endpoint_port_name"}, "regex": ep.Port})
		case ep.TargetPort != nil && ep.TargetPort.Type == intstr.String && ep.TargetPort.StrVal != "":
			rl = append(rl, relabel{"action": "keep", "source_labels": []string{"__meta_kubernetes_pod_container_port_name"}, "regex": ep.TargetPort.String()})
		case ep.TargetPort != nil && ep.TargetPort.IntVal != 0:
			rl = append(rl, relabel{"action": "keep", "source_labels": []string{"__meta_kubernetes_pod_container_port_number"}, "regex": ep.TargetPort.String()})
		}
		target := []string{"__meta_kubernetes_endpoint_address_target_kind", "__meta_kubernetes_endpoint_address_target_name"}
		rl = append(rl,
			relabel{"source_labels": target, "separator": ";", "regex": "Node;(.*)", "replacement": "${1}", "target_label": "node"},
			relabel{"source_labels": target, "separator": ";", "regex": "Pod;(.*)", "replacement": "${1}", "target_label": "pod"},
			copyLabel("__meta_kubernetes_namespace", "namespace"),
			copyLabel("__meta_kubernetes_service_name", "service"),
			copyLabel("__meta_kubernetes_pod_name", "pod"),
			copyLabel("__meta_kubernetes_pod_container_name", "container"),
		)
		if ptr.Deref(ep.FilterRunning, true) {
			rl = append(rl, runningFilter())
		}
		for _, l := range m.Spec.TargetLabels {
			rl = append(rl, copyNonEmpty("__meta_kubernetes_service_label_"+sanitize(l), sanitize(l)))
		}
		for _, l := range m.Spec.PodTargetLabels {
			rl = append(rl, copyNonEmpty("__meta_kubernetes_pod_label_"+sanitize(l), sanitize(l)))
		}
		rl = append(rl, relabel{"source_labels": []string{"__meta_kubernetes_service_name"}, "target_label": "job", "replacement": "${1}"})
		if m.Spec.JobLabel != "" {
			rl = append(rl, copyNonEmpty("__meta_kubernetes_service_label_"+sanitize(m.Spec.JobLabel), "job"))
		}
		endpointName := ep.Port
		if endpointName == "" && ep.TargetPort != nil {
			endpointName = ep.TargetPort.String()
		}
		j.finish(rl, endpointName, e, limits{
			sample: m.Spec.SampleLimit, target: m.Spec.TargetLimit, label: m.Spec.LabelLimit,
			labelName: m.Spec.LabelNameLengthLimit, labelValue: m.Spec.LabelValueLengthLimit, keepDropped: m.Spec.KeepDroppedTargets,
			protocols: m.Spec.ScrapeProtocols, fallback: m.Spec.FallbackScrapeProtocol, histograms: m.Spec.NativeHistogramConfig,
			bodySize: m.Spec.BodySizeLimit,
		})
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// podMonitorJobs are the scrape jobs of one PodMonitor, named
// podMonitor/<namespace>/<name>/<i>.
func podMonitorJobs(m *monitoringv1.PodMonitor, r resolver) ([]job, error) {
	var jobs []job
	for i, ep := range m.Spec.PodMetricsEndpoints {
		e := endpoint{
			path: ep.Path, scheme: ep.Scheme.String(), interval: string(ep.Interval), timeout: string(ep.ScrapeTimeout),
			params: ep.Params, honorLabels: ep.HonorLabels, honorTimestamps: ep.HonorTimestamps, trackStaleness: ep.TrackTimestampsStaleness,
			relabelings: ep.RelabelConfigs, metricRelabelings: ep.MetricRelabelConfigs,
			followRedirects: ep.FollowRedirects, enableHTTP2: ep.EnableHTTP2,
			bearerTokenSecret: ep.BearerTokenSecret, //nolint:staticcheck
			basicAuth:         ep.BasicAuth, authorization: ep.Authorization, oauth2: ep.OAuth2, proxyURL: ep.ProxyURL,
		}
		if ep.TLSConfig != nil {
			e.tls = &monitoringv1.TLSConfig{SafeTLSConfig: *ep.TLSConfig}
		}
		j := job{"job_name": fmt.Sprintf("podMonitor/%s/%s/%d", m.Namespace, m.Name, i)}
		j.sd("pod", namespaces(m.Spec.NamespaceSelector, m.Namespace))
		if err := j.http(e, m.Namespace, r); err != nil {
			return nil, fmt.Errorf("endpoint %d: %w", i, err)
		}

		rl := initRelabelings()
		if ptr.Deref(ep.FilterRunning, true) {
			rl = append(rl, runningFilter())
		}
		rl = append(rl, selectorRelabelings("pod", m.Spec.Selector)...)
		targetPort := ep.TargetPort //nolint:staticcheck // deprecated, still honoured by the operator
		switch {
		case ptr.Deref(ep.Port, "") != "":
			rl = append(rl, relabel{"action": "keep", "source_labels": []string{"__meta_kubernetes_pod_container_port_name"}, "regex": *ep.Port})
		case ptr.Deref(ep.PortNumber, 0) != 0:
			rl = append(rl, relabel{"action": "keep", "source_labels": []string{"__meta_kubernetes_pod_container_port_number"}, "regex": fmt.Sprint(*ep.PortNumber)})
		case targetPort != nil && targetPort.Type == intstr.String && targetPort.StrVal != "":
			rl = append(rl, relabel{"action": "keep", "source_labels": []string{"__meta_kubernetes_pod_container_port_name"}, "regex": targetPort.String()})
		case targetPort != nil && targetPort.IntVal != 0:
			rl = append(rl, relabel{"action": "keep", "source_labels": []string{"__meta_kubernetes_pod_container_port_number"}, "regex": targetPort.String()})
		}
		rl = append(rl,
			copyLabel("__meta_kubernetes_namespace", "namespace"),
			copyLabel("__meta_kubernetes_pod_container_name", "container"),
			copyLabel("__meta_kubernetes_pod_name", "pod"),
		)
		for _, l := range m.Spec.PodTargetLabels {
			rl = append(rl, copyNonEmpty("__meta_kubernetes_pod_label_"+sanitize(l), sanitize(l)))
		}
		rl = append(rl, relabel{"target_label": "job", "replacement": m.Namespace + "/" + m.Name})
		if m.Spec.JobLabel != "" {
			rl = append(rl, copyNonEmpty("__meta_kubernetes_pod_label_"+sanitize(m.Spec.JobLabel), "job"))
		}
		endpointName := ptr.Deref(ep.Port, "")
		if endpointName == "" && targetPort != nil {
			endpointName = targetPort.String()
		}
		j.finish(rl, endpointName, e, limits{
			sample: m.Spec.SampleLimit, target: m.Spec.TargetLimit, label: m.Spec.LabelLimit,
			labelName: m.Spec.LabelNameLengthLimit, labelValue: m.Spec.LabelValueLengthLimit, keepDropped: m.Spec.KeepDroppedTargets,
			protocols: m.Spec.ScrapeProtocols, fallback: m.Spec.FallbackScrapeProtocol, histograms: m.Spec.NativeHistogramConfig,
			bodySize: m.Spec.BodySizeLimit,
		})
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// namespaces are the namespaces a monitor selects from: its own unless
// namespaceSelector says any (nil: all) or names some.
func namespaces(sel monitoringv1.NamespaceSelector, own string) []string {
	switch {
	case sel.Any:
		return nil
	case len(sel.MatchNames) == 0:
		return []string{own}
	default:
		return sel.MatchNames
	}
}

func (j job) sd(role string, namespaces []string) {
	sd := map[string]any{"role": role}
	if len(namespaces) > 0 {
		sd["namespaces"] = map[string]any{"names": namespaces}
	}
	j["kubernetes_sd_configs"] = []any{sd}
}

// http sets the endpoint's scrape and HTTP client settings, reading the
// Secrets and ConfigMaps they refer to (in the monitor's namespace).
func (j job) http(e endpoint, ns string, r resolver) error {
	j["honor_labels"] = e.honorLabels
	if e.honorTimestamps != nil {
		j["honor_timestamps"] = *e.honorTimestamps
	}
	if e.trackStaleness != nil {
		j["track_timestamps_staleness"] = *e.trackStaleness
	}
	set := func(k, v string) {
		if v != "" {
			j[k] = v
		}
	}
	set("scrape_interval", e.interval)
	set("scrape_timeout", e.timeout)
	set("metrics_path", e.path)
	set("scheme", e.scheme)
	if e.params != nil {
		j["params"] = e.params
	}
	if e.followRedirects != nil {
		j["follow_redirects"] = *e.followRedirects
	}
	if e.enableHTTP2 != nil {
		j["enable_http2"] = *e.enableHTTP2
	}
	if e.proxyURL != nil && *e.proxyURL != "" {
		j["proxy_url"] = *e.proxyURL
	}
	if e.oauth2 != nil {
		return fmt.Errorf("oauth2 is not supported by kmetrics")
	}
	if e.tls != nil {
		tls, err := r.tls(ns, e.tls)
		if err != nil {
			return err
		}
		j["tls_config"] = tls
	}
	if e.bearerTokenFile != "" {
		if err := r.tokenFile(ns, e.bearerTokenFile); err != nil {
			return err
		}
		j["bearer_token_file"] = e.bearerTokenFile
	}
	if e.bearerTokenSecret != nil && e.bearerTokenSecret.Name != "" {
		b, err := r.secret(ns, *e.bearerTokenSecret)
		if err != nil {
			return fmt.Errorf("bearerTokenSecret: %w", err)
		}
		j["bearer_token"] = b
	}
	if e.basicAuth != nil {
		user, err := r.secret(ns, e.basicAuth.Username)
		if err != nil {
			return fmt.Errorf("basicAuth username: %w", err)
		}
		pass, err := r.secret(ns, e.basicAuth.Password)
		if err != nil {
			return fmt.Errorf("basicAuth password: %w", err)
		}
		j["basic_auth"] = map[string]any{"username": user, "password": pass}
	}
	if a := e.authorization; a != nil && (a.Type != "" || a.Credentials != nil) {
		auth := map[string]any{}
		if a.Type != "" {
			auth["type"] = strings.TrimSpace(a.Type)
		}
		if a.Credentials != nil {
			c, err := r.secret(ns, *a.Credentials)
			if err != nil {
				return fmt.Errorf("authorization credentials: %w", err)
			}
			auth["credentials"] = c
		}
		j["authorization"] = auth
	}
	return nil
}

// finish ends a job as the operator does: the endpoint label (the port's
// name or number), the monitor's own relabelings, limits and metric
// relabelings.
func (j job) finish(rl []relabel, endpointName string, e endpoint, l limits) {
	if endpointName != "" {
		rl = append(rl, relabel{"target_label": "endpoint", "replacement": endpointName})
	}
	j["relabel_configs"] = append(rl, userRelabelings(e.relabelings)...)
	j.limits(l)
	if len(e.metricRelabelings) > 0 {
		j["metric_relabel_configs"] = userRelabelings(e.metricRelabelings)
	}
}

func (j job) limits(l limits) {
	for k, v := range map[string]*int64{
		"sample_limit": l.sample, "target_limit": l.target, "label_limit": l.label,
		"label_name_length_limit": l.labelName, "label_value_length_limit": l.labelValue, "keep_dropped_targets": l.keepDropped,
	} {
		if v != nil {
			j[k] = *v
		}
	}
	h := l.histograms
	if h.ScrapeNativeHistograms != nil {
		j["scrape_native_histograms"] = *h.ScrapeNativeHistograms
	}
	if h.NativeHistogramBucketLimit != nil {
		j["native_histogram_bucket_limit"] = *h.NativeHistogramBucketLimit
	}
	if h.NativeHistogramMinBucketFactor != nil {
		j["native_histogram_min_bucket_factor"] = h.NativeHistogramMinBucketFactor.AsApproximateFloat64()
	}
	if h.ScrapeClassicHistograms != nil {
		j["always_scrape_classic_histograms"] = *h.ScrapeClassicHistograms
	}
	if h.ConvertClassicHistogramsToNHCB != nil {
		j["convert_classic_histograms_to_nhcb"] = *h.ConvertClassicHistogramsToNHCB
	}
	if len(l.protocols) > 0 {
		j["scrape_protocols"] = l.protocols
	}
	if l.fallback != nil {
		j["fallback_scrape_protocol"] = *l.fallback
	}
	if l.bodySize != nil && *l.bodySize != "" {
		j["body_size_limit"] = string(*l.bodySize)
	}
}

type relabel map[string]any

// initRelabelings keeps the job's name in a temporary label, as the
// operator does (user relabelings may refer to it).
func initRelabelings() []relabel {
	return []relabel{{"source_labels": []string{"job"}, "target_label": "__tmp_prometheus_job_name"}}
}

func runningFilter() relabel {
	return relabel{"action": "drop", "source_labels": []string{"__meta_kubernetes_pod_phase"}, "regex": "(Failed|Succeeded)"}
}

func copyLabel(from, to string) relabel {
	return relabel{"source_labels": []string{from}, "target_label": to}
}

func copyNonEmpty(from, to string) relabel {
	return relabel{"source_labels": []string{from}, "target_label": to, "regex": "(.+)", "replacement": "${1}"}
}

// selectorRelabelings turn a label selector on the role's object (service
// or pod) into keep/drop rules, as the operator's relabel mechanism does.
func selectorRelabelings(role string, sel metav1.LabelSelector) []relabel {
	label := func(k string) string { return "__meta_kubernetes_" + role + "_label_" + sanitize(k) }
	present := func(k string) string { return "__meta_kubernetes_" + role + "_labelpresent_" + sanitize(k) }
	var out []relabel
	keys := make([]string, 0, len(sel.MatchLabels))
	for k := range sel.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, relabel{"action": "keep", "source_labels": []string{label(k), present(k)}, "regex": fmt.Sprintf("(%s);true", sel.MatchLabels[k])})
	}
	for _, exp := range sel.MatchExpressions {
		values := fmt.Sprintf("(%s);true", strings.Join(exp.Values, "|"))
		switch exp.Operator {
		case metav1.LabelSelectorOpIn:
			out = append(out, relabel{"action": "keep", "source_labels": []string{label(exp.Key), present(exp.Key)}, "regex": values})
		case metav1.LabelSelectorOpNotIn:
			out = append(out, relabel{"action": "drop", "source_labels": []string{label(exp.Key), present(exp.Key)}, "regex": values})
		case metav1.LabelSelectorOpExists:
			out = append(out, relabel{"action": "keep", "source_labels": []string{present(exp.Key)}, "regex": "true"})
		case metav1.LabelSelectorOpDoesNotExist:
			out = append(out, relabel{"action": "drop", "source_labels": []string{present(exp.Key)}, "regex": "true"})
		}
	}
	return out
}

func userRelabelings(rc []monitoringv1.RelabelConfig) []relabel {
	out := make([]relabel, 0, len(rc))
	for _, c := range rc {
		r := relabel{}
		if len(c.SourceLabels) > 0 {
			r["source_labels"] = c.SourceLabels
		}
		if c.Separator != nil {
			r["separator"] = *c.Separator
		}
		if c.TargetLabel != "" {
			r["target_label"] = c.TargetLabel
		}
		if c.Regex != "" {
			r["regex"] = c.Regex
		}
		if c.Modulus != 0 {
			r["modulus"] = c.Modulus
		}
		if c.Replacement != nil {
			r["replacement"] = *c.Replacement
		}
		if c.Action != "" {
			r["action"] = strings.ToLower(c.Action)
		}
		out = append(out, r)
	}
	return out
}

func sanitize(s string) string { return strutil.SanitizeLabelName(s) }
