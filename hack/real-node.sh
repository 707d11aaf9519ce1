#!/usr/bin/env bash
# One real node beside the kwok nodes of a cluster hack/cluster.sh brought
# up: Debian's containerd (runc, cgroupfs) and kubelet $K8S_VERSION built
# from the Go proxy, pods on a bridge of their own, a serving certificate signed by the
# cluster CA, webhook authentication and authorization against the API
# server. Its pause and workload images are built here (no registry).
#
#   hack/real-node.sh up | down | restart-kubelet [cluster|stranger|full PODS|pressure|expiring] | stop-kubelet
#                     | freeze-runtime SECONDS | import-image ARCHIVE REF | env
#
# restart-kubelet stranger serves a certificate from a CA nobody trusts
# (what a node with a wrong CA looks like to kmetrics); full gives the node
# room for PODS pods; pressure sets a memory eviction threshold above the
# node's memory (MemoryPressure, pods evicted); expiring gives it client and
# serving certificates issued ten days ago that end in 20 hours, and turns
# on their renewal (see kubelet_config); cluster goes back.
# stop-kubelet stops it (the node turns NotReady, then unreachable).
# freeze-runtime stops containerd (SIGSTOP) for SECONDS, then resumes it: a
# runtime that hangs; every call the kubelet makes to it (its PLEG's relist
# among them) waits meanwhile, while the containers run on (their shims are
# processes of their own).
# Settings (environment): KMETRICS_STATE (the cluster's state dir),
# KMETRICS_APISERVER_PORT, KMETRICS_REAL_NODE_IP (default: this machine's
# first global IPv4 address: the kubelet refuses a loopback node IP),
# KMETRICS_REAL_NODE_POD_SUBNET (the pods' addresses, default 10.244.0.0/24).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${KMETRICS_STATE:?KMETRICS_STATE: the cluster state directory}
APISERVER_PORT=${KMETRICS_APISERVER_PORT:-6443}
# shellcheck source=hack/k8s-version.sh
source "$ROOT/hack/k8s-version.sh"
export PATH=$K8S_BIN:$PATH
NODE=real-node
NODE_IP=${KMETRICS_REAL_NODE_IP:-}
# The image the kubelet and containerd run as every pod's sandbox.
PAUSE_IMAGE=registry.k8s.io/pause:3.10
WORKLOAD_IMAGE=kmetrics.local/workload:e2e
# metrics-server's e2e suite runs its consumers from this image (pulled by
# its users from registry.k8s.io): built here from Kubernetes' consume-cpu
# and the workload's stress, under the same name.
CONSUMER_IMAGE=registry.k8s.io/e2e-test-images/resource-consumer:1.9

D=$STATE/real-node
BRIDGE=kmetrics0
POD_SUBNET=${KMETRICS_REAL_NODE_POD_SUBNET:-10.244.0.0/24}
CERTS=$STATE/certs
LOGS=$STATE/logs
PIDS=$STATE/pids
SOCK=$D/run/containerd.sock
# The kubelet's own certificate directory (--cert-dir): what it renews is
# kept there. It exists once the expiring mode has run.
CERT_DIR=$D/kubelet-pki
KUBECONFIG_ADMIN=$STATE/admin.kubeconfig

log() { echo "[real-node] $*" >&2; }
die() { echo "[real-node] ERROR: $*" >&2; exit 1; }
kc() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
ctr_() { ctr --address "$SOCK" --namespace k8s.io "$@"; }

# shellcheck source=hack/lib.sh
source "$ROOT/hack/lib.sh"
[ -n "$NODE_IP" ] || NODE_IP=$(host_ip || true)

