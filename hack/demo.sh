#!/usr/bin/env bash
# make demo: a local control plane with kwok nodes, kmetrics registered as
# the metrics.k8s.io APIService, a few loaded pods, and kubectl top.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export KMETRICS_STATE=${KMETRICS_STATE:-$ROOT/.state/demo}
STATE=$KMETRICS_STATE
# shellcheck source=hack/k8s-version.sh
source "$ROOT/hack/k8s-version.sh"
export PATH=$K8S_BIN:$PATH
PORT=${KMETRICS_PORT:-8443}
export KMETRICS_PORT=$PORT

case "${1:-up}" in
  down)
    bash "$ROOT/hack/cluster.sh" down
    exit 0 ;;
  up) ;;
  *) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac

step() { echo; echo "==> $*"; }
step "Bringing up the control plane (first run builds Kubernetes and kwok from the Go module proxy, ~10 min)"
bash "$ROOT/hack/cluster.sh" up
export KUBECONFIG=$STATE/admin.kubeconfig

step "Building and starting kmetrics on :$PORT (the APIServices reach it at this machine's address)"
make -C "$ROOT" --no-print-directory build >/dev/null
mkdir -p "$STATE/tsdb"
if ! kill -0 "$(cat "$STATE/pids/kmetrics.pid" 2>/dev/null)" 2>/dev/null; then
  setsid "$ROOT/bin/kmetrics" --kubeconfig "$STATE/kmetrics.kubeconfig" \
    --bind-address 0.0.0.0 --secure-port "$PORT" \
    --tls-cert-file "$STATE/certs/kmetrics.crt" --tls-private-key-file "$STATE/certs/kmetrics.key" \
    --storage.tsdb.path "$STATE/tsdb" --metric-resolution 10s --kubelet-request-timeout 5s \
    --rules.file "$ROOT/deploy/base/rules/*.yaml" \
    > "$STATE/logs/kmetrics.log" 2>&1 < /dev/null &
  echo $! > "$STATE/pids/kmetrics.pid"
fi
kubectl wait --for=condition=Available apiservice/v1.metrics.k8s.io apiservice/v1beta1.metrics.k8s.io --timeout=60s >/dev/null \
  || { echo "kmetrics did not become available; log: $STATE/logs/kmetrics.log"; tail -20 "$STATE/logs/kmetrics.log"; exit 1; }

step "Creating pods with CPU/memory load (kwok usage annotations)"
kubectl create namespace demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
for spec in "web 3 250m 64Mi" "api 2 500m 128Mi" "worker 1 1200m 512Mi"; do
  set -- $spec
  kubectl -n demo apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: $2
  selector: {matchLabels: {app: $1}}
  template:
    metadata:
      labels: {app: $1}
      annotations: {kwok.x-k8s.io/usage-cpu: "$3", kwok.x-k8s.io/usage-memory: "$4"}
    spec:
      containers:
      - {name: $1, image: registry.k8s.io/pause:3.10, resources: {requests: {cpu: 100m, memory: 64Mi}}}
YAML
done
echo "waiting for two scrapes of every pod…"
deadline=$((SECONDS + 90))
until [ "$(kubectl top pods -n demo --no-headers 2>/dev/null | wc -l)" -ge 6 ]; do
  [ $SECONDS -lt $deadline ] || { echo "pods not served after 90s; log: $STATE/logs/kmetrics.log"; exit 1; }
  sleep 2
done

step "kubectl top nodes"
kubectl top nodes
step "kubectl top pods -A"
kubectl top pods -A
step "The HPA's view: GET /apis/metrics.k8s.io/v1beta1/namespaces/demo/pods?labelSelector=app=worker"
kubectl get --raw "/apis/metrics.k8s.io/v1beta1/namespaces/demo/pods?labelSelector=app%3Dworker"; echo

step "A PromQL query (what a Grafana panel asks): CPU cores per pod in demo, from the TSDB"
C=$STATE/certs
curl -sf --cacert "$C/ca.crt" --cert "$C/admin.crt" --key "$C/admin.key" \
  "https://127.0.0.1:$PORT/prometheus/api/v1/query" \
  --data-urlencode 'query=sum by (pod) (irate(container_cpu_usage_seconds_total{namespace="demo"}[1m]))' \
  | jq -r '.data.result[] | "\(.metric.pod)\t\(.value[1] | tonumber * 1000 | round)m"'

cat <<MSG

kmetrics is running (log: $STATE/logs/kmetrics.log, TSDB: $STATE/tsdb).
Use your own kubectl:   export KUBECONFIG=$STATE/admin.kubeconfig
Change a pod's load:    kubectl -n demo annotate pod <pod> kwok.x-k8s.io/usage-cpu=900m --overwrite
Query API (Grafana data source URL https://127.0.0.1:$PORT/prometheus):
  curl --cacert $C/ca.crt --cert $C/admin.crt --key $C/admin.key \\
    https://127.0.0.1:$PORT/prometheus/api/v1/query --data-urlencode 'query=up'
Tear it all down:       make demo-down
MSG
