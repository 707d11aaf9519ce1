// Package rules evaluates Prometheus recording and alerting rule files on the
// embedded TSDB with Prometheus' own rule manager, and sends alerts to
// Alertmanager with Prometheus' notifier.
package rules
