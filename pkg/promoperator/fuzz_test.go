package promoperator

import (
	"encoding/json"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
)

// Whatever a tenant writes into a monitor or a rule (the CRD schema is not
// the only writer: it may be absent, or older than kmetrics' types), the
// conversion refuses or accepts it without panicking: one object cannot
// take the controller, and with it every other monitor, down.
func FuzzMonitorObjects(f *testing.F) {
	for _, seed := range []string{
		`{"metadata":{"namespace":"shop","name":"cart"},"spec":{"jobLabel":"app","targetLabels":["team"],"selector":{"matchLabels":{"app":"cart"},"matchExpressions":[{"key":"tier","operator":"In","values":["a","b"]}]},"namespaceSelector":{"any":true},"endpoints":[{"port":"web","interval":"5s","scheme":"https","tlsConfig":{"ca":{"secret":{"name":"scrape-tls","key":"ca.crt"}},"serverName":"x"},"bearerTokenSecret":{"name":"scrape-token","key":"token"},"relabelings":[{"sourceLabels":["a"],"regex":"(.*)","targetLabel":"b","action":"replace"}],"metricRelabelings":[{"sourceLabels":["__name__"],"regex":"go_.*","action":"drop"}]}],"sampleLimit":10}}`,
		`{"spec":{"podMetricsEndpoints":[{"portNumber":9100,"path":"/m","params":{"a":["b"]}}],"podTargetLabels":["app"]}}`,
		`{"spec":{"endpoints":[{"targetPort":8080,"scrapeTimeout":"1m","interval":"1s"}],"bodySizeLimit":"1KB","scrapeProtocols":["PrometheusProto"]}}`,
		`{"spec":{"groups":[{"name":"g","rules":[{"record":"a:b","expr":"sum(up)"},{"alert":"A","expr":"up == 0","for":"5m"}]}]}}`,
	} {
		f.Add([]byte(seed))
	}
	r := testResolver("shop")
	f.Fuzz(func(t *testing.T, b []byte) {
		var sm monitoringv1.ServiceMonitor
		if json.Unmarshal(b, &sm) == nil {
			if jobs, err := serviceMonitorJobs(&sm, r); err == nil {
				_, _, _ = parse(testDefaults, jobs, nil)
			}
		}
		var pm monitoringv1.PodMonitor
		if json.Unmarshal(b, &pm) == nil {
			if jobs, err := podMonitorJobs(&pm, r); err == nil {
				_, _, _ = parse(testDefaults, jobs, nil)
			}
		}
		var pr monitoringv1.PrometheusRule
		if json.Unmarshal(b, &pr) == nil {
			_, _ = ruleFile(&pr, true, nil)
		}
	})
}
