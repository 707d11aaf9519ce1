# The Kubernetes release of the local cluster, sourced by every script that
# builds or runs it. K8S_VERSION switches it (e.g. K8S_VERSION=v1.35.4 for
# the oldest minor upstream supports); each version's binaries, kubectl
# included, live in their own cache directory, so switching back and forth
# builds nothing twice.
K8S_VERSION=${K8S_VERSION:-v1.37.2}
K8S_BIN=${KMETRICS_CACHE:-$HOME/.cache/kmetrics}/k8s/$K8S_VERSION
