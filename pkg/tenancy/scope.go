package tenancy

import (
	"slices"
)

// Scope is what one caller may read.
type Scope struct {
	// All: every series (a cluster-wide reader).
	All bool
	// Cluster: the series without a namespace (nodes, kmetrics itself).
	Cluster bool
	// Namespaces, sorted, whose series the caller may read.
	Namespaces []string
}

// Empty: the caller may read nothing (answered with 403, not an empty
// result).
func (s Scope) Empty() bool { return !s.All && !s.Cluster && len(s.Namespaces) == 0 }

// Allows reports whether a series of namespace ns ("" for none) is in the
// scope.
func (s Scope) Allows(ns string) bool {
	switch {
	case s.All:
		return true
	case ns == "":
		return s.Cluster
	}
	_, found := slices.BinarySearch(s.Namespaces, ns)
	return found
}
