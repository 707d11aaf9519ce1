// Package tenancy decides which series a caller of the query API may read,
// from Kubernetes RBAC: a Scope (everything, or some namespaces, with or
// without the series that have no namespace) per authenticated identity,
// decided with SubjectAccessReviews carrying the caller's user, groups, UID
// and extra, and cached per identity.
package tenancy
