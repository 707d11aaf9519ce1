// Package kubestate renders kube-state-metrics' families — exactly its names,
// labels, types and units (kube-state-metrics' docs/metrics are the
// reference) — from informer caches kmetrics runs, so dashboards and alerts
// written for kube-state-metrics work on kmetrics' store unchanged.
//
// A resource that is not enabled is never listed or watched; a family that
// is denied is never rendered. Rendering is a pure function of the caches,
// handed family by family to a Sink: the text format (Render), or the
// caller's writer, which stores the series directly (whole or nothing, with
// staleness for objects that went away) as it would a scrape of the text.
package kubestate
