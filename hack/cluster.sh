#!/usr/bin/env bash
# A real Kubernetes control plane on loopback: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and one kwok "kubelet" per node,
# serving /metrics/resource over TLS signed by the cluster CA.
#
#   hack/cluster.sh up | down | status | stop-node NAME | start-node NAME | register | env
#
# Settings (environment): KMETRICS_STATE (state dir), KMETRICS_APISERVER_PORT,
# KMETRICS_ETCD_PORT, KMETRICS_NODE_NET (e.g. 127.0.0 → nodes at .2, .3, …),
# KMETRICS_POD_NET (e.g. 127.100 → node N's pods at 127.100.N.x),
# KMETRICS_NODES (count), KMETRICS_PORT (where kmetrics serves on this
# machine's address; the APIServices point there), KMETRICS_AUTHENTICATION_CONFIG
# (the API server's --authentication-config). Two states with different settings run side by side.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${KMETRICS_STATE:-$ROOT/.state/demo}
APISERVER_PORT=${KMETRICS_APISERVER_PORT:-6443}
ETCD_PORT=${KMETRICS_ETCD_PORT:-2379}
NODE_NET=${KMETRICS_NODE_NET:-127.0.0}
# Pod IPs are loopback addresses too (node N's pods in $POD_NET.N.0/24), so a
# test or demo can serve an "application" on a pod's IP for kmetrics to scrape.
POD_NET=${KMETRICS_POD_NET:-127.100}
NODES=${KMETRICS_NODES:-3}
KMETRICS_PORT=${KMETRICS_PORT:-8443}
CACHE=${KMETRICS_CACHE:-$HOME/.cache/kmetrics}
BIN=$CACHE/bin
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
# shellcheck source=hack/k8s-version.sh
source "$ROOT/hack/k8s-version.sh"
# kubectl of the cluster's own release (K8S_VERSION) comes first.
export PATH=$K8S_BIN:$PATH

CERTS=$STATE/certs
LOGS=$STATE/logs
PIDS=$STATE/pids
KUBECONFIG_ADMIN=$STATE/admin.kubeconfig
ETCD_DATA=/dev/shm/kmetrics-etcd-$(echo "$STATE" | cksum | cut -d' ' -f1)

log() { echo "[cluster] $*" >&2; }
die() { echo "[cluster] ERROR: $*" >&2; exit 1; }
kc() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# shellcheck source=hack/lib.sh
source "$ROOT/hack/lib.sh"

node_ip() { echo "$NODE_NET.$(($1 + 1))"; }
node_name() { echo "kwok-node-$1"; }

gen_ca() { self_signed_ca "$CERTS/$1" "$2" 3650; } # gen_ca NAME CN

gen_cert() { # gen_cert NAME CA SUBJECT [SANS]
  sign_cert "$CERTS/$1" "$CERTS/$2" "$3" serverAuth,clientAuth 3650 "${4:-}"
}

certs() {
  [ -f "$CERTS/.done" ] && return 0
  log "generating certificates (ECDSA) in $CERTS"
  mkdir -p "$CERTS"
  gen_ca ca kmetrics-cluster-ca
  gen_ca front-proxy-ca kmetrics-front-proxy-ca
  gen_cert apiserver ca "/CN=kube-apiserver" \
    "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1"
  gen_cert admin ca "/O=system:masters/CN=kubernetes-admin"
  gen_cert front-proxy-client front-proxy-ca "/CN=front-proxy-client"
  local ips="" i
  for i in $(seq 1 "$NODES"); do ips="$ips${ips:+,}IP:$(node_ip "$i")"; done
  # The kubelets' serving certificate, signed by the cluster CA as a kubelet's is.
  gen_cert kubelet ca "/CN=kwok-kubelet" "$ips"
  # kmetrics' serving certificate: the name the aggregator verifies.
  gen_cert kmetrics ca "/CN=kmetrics.kube-system.svc" \
    "DNS:kmetrics.kube-system.svc,DNS:kmetrics.kube-system.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
  gen_key "$CERTS/sa.key"
  openssl ec -in "$CERTS/sa.key" -pubout -out "$CERTS/sa.pub" 2>/dev/null
  touch "$CERTS/.done"
}

kubeconfig_admin() { client_kubeconfig "$KUBECONFIG_ADMIN" admin "$CERTS/admin"; }

