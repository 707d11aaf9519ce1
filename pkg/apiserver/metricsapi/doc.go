// Package metricsapi serves the resource metrics API, metrics.k8s.io, in
// both versions Kubernetes 1.37 defines: v1 (GA, preferred) and v1beta1.
//
// One REST storage per resource returns the group's internal types; the
// generic API server converts them to the requested version with
// k8s.io/metrics' generated conversions and encodes them as JSON, YAML,
// protobuf or a Table. Both versions therefore always carry the same
// content.
package metricsapi
