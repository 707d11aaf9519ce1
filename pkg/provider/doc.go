// Package provider answers the metrics APIs from storage: resource metrics
// (metrics.k8s.io) from the latest-value index.
package provider
