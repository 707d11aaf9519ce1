// Package storage keeps every scraped sample in Prometheus's embedded TSDB and,
// beside it, a small latest-value index of the resource metrics (the last two
// CPU points and the latest memory point per node and container) so that the
// metrics.k8s.io API never has to run a TSDB query per request.
package storage