start_control_plane() {
  # KMETRICS_AUTHENTICATION_CONFIG: an AuthenticationConfiguration (e.g. a
  # JWT authenticator trusting an identity provider), as a cluster whose
  # users sign in with OIDC has.
  local authn=()
  [ -n "${KMETRICS_AUTHENTICATION_CONFIG:-}" ] && authn=(--authentication-config "$KMETRICS_AUTHENTICATION_CONFIG")
  mkdir -p "$ETCD_DATA"
  start etcd "$K8S_BIN/etcd" --name kmetrics --data-dir "$ETCD_DATA" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "kmetrics=http://127.0.0.1:$((ETCD_PORT + 1))"
  wait_for "etcd" 30 etcd curl -sf "http://127.0.0.1:$ETCD_PORT/health"

  start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$CERTS/apiserver.crt" --tls-private-key-file "$CERTS/apiserver.key" \
    --client-ca-file "$CERTS/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$CERTS/sa.pub" --service-account-signing-key-file "$CERTS/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --authorization-mode RBAC \
    --requestheader-client-ca-file "$CERTS/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$CERTS/front-proxy-client.crt" --proxy-client-key-file "$CERTS/front-proxy-client.key" \
    --enable-aggregator-routing=true \
    --endpoint-reconciler-type none "${authn[@]}"
  wait_for "kube-apiserver /readyz" 90 kube-apiserver kc get --raw /readyz

  start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$KUBECONFIG_ADMIN" --authentication-kubeconfig "$KUBECONFIG_ADMIN" \
    --authorization-kubeconfig "$KUBECONFIG_ADMIN" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
    --use-service-account-credentials \
    --service-account-private-key-file "$CERTS/sa.key" --root-ca-file "$CERTS/ca.crt" \
    --cluster-signing-cert-file "$CERTS/ca.crt" --cluster-signing-key-file "$CERTS/ca.key" \
    --horizontal-pod-autoscaler-sync-period 5s \
    --horizontal-pod-autoscaler-downscale-stabilization 15s \
    --horizontal-pod-autoscaler-cpu-initialization-period 10s \
    --horizontal-pod-autoscaler-initial-readiness-delay 5s
  start kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$KUBECONFIG_ADMIN" --authentication-kubeconfig "$KUBECONFIG_ADMIN" \
    --authorization-kubeconfig "$KUBECONFIG_ADMIN" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false
  # Pods are refused until the controller-manager made the default account.
  wait_for "the default ServiceAccount" 60 kube-controller-manager kc -n default get serviceaccount default
}

