#!/usr/bin/env bash
# Builds (once, cached by version) everything the local control plane needs:
# kube-apiserver, kube-controller-manager, kube-scheduler and kwok from the Go
# module proxy, and etcd from Debian. Binaries land in $KMETRICS_CACHE/bin.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.33.13}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
CACHE=${KMETRICS_CACHE:-$HOME/.cache/kmetrics}
BIN=$CACHE/bin
mkdir -p "$BIN"

log() { echo "[build-cluster-bins] $*" >&2; }

install_apt() { # install_apt <command> <package>
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing Debian package $2"
  if [ -z "${KMETRICS_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    export KMETRICS_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

# The control plane and the one real node's kubelet, each cached by version;
# whatever is missing is built in one `go build` (they share most packages).
K8S_BINARIES="kube-apiserver kube-controller-manager kube-scheduler kubelet"
build_kubernetes() {
  local missing="" c
  for c in $K8S_BINARIES; do
    [ -f "$BIN/.$c-$K8S_VERSION" ] && [ -x "$BIN/$c" ] || missing="$missing $c"
  done
  [ -z "$missing" ] && return 0
  log "building Kubernetes $K8S_VERSION:$missing from the Go module proxy (cold: ~12 min)"
  local work; work=$(mktemp -d)
  (
    cd "$work"
    go mod init kmetrics.local/k8sbins >/dev/null 2>&1
    # Kubernetes' own go.mod replaces its staging modules with ./staging/...;
    # point each at the published module of the same minor instead.
    local gomod; gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
    local staging_version=v0${K8S_VERSION#v1}
    go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
    grep -E '^\s*k8s.io/[^ ]+ => ./staging/' "$gomod" | awk '{print $1}' | while read -r m; do
      go mod edit -replace="$m=$m@$staging_version"
    done
    { echo '//go:build tools'; echo; echo 'package tools'; echo; echo 'import ('
      for c in $K8S_BINARIES; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
      echo ')'; } > tools.go
    go mod tidy -e >/dev/null 2>&1 || true
    local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
    local vpkg=k8s.io/component-base/version
    local ld="-s -w -X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"
    local pkgs=""
    for c in $missing; do pkgs="$pkgs k8s.io/kubernetes/cmd/$c"; done
    # shellcheck disable=SC2086 # one word per package
    go build -ldflags "$ld" -o "$BIN/" $pkgs
  )
  rm -rf "$work"
  for c in $missing; do touch "$BIN/.$c-$K8S_VERSION"; done
}

build_kwok() {
  local marker=$BIN/.kwok-$KWOK_VERSION
  if [ -f "$marker" ] && [ -x "$BIN/kwok" ]; then return 0; fi
  log "building kwok $KWOK_VERSION from the Go module proxy (cold: ~2 min)"
  GOBIN=$BIN go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  touch "$marker"
}

install_apt etcd etcd-server
install_apt openssl openssl
install_apt jq jq
# For the end-to-end alerting test: a real Alertmanager.
install_apt prometheus-alertmanager prometheus-alertmanager
# Debian's Prometheus: what the equivalence test and make bench-adapter compare with.
install_apt prometheus prometheus
# A real L4 load balancer in front of the HA pair (the loopback cluster
# cannot give a Service two endpoints).
install_apt haproxy haproxy
# kmetrics' own image run as a container (runc: crun cannot use this host's
# cgroups; settings in hack/podman/containers.conf).
install_apt podman podman
install_apt runc runc
# What the README publishes the image with (skopeo copy --all).
install_apt skopeo skopeo
# The one real node (test/e2e, TestRealKubelet): containerd runs its
# containers (runc, installed above); ctr imports the locally built images.
install_apt containerd containerd
build_kwok
build_kubernetes
log "ready: $(ls "$BIN" | tr '\n' ' ')"
