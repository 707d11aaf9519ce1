package tenancy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/tools/cache"
)

// rbac is an authorizer from a table: user → the attributes it is allowed,
// as "path", "nodes" or "pods/<namespace>". It records what it was asked.
type rbac struct {
	mu      sync.Mutex
	grants  map[string][]string
	fail    string // a namespace whose review fails
	reviews []authorizer.Attributes
}

func (r *rbac) Authorize(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reviews = append(r.reviews, a)
	var what string
	switch {
	case !a.IsResourceRequest():
		what = a.GetPath()
	case a.GetAPIGroup() != "metrics.k8s.io" || a.GetVerb() != "get":
		return authorizer.DecisionNoOpinion, "", nil
	case a.GetResource() == "nodes" && a.GetNamespace() == "":
		what = "nodes"
	case a.GetResource() == "pods":
		if r.fail != "" && a.GetNamespace() == r.fail {
			return authorizer.DecisionNoOpinion, "", errors.New("SubjectAccessReview timed out")
		}
		what = "pods/" + a.GetNamespace()
	}
	if slices.Contains(r.grants[a.GetUser().GetName()], what) {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}

func TestDecide(t *testing.T) {
	var namespaces []string
	for i := range 50 {
		namespaces = append(namespaces, fmt.Sprintf("ns-%02d", i))
	}
	authz := &rbac{grants: map[string][]string{
		"reader":  {"/prometheus/api/v1/query"},
		"team-a":  {"pods/ns-07", "pods/ns-03"},
		"team-b":  {"pods/ns-42"},
		"ops":     {"nodes", "pods/ns-01"},
		"nodes":   {"nodes"},
		"nothing": nil,
		"viewer":  {"pods/"}, // view everywhere (a ClusterRoleBinding)
	}}
	d := NewDecider(authz, "/prometheus/api/v1/query", func() ([]string, error) { return namespaces, nil })
	for _, c := range []struct {
		user string
		want Scope
	}{
		{"reader", Scope{All: true}},
		{"team-a", Scope{Namespaces: []string{"ns-03", "ns-07"}}},
		{"team-b", Scope{Namespaces: []string{"ns-42"}}},
		{"ops", Scope{Cluster: true, Namespaces: []string{"ns-01"}}},
		{"nodes", Scope{Cluster: true}},
		{"nothing", Scope{}},
		{"viewer", Scope{Namespaces: namespaces}},
	} {
		t.Run(c.user, func(t *testing.T) {
			got, err := d.Decide(context.Background(), &user.DefaultInfo{Name: c.user})
			if err != nil {
				t.Fatal(err)
			}
			if got.All != c.want.All || got.Cluster != c.want.Cluster || !slices.Equal(got.Namespaces, c.want.Namespaces) {
				t.Fatalf("scope %+v, want %+v", got, c.want)
			}
			if got.Empty() != (c.user == "nothing") {
				t.Fatalf("Empty() = %v", got.Empty())
			}
		})
	}
}

// The reviews carry the caller's whole identity: RBAC bindings to groups
// and webhook authorizers reading extra depend on it.
func TestDecideReviewsCarryTheIdentity(t *testing.T) {
	authz := &rbac{grants: map[string][]string{}}
	d := NewDecider(authz, "/q", func() ([]string, error) { return []string{"a"}, nil })
	u := &user.DefaultInfo{Name: "bob", UID: "u-1", Groups: []string{"team-b"}, Extra: map[string][]string{"scopes": {"view"}}}
	if _, err := d.Decide(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if len(authz.reviews) != 4 {
		t.Fatalf("%d reviews, want the path, nodes, every namespace and one namespace", len(authz.reviews))
	}
	for _, a := range authz.reviews {
		if a.GetUser() != u {
			t.Errorf("review %+v does not carry the caller", a)
		}
	}
}

// A review that fails is an error, not a denial (the caller would see a
// partial answer as if complete) nor an allowance.
func TestDecideAuthorizerErrors(t *testing.T) {
	authz := &rbac{grants: map[string][]string{"team-a": {"pods/a", "pods/b"}}, fail: "b"}
	d := NewDecider(authz, "/q", func() ([]string, error) { return []string{"a", "b", "c"}, nil })
	if s, err := d.Decide(context.Background(), &user.DefaultInfo{Name: "team-a"}); err == nil {
		t.Fatalf("scope %+v despite a failed review", s)
	}
	d = NewDecider(authz, "/q", func() ([]string, error) { return nil, errors.New("not synced") })
	if _, err := d.Decide(context.Background(), &user.DefaultInfo{Name: "team-a"}); err == nil {
		t.Fatal("no error when the namespaces cannot be listed")
	}
}

// With candidates, only the namespaces a RoleBinding names the caller in
// are reviewed: a decision costs a few reviews on a cluster of 1,000
// namespaces.
func TestDecideReviewsOnlyCandidates(t *testing.T) {
	var namespaces []string
	for i := range 1000 {
		namespaces = append(namespaces, fmt.Sprintf("ns-%03d", i))
	}
	rbs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, SubjectIndexers)
	for i, b := range []struct {
		ns       string
		subjects []rbacv1.Subject
	}{
		{"ns-007", []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "grafana", Namespace: "team-a"}}},
		{"ns-008", []rbacv1.Subject{{Kind: rbacv1.GroupKind, Name: "team-a-devs"}}},
		{"ns-009", []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "alice"}}},
		{"ns-010", []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "mallory"}}},
		{"ns-011", []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "default"}}}, // namespace: the binding's
	} {
		_ = rbs.Add(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: b.ns, Name: fmt.Sprint("rb-", i)}, Subjects: b.subjects})
	}
	authz := &rbac{grants: map[string][]string{
		"alice":                                {"pods/ns-008", "pods/ns-009", "pods/ns-500"}, // ns-500: granted by no RoleBinding (a webhook)
		"system:serviceaccount:team-a:grafana": {"pods/ns-007"},
		"system:serviceaccount:ns-011:default": {"pods/ns-011"},
	}}
	listed := 0
	d := NewDecider(authz, "/q", func() ([]string, error) { listed++; return namespaces, nil }).WithCandidates(RoleBindingCandidates(rbs))
	for _, c := range []struct {
		u    user.Info
		want []string
	}{
		{&user.DefaultInfo{Name: "alice", Groups: []string{"team-a-devs", "system:authenticated"}}, []string{"ns-008", "ns-009"}},
		{&user.DefaultInfo{Name: "system:serviceaccount:team-a:grafana"}, []string{"ns-007"}},
		{&user.DefaultInfo{Name: "system:serviceaccount:ns-011:default"}, []string{"ns-011"}},
		{&user.DefaultInfo{Name: "bob"}, nil},
	} {
		authz.reviews = nil
		s, err := d.Decide(context.Background(), c.u)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Namespaces, c.want) {
			t.Errorf("%s: %v, want %v", c.u.GetName(), s.Namespaces, c.want)
		}
		if listed != 0 {
			t.Errorf("%s: every namespace listed %d times though candidates were given", c.u.GetName(), listed)
		}
		if n := len(authz.reviews); n > 3+len(c.want)+1 {
			t.Errorf("%s: %d reviews on 1,000 namespaces", c.u.GetName(), n)
		}
	}
}

func TestScopeAllows(t *testing.T) {
	s := Scope{Namespaces: []string{"a", "c"}}
	for ns, want := range map[string]bool{"a": true, "b": false, "c": true, "": false, "a|c": false, ".*": false} {
		if s.Allows(ns) != want {
			t.Errorf("Allows(%q) = %v", ns, !want)
		}
	}
	if !(Scope{Cluster: true}).Allows("") || (Scope{Cluster: true}).Allows("a") || !(Scope{All: true}).Allows("x") {
		t.Error("cluster and all scopes")
	}
}
