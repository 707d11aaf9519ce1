package tenancy

import (
	"fmt"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/tools/cache"
)

// SubjectIndex is the name of the RoleBinding index by subject.
const SubjectIndex = "subject"

// SubjectIndexers index RoleBindings by the subjects they name ("User:…",
// "Group:…"; a service account as the user it authenticates as).
var SubjectIndexers = cache.Indexers{SubjectIndex: func(obj any) ([]string, error) {
	rb, ok := obj.(*rbacv1.RoleBinding)
	if !ok {
		return nil, fmt.Errorf("not a RoleBinding: %T", obj)
	}
	var keys []string
	for _, s := range rb.Subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			keys = append(keys, "User:"+s.Name)
		case rbacv1.GroupKind:
			keys = append(keys, "Group:"+s.Name)
		case rbacv1.ServiceAccountKind:
			ns := s.Namespace
			if ns == "" {
				ns = rb.Namespace
			}
			keys = append(keys, "User:"+serviceaccount.MakeUsername(ns, s.Name))
		}
	}
	return keys, nil
}}

// RoleBindingCandidates are the namespaces with a RoleBinding naming u, its
// service account or one of its groups, from an informer's indexer with
// SubjectIndexers: where RBAC can have granted u something in a namespace
// alone. Grants that are not RoleBindings reach every namespace (a
// ClusterRoleBinding, reviewed once for all) or come from another
// authorizer (a webhook): those need --query.scope-namespaces=all.
func RoleBindingCandidates(rolebindings cache.Indexer) func(u user.Info) ([]string, error) {
	return func(u user.Info) ([]string, error) {
		keys := []string{"User:" + u.GetName()}
		for _, g := range u.GetGroups() {
			keys = append(keys, "Group:"+g)
		}
		var out []string
		for _, k := range keys {
			objs, err := rolebindings.ByIndex(SubjectIndex, k)
			if err != nil {
				return nil, err
			}
			for _, o := range objs {
				out = append(out, o.(*rbacv1.RoleBinding).Namespace)
			}
		}
		slices.Sort(out)
		return slices.Compact(out), nil
	}
}
