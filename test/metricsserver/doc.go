// Package metricsserver is a module of its own that only requires
// metrics-server v0.8.0, so that metrics-server's own end-to-end suite
// (sigs.k8s.io/metrics-server/test, unchanged, from the module cache) is
// built with its own dependencies and run against kmetrics:
//
//	cd test/metricsserver && go test -c -o ../../_output/metrics-server-e2e.test sigs.k8s.io/metrics-server/test
//
// test/e2e's TestInstalledInCluster runs the binary (METRICS_SERVER_E2E)
// against the kmetrics pod the chart installs; make e2e builds it.
package metricsserver
