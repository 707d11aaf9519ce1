#!/usr/bin/env bash
# Regenerates pkg/apiserver/metricsapi/openapi: the OpenAPI models of
# metrics.k8s.io v1 and v1beta1 and the apimachinery types they use, which
# the API server publishes and needs at start-up. openapi-gen is
# kube-openapi's, at the version go.mod already requires.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(go list -m -f '{{.Version}}' k8s.io/kube-openapi)
out=pkg/apiserver/metricsapi/openapi
rm -f "$out/zz_generated.openapi.go"
go run "k8s.io/kube-openapi/cmd/openapi-gen@$version" \
  --output-dir "$out" --output-pkg github.com/kmetrics/kmetrics/$out \
  --output-file zz_generated.openapi.go --go-header-file hack/boilerplate/boilerplate.go.txt \
  --report-filename /dev/null \
  k8s.io/metrics/pkg/apis/metrics/v1 k8s.io/metrics/pkg/apis/metrics/v1beta1 \
  k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/api/resource \
  k8s.io/apimachinery/pkg/version k8s.io/apimachinery/pkg/runtime