kwok_dir() { go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p'; }

start_node() { # start_node INDEX
  local i=$1 name ip cfg
  name=$(node_name "$i"); ip=$(node_ip "$i")
  cfg=$STATE/kwok/$name.yaml
  if [ ! -f "$cfg" ]; then
    mkdir -p "$STATE/kwok"
    local kd; kd=$(kwok_dir)
    {
      for f in stage/node/fast/node-initialize.yaml stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
               stage/pod/fast/pod-ready.yaml stage/pod/fast/pod-complete.yaml stage/pod/fast/pod-delete.yaml; do
        cat "$kd/kustomize/$f"; echo "---"
      done
      sed "s/NODE_NAME/$name/" "$ROOT/hack/kwok/metric.yaml.tmpl"
    } > "$cfg"
  fi
  kc apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata:
  name: $name
  labels: {type: kwok, kubernetes.io/hostname: $name, kubernetes.io/os: linux}
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
status:
  allocatable: {cpu: "4", memory: 16Gi, pods: "110"}
  capacity: {cpu: "4", memory: 16Gi, pods: "110"}
YAML
  start "kwok-$name" "$BIN/kwok" --kubeconfig "$KUBECONFIG_ADMIN" --config "$cfg" \
    --manage-single-node "$name" --node-ip "$ip" --node-port 10250 \
    --server-address "$ip:10250" --tls-cert-file "$CERTS/kubelet.crt" --tls-private-key-file "$CERTS/kubelet.key" \
    --cidr "$POD_NET.$i.0/24" --node-lease-duration-seconds 40
}

node_index() { local n=${1#kwok-node-}; [[ "$n" =~ ^[0-9]+$ ]] || die "unknown node $1"; echo "$n"; }

up() {
  mkdir -p "$STATE" "$LOGS" "$PIDS"
  bash "$ROOT/hack/build-cluster-bins.sh" --control-plane
  certs
  kubeconfig_admin
  log "starting the control plane (apiserver https://127.0.0.1:$APISERVER_PORT)"
  start_control_plane
  log "starting $NODES kwok nodes at $(node_ip 1)…$(node_ip "$NODES"):10250"
  local i
  for i in $(seq 1 "$NODES"); do start_node "$i"; done
  for i in $(seq 1 "$NODES"); do
    wait_for "node $(node_name "$i") Ready" 60 "kwok-$(node_name "$i")" \
      kc wait --for=condition=Ready "node/$(node_name "$i")" --timeout=1s
    wait_for "kubelet endpoint of $(node_name "$i")" 30 "kwok-$(node_name "$i")" \
      curl -sf --cacert "$CERTS/ca.crt" "https://$(node_ip "$i"):10250/metrics/resource"
  done
  register
  log "up: export KUBECONFIG=$KUBECONFIG_ADMIN"
}

# register applies kmetrics' RBAC from deploy/ and points the APIServices
# at the kmetrics this machine runs, with the cluster CA as caBundle. The
# aggregator routes to a Service's endpoints, as where the control plane
# cannot reach ClusterIPs (no kube-proxy here, nor on EKS with a custom CNI):
# a selector-less Service whose EndpointSlice is this machine's address
# (an endpoint cannot be loopback), where kmetrics listens. A kmetrics pod
# installed by the chart is reached the same way, through its Service.
register() {
  kc apply -f "$ROOT/deploy/base/rbac.yaml" >/dev/null
  kc apply -f "$ROOT/deploy/base/serviceaccount.yaml" >/dev/null
  local ca; ca=$(base64 -w0 < "$CERTS/ca.crt")
  local ip; ip=$(host_ip) || die "no global IPv4 address on this machine for the APIServices' endpoint"
  kc apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: kmetrics, namespace: kube-system}
spec:
  ports: [{name: https, port: $KMETRICS_PORT, targetPort: $KMETRICS_PORT, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kmetrics-host
  namespace: kube-system
  labels: {kubernetes.io/service-name: kmetrics, endpointslice.kubernetes.io/managed-by: kmetrics.dev-cluster-sh}
addressType: IPv4
ports: [{name: https, port: $KMETRICS_PORT, protocol: TCP}]
endpoints: [{addresses: ["$ip"], conditions: {ready: true}}]
YAML
  local gv
  for gv in v1.metrics.k8s.io:200 v1beta1.metrics.k8s.io:100 v1beta2.custom.metrics.k8s.io:200 v1beta1.custom.metrics.k8s.io:100 v1beta1.external.metrics.k8s.io:100; do
    local name=${gv%%:*} prio=${gv##*:}
    local version=${name%%.*} group=${name#*.}
    kc apply -f - >/dev/null <<YAML
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: $name}
spec:
  group: $group
  version: $version
  groupPriorityMinimum: 100
  versionPriority: $prio
  caBundle: $ca
  service: {name: kmetrics, namespace: kube-system, port: $KMETRICS_PORT}
YAML
  done
  # kmetrics runs as its ServiceAccount, so deploy/'s RBAC is what it gets.
  local token; token=$(kc -n kube-system create token kmetrics --duration 48h)
  local k=$STATE/kmetrics.kubeconfig
  kubectl config set-cluster local --server="https://127.0.0.1:$APISERVER_PORT" \
    --certificate-authority="$CERTS/ca.crt" --embed-certs=true --kubeconfig="$k" >/dev/null
  kubectl config set-credentials kmetrics --token="$token" --kubeconfig="$k" >/dev/null
  kubectl config set-context local --cluster=local --user=kmetrics --kubeconfig="$k" >/dev/null
  kubectl config use-context local --kubeconfig="$k" >/dev/null
}

down() {
  local f
  # A real node's containers outlive its kubelet: stop them first.
  KMETRICS_STATE=$STATE KMETRICS_APISERVER_PORT=$APISERVER_PORT bash "$ROOT/hack/real-node.sh" down || true
  for f in "$PIDS"/*.pid; do [ -e "$f" ] && stop "$(basename "$f" .pid)"; done
  rm -rf "$ETCD_DATA" "$STATE"
  log "down"
}

status() {
  local f
  for f in "$PIDS"/*.pid; do
    [ -e "$f" ] || continue
    if alive "$f"; then echo "running  $(basename "$f" .pid)"; else echo "stopped  $(basename "$f" .pid)"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  stop-node) stop "kwok-kwok-node-$(node_index "$2")" ;;
  start-node) start_node "$(node_index "$2")" ;;
  # The APIServices back to the kmetrics on this machine (after a test
  # pointed them at a pod).
  register) register ;;
  env)
    echo "KUBECONFIG=$KUBECONFIG_ADMIN"
    echo "KMETRICS_KUBECONFIG=$STATE/kmetrics.kubeconfig"
    echo "KMETRICS_CERTS=$CERTS"
    echo "KMETRICS_PORT=$KMETRICS_PORT"
    echo "KMETRICS_STATE=$STATE"
    ;;
  *) echo "usage: $0 up|down|status|stop-node NAME|start-node NAME|register|env" >&2; exit 2 ;;
esac
