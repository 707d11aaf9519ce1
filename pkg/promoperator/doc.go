// Package promoperator reads what kube-prometheus users already have — the
// prometheus-operator's ServiceMonitors, PodMonitors and PrometheusRules —
// and turns them into what kmetrics runs: scrape jobs for the application
// scraper (with the operator's own relabeling, so every series carries
// the labels Prometheus under the operator would give it) and rule files
// for the rule evaluator. The CRDs are optional: kmetrics starts watching
// when they appear.
package promoperator
