// Package kubestate renders kube-state-metrics' families — exactly its names,
// labels, types and units (kube-state-metrics' docs/metrics are the
// reference) — from informer caches kmetrics runs, so dashboards and alerts
// written for kube-state-metrics work on kmetrics' store unchanged.
//
// A resource that is not enabled is never listed or watched; a family that
// is denied is never rendered. Rendering is a pure function of the caches:
// the caller stores the exposition (whole or nothing, with staleness for
// objects that went away) the way it stores a scrape.
package kubestate