pki() {
  [ -f "$D/pki/.done" ] && return 0
  mkdir -p "$D/pki"
  local sans="IP:$NODE_IP,DNS:$NODE"
  # What a kubelet's serving certificate is after serverTLSBootstrap: the cluster CA's.
  sign_cert "$D/pki/serving" "$CERTS/ca" "/O=system:nodes/CN=system:node:$NODE" serverAuth 30 "$sans"
  # The kubelet's client identity towards the API server.
  sign_cert "$D/pki/client" "$CERTS/ca" "/O=system:nodes/CN=system:node:$NODE" clientAuth 30
  # A CA no one trusts, and a serving certificate from it.
  self_signed_ca "$D/pki/stranger-ca" stranger-ca 30
  sign_cert "$D/pki/stranger-serving" "$D/pki/stranger-ca" "/CN=system:node:$NODE" serverAuth 30 "$sans"
  touch "$D/pki/.done"
}

# images builds the workload binary (test/internal/workload: pause when run
# without arguments) into one image and imports it under both names.
images() {
  mkdir -p "$D/image"
  (cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$D/image/workload" ./test/internal/workload)
  workload_image "$WORKLOAD_IMAGE" "$D/image/oci"
  ctr_ images tag --force "$WORKLOAD_IMAGE" "$PAUSE_IMAGE" >/dev/null
  # The consumer: /consume-cpu/consume-cpu (the suite runs it relative to
  # /) and stress on PATH (the workload, which acts as stress by that name).
  workload_image "$CONSUMER_IMAGE" "$D/image/consumer" \
    -add "consume-cpu/consume-cpu=$K8S_BIN/consume-cpu" -add "bin/stress=$D/image/workload"
}

# workload_image REF OUT [hack/image flags]: the workload binary as an
# image named REF (archive OUT.tar), imported into the node's containerd.
workload_image() {
  local ref=$1 out=$2
  shift 2
  (cd "$ROOT/hack/image" && CGO_ENABLED=0 go run -trimpath . -file workload -name "${ref%:*}" -version "${ref##*:}" "$@" \
    -out "$out" "linux/$(go env GOARCH)=$D/image/workload" >/dev/null)
  import_image "$out.tar" "$ref"
}

# import_image ARCHIVE REF: an OCI archive of hack/image into the node's
# containerd, named REF (what a pod's image field names; pulling is never
# needed: IfNotPresent finds it).
import_image() {
  local archive=$1 ref=$2 name
  name=$(tar -xOf "$archive" index.json | jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]')
  [ -n "$name" ] && [ "$name" != null ] || die "$archive names no image (index.json has no ref.name)"
  ctr_ images import --base-name "${name%:*}" "$archive" >/dev/null
  ctr_ images tag --force "$name" "$ref" >/dev/null
  # Listed first, then searched: `ctr … | grep -q` under pipefail fails when
  # grep exits at the match before ctr has written everything (SIGPIPE).
  local images
  images=$(ctr_ images ls -q)
  grep -qx "$ref" <<<"$images" || die "the import did not name $ref: $images"
}

containerd_up() {
  mkdir -p "$D/containerd" "$D/run" "$D/cni/net.d" "$D/opt"
  # A bridge with addresses from host-local: pods not on the host network
  # (metrics-server's suite creates such) get an address, and no more — no
  # route out, no masquerading (no iptables here), no other node to reach.
  # With a network configured the runtime reports NetworkReady (the node
  # Ready).
  cat > "$D/cni/net.d/10-bridge.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "kmetrics-pods", "plugins": [{"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
  "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_SUBNET"}]], "dataDir": "$D/cni/ipam"}}]}
JSON
  cat > "$D/containerd.toml" <<TOML
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$D/run/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$D/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # This sandbox denies a negative oom_score_adj (the kubelet asks for
  # -997 for Guaranteed pods): clamp instead of failing the container.
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$D/cni/net.d"
TOML
  start containerd containerd --config "$D/containerd.toml"
  wait_for "containerd" 30 containerd ctr --address "$SOCK" version
}

