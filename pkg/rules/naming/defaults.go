package naming

import _ "embed"

// DefaultConfig is used without --custom-metrics.config: every counter
// (*_total) of an annotated application becomes a per-second rate named
// without _total (http_requests_total → http_requests, as
// prometheus-adapter's default config names it), every other series a
// gauge, per pod, namespace, node and service, as custom and as external
// metrics; and the kubelets' node CPU and memory per node.
//
//go:embed default-config.yaml
var DefaultConfig []byte
