#!/usr/bin/env bash
# Builds kube-state-metrics v2.20.0 from the Go module proxy into
# ~/.cache/kmetrics/bin/kube-state-metrics-v2.20.0: the cluster-state peer of
# make bench-footprint (the stack kmetrics replaces: metrics-server,
# kube-state-metrics and a Prometheus holding both). Prints the path.
set -euo pipefail
exec bash "$(dirname "$0")/go-install-tool.sh" kube-state-metrics k8s.io/kube-state-metrics/v2 v2.20.0