kubelet_config() { # kubelet_config cluster|stranger|full PODS|pressure|expiring
  local cert=serving client=client max_pods=110 memory_threshold=1Mi rotate=false bootstrap=false
  case "$1" in
    cluster) ;;
    stranger) cert=stranger-serving ;;
    # Issued ten days ago, ending in 20 hours: past the point where a
    # kubelet renews its certificates (70-90 % of their life) and under the
    # day the kubernetes-mixin's critical expiry alerts count down from.
    # From an empty certificate directory: what the kubelet renews (through
    # CertificateSigningRequests) lands there.
    expiring)
      cert=expiring-serving client=expiring-client
      sign_cert_between "$D/pki/$cert" "$CERTS/ca" "/O=system:nodes/CN=system:node:$NODE" serverAuth \
        "-10 days" "+20 hours" "IP:$NODE_IP,DNS:$NODE"
      sign_cert_between "$D/pki/$client" "$CERTS/ca" "/O=system:nodes/CN=system:node:$NODE" clientAuth "-10 days" "+20 hours"
      rm -rf "$CERT_DIR"
      mkdir -p "$CERT_DIR"
      ;;
    full) max_pods=${2:?full takes the pod capacity} ;;
    # Less than 99% of the memory available, always: pressure, evictions
    # (the kubelet ignores a threshold of 100%).
    pressure) memory_threshold=99% ;;
    *) die "kubelet_config: $1: not cluster, stranger, full, pressure or expiring" ;;
  esac
  # Once renewal is on, every later mode keeps it, with what was renewed
  # (as a node does): the renewal errors' counters stay series across
  # restarts. Not for the stranger's certificate: the renewed one would win.
  if [ -d "$CERT_DIR" ]; then
    rotate=true
    [ "$1" = stranger ] || bootstrap=true
  fi
  client_kubeconfig "$D/kubelet.kubeconfig" kubelet "$D/pki/$client"
  cat > "$D/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
tlsCertFile: $D/pki/$cert.crt
tlsPrivateKeyFile: $D/pki/$cert.key
rotateCertificates: $rotate
serverTLSBootstrap: $bootstrap
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true, cacheTTL: 10s}
  x509: {clientCAFile: $CERTS/ca.crt}
authorization:
  mode: Webhook
  webhook: {cacheAuthorizedTTL: 10s, cacheUnauthorizedTTL: 5s}
cgroupDriver: cgroupfs
# This host has cgroup v1 (hybrid): kubelet 1.35+ refuses it unless told.
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
containerRuntimeEndpoint: unix://$SOCK
podLogsDir: $D/pod-logs
staticPodPath: ""
resolvConf: ""
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusUpdateFrequency: 10s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: $max_pods
evictionHard: {memory.available: "$memory_threshold", nodefs.available: 1%, imagefs.available: 1%}
# A condition ends as soon as its signal does (default 5m).
evictionPressureTransitionPeriod: 5s
# Only pods that ask for the real node land on it.
registerWithTaints:
- {key: kmetrics.dev/real-node, effect: NoSchedule}
YAML
}

# cAdvisor inside the kubelet reads container stats through its own
# containerd client, which (kubelet 1.37 no longer takes cAdvisor's
# --containerd flag) only dials the default socket: without it there are no container-level
# cAdvisor series. On this test machine no other containerd owns that path, so
# it is a link to this node's socket; a real one there is never replaced.
link_default_socket() {
  local def=/run/containerd/containerd.sock
  if [ -S "$def" ] && [ ! -L "$def" ]; then
    die "$def belongs to another containerd: stop it, or run the real node elsewhere"
  fi
  mkdir -p /run/containerd
  ln -sfn "$SOCK" "$def"
}

unlink_default_socket() {
  local def=/run/containerd/containerd.sock
  if [ -L "$def" ] && [ "$(readlink "$def")" = "$SOCK" ]; then rm -f "$def"; fi
}

