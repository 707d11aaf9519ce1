package tenancy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
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
		if a.GetNamespace() == r.fail {
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
	if len(authz.reviews) != 3 {
		t.Fatalf("%d reviews, want the path, nodes and one namespace", len(authz.reviews))
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
