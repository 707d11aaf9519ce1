#!/usr/bin/env bash
# Builds (once, cached by version) everything the local control plane needs:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kubectl
# ($K8S_BIN, one directory per version) and kwok ($KMETRICS_CACHE/bin) from the
# Go module proxy, and etcd, containerd and the test peers from Debian.
set -euo pipefail

# shellcheck source=hack/k8s-version.sh
source "$(dirname "$0")/k8s-version.sh"
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
CACHE=${KMETRICS_CACHE:-$HOME/.cache/kmetrics}
BIN=$CACHE/bin
mkdir -p "$BIN" "$K8S_BIN"

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

# The control plane, the one real node's kubelet and kubectl, cached by version;
# whatever is missing is built in one `go build` (they share most packages).
# etcd too, at the version that Kubernetes release requires (1.37: 3.7.0;
# Debian's 3.4 lacks the watch progress requests 1.37's watch lists need).
K8S_BINARIES="kube-apiserver kube-controller-manager kube-scheduler kubectl etcd"
# --control-plane: only what hack/cluster.sh runs (make demo); without it the
# real node's kubelet and the end-to-end suite's Debian packages too.
CONTROL_PLANE_ONLY=
[ "${1:-}" = --control-plane ] && CONTROL_PLANE_ONLY=1
# consume-cpu (Kubernetes' test/images/resource-consumer) burns the CPU
# metrics-server's e2e suite asks of its consumer image.
[ -n "$CONTROL_PLANE_ONLY" ] || K8S_BINARIES="$K8S_BINARIES kubelet consume-cpu"
# k8s_pkg NAME: the package a binary is built from.
k8s_pkg() {
  case $1 in
    consume-cpu) echo k8s.io/kubernetes/test/images/resource-consumer/consume-cpu ;;
    *) echo "k8s.io/kubernetes/cmd/$1" ;;
  esac
}
build_kubernetes() {
  local missing="" c
  for c in $K8S_BINARIES; do
    [ -x "$K8S_BIN/$c" ] || missing="$missing $c"
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
    mkdir etcd
    printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > etcd/main.go
    { echo '//go:build tools'; echo; echo 'package tools'; echo; echo 'import ('
      for c in $K8S_BINARIES; do [ "$c" = etcd ] || echo "	_ \"$(k8s_pkg "$c")\""; done
      echo ')'; } > tools.go
    go mod tidy -e >/dev/null 2>&1 || true
    local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
    # Both places Kubernetes' own build stamps (kubectl reports client-go's).
    local ld="-s -w" vpkg
    for vpkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"
    done
    local pkgs=""
    for c in $missing; do
      if [ "$c" = etcd ]; then pkgs="$pkgs ./etcd"; else pkgs="$pkgs $(k8s_pkg "$c")"; fi
    done
    # shellcheck disable=SC2086 # one word per package
    go build -ldflags "$ld" -o "$K8S_BIN/.partial/" $pkgs
    mv "$K8S_BIN"/.partial/* "$K8S_BIN/" && rmdir "$K8S_BIN/.partial"
  )
  rm -rf "$work"
}

build_kwok() {
  local marker=$BIN/.kwok-$KWOK_VERSION
  if [ -f "$marker" ] && [ -x "$BIN/kwok" ]; then return 0; fi
  log "building kwok $KWOK_VERSION from the Go module proxy (cold: ~2 min)"
  GOBIN=$BIN go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  touch "$marker"
}

install_apt openssl openssl
install_apt jq jq
build_kwok
build_kubernetes
if [ -n "$CONTROL_PLANE_ONLY" ]; then
  log "ready: $(ls "$BIN" "$K8S_BIN" | tr '\n' ' ')"
  exit 0
fi
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
# k9s runs headless in a tmux pane (TestK9s reads it with capture-pane).
install_apt tmux tmux
log "ready: $(ls "$BIN" "$K8S_BIN" | tr '\n' ' ')"