kubelet_up() {
  link_default_socket
  start kubelet "$K8S_BIN/kubelet" --config "$D/kubelet.yaml" --kubeconfig "$D/kubelet.kubeconfig" \
    --hostname-override "$NODE" --node-ip "$NODE_IP" --root-dir "$D/kubelet" --cert-dir "$CERT_DIR" \
    --node-labels "kmetrics.dev/real-node=true" --v 2
  wait_for "node $NODE Ready" 120 kubelet kc wait --for=condition=Ready "node/$NODE" --timeout=1s
}

up() {
  [ -x "$K8S_BIN/kubelet" ] || bash "$ROOT/hack/build-cluster-bins.sh"
  [ -n "$NODE_IP" ] || die "no global IPv4 address for the node (KMETRICS_REAL_NODE_IP)"
  mkdir -p "$D" "$LOGS" "$PIDS"
  pki
  # RBAC only (no Node authorizer in this control plane): the node's own role.
  kc create clusterrolebinding "kmetrics-e2e:$NODE" --clusterrole system:node --user "system:node:$NODE" \
    --dry-run=client -o yaml | kc apply -f - >/dev/null
  containerd_up
  images
  kubelet_config cluster
  kubelet_up
  log "up: node $NODE at https://$NODE_IP:10250"
}

restart_kubelet() { # restart_kubelet cluster|stranger|full PODS|pressure|expiring
  stop kubelet
  kubelet_config "${1:-cluster}" "${2:-}"
  kubelet_up
}

freeze_runtime() { # freeze_runtime SECONDS
  local pid
  pid=$(cat "$PIDS/containerd.pid")
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = containerd ] || die "process $pid of $PIDS/containerd.pid is not containerd"
  trap "kill -CONT $pid 2>/dev/null || true" EXIT
  kill -STOP "$pid"
  sleep "$1"
  kill -CONT "$pid"
}

# down stops every container (the shims outlive containerd), then the
# kubelet and containerd, and removes the node, its cgroups and state.
down() {
  [ -d "$D" ] || return 0
  stop kubelet
  if alive "$PIDS/containerd.pid"; then
    local c
    for c in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true; done
    sleep 1
    for c in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$c" >/dev/null 2>&1 || true; done
    for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$c" >/dev/null 2>&1 || true; done
  fi
  stop containerd
  unlink_default_socket
  pkill -9 -f "containerd-shim-runc-v2 .*-address $SOCK" 2>/dev/null || true
  kc delete node "$NODE" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  # Mounts under the state (rootfs, pod volumes), deepest first.
  awk -v d="$D" '$2 ~ "^"d {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  # The pods' cgroups, deepest first (empty once their processes are gone):
  # every kubepods cgroup of the host, which is right on a test machine
  # running no other kubelet, and wrong anywhere else.
  local sub
  for sub in /sys/fs/cgroup/*/kubepods; do
    [ -d "$sub" ] && find "$sub" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -rf "$D"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  restart-kubelet) restart_kubelet "${2:-cluster}" "${3:-}" ;;
  stop-kubelet) stop kubelet ;;
  freeze-runtime) freeze_runtime "${2:?SECONDS}" ;;
  import-image) import_image "${2:?ARCHIVE}" "${3:?REF}" ;;
  env)
    echo "REAL_NODE=$NODE"
    echo "REAL_NODE_IP=$NODE_IP"
    echo "REAL_NODE_DIR=$D"
    echo "REAL_NODE_STRANGER_CA=$D/pki/stranger-ca.crt"
    echo "REAL_NODE_WORKLOAD_IMAGE=$WORKLOAD_IMAGE"
    echo "REAL_NODE_CONSUMER_IMAGE=$CONSUMER_IMAGE"
    ;;
  *) echo "usage: $0 up|down|restart-kubelet [cluster|stranger|full PODS|pressure|expiring]|stop-kubelet|freeze-runtime SECONDS|import-image ARCHIVE REF|env" >&2; exit 2 ;;
esac
