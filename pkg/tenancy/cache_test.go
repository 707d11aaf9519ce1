package tenancy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
)

// countingDecider answers from scopes by user name and counts its calls.
type countingDecider struct {
	calls  atomic.Int64
	mu     sync.Mutex
	scopes map[string]Scope
	err    error
}

func (d *countingDecider) decide(_ context.Context, u user.Info) (Scope, error) {
	d.calls.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.scopes[u.GetName()], d.err
}

func (d *countingDecider) set(name string, s Scope) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.scopes[name] = s
}

func alice() user.Info {
	return &user.DefaultInfo{Name: "alice", UID: "1", Groups: []string{"team-a", "system:authenticated"}}
}

func TestCacheTTLAndRevocation(t *testing.T) {
	d := &countingDecider{scopes: map[string]Scope{"alice": {Namespaces: []string{"a1", "a2"}}}}
	c := NewCache(d.decide, 30*time.Second, 10)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()

	s, err := c.Scope(ctx, alice())
	if err != nil || !s.Allows("a1") || s.Allows("b1") {
		t.Fatalf("first scope %+v, %v", s, err)
	}
	// Her RoleBinding in a2 is revoked: the cache answers the old scope
	// until the TTL, the new one after it.
	d.set("alice", Scope{Namespaces: []string{"a1"}})
	now = now.Add(29 * time.Second)
	if s, _ := c.Scope(ctx, alice()); !s.Allows("a2") || d.calls.Load() != 1 {
		t.Fatalf("within the TTL: %+v after %d decisions, want the cached scope", s, d.calls.Load())
	}
	now = now.Add(2 * time.Second)
	if s, _ := c.Scope(ctx, alice()); s.Allows("a2") || d.calls.Load() != 2 {
		t.Fatalf("after the TTL: %+v after %d decisions, want a2 revoked", s, d.calls.Load())
	}
}

func TestCacheBound(t *testing.T) {
	d := &countingDecider{scopes: map[string]Scope{}}
	c := NewCache(d.decide, time.Hour, 2)
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c"} {
		_, _ = c.Scope(ctx, &user.DefaultInfo{Name: n})
	}
	if c.done.Len() != 2 {
		t.Fatalf("%d identities held, bound 2", c.done.Len())
	}
	// a, the least recently used, was dropped: decided again.
	_, _ = c.Scope(ctx, &user.DefaultInfo{Name: "a"})
	if d.calls.Load() != 4 {
		t.Fatalf("%d decisions, want 4 (a decided again)", d.calls.Load())
	}
}

func TestCacheDecidesOnceAtATime(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	c := NewCache(func(context.Context, user.Info) (Scope, error) {
		calls.Add(1)
		<-release
		return Scope{Namespaces: []string{"a1"}}, nil
	}, time.Minute, 10)
	var wg sync.WaitGroup
	results := make(chan Scope, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.Scope(context.Background(), alice())
			if err != nil {
				t.Error(err)
			}
			results <- s
		}()
	}
	// Let the callers pile up behind the first decision, then finish it.
	for c.inflightCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	close(results)
	if calls.Load() != 1 {
		t.Fatalf("%d decisions for 100 concurrent requests of one identity, want 1", calls.Load())
	}
	for s := range results {
		if !s.Allows("a1") {
			t.Fatalf("a caller got %+v", s)
		}
	}
}

func TestCacheWaiterMayGiveUp(t *testing.T) {
	release := make(chan struct{})
	c := NewCache(func(context.Context, user.Info) (Scope, error) {
		<-release
		return Scope{All: true}, nil
	}, time.Minute, 10)
	go func() { _, _ = c.Scope(context.Background(), alice()) }()
	for c.inflightCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Scope(ctx, alice()); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled waiter got %v", err)
	}
	close(release)
}

func TestCacheErrorsAreNotKept(t *testing.T) {
	d := &countingDecider{scopes: map[string]Scope{"alice": {All: true}}, err: errors.New("API server unavailable")}
	c := NewCache(d.decide, time.Hour, 10)
	if _, err := c.Scope(context.Background(), alice()); err == nil {
		t.Fatal("the authorizer's error was swallowed")
	}
	d.mu.Lock()
	d.err = nil
	d.mu.Unlock()
	if s, err := c.Scope(context.Background(), alice()); err != nil || !s.All {
		t.Fatalf("after the error: %+v, %v, want decided again", s, err)
	}
}

// Two identities differing in anything a SubjectAccessReview carries never
// share a cached scope — whatever their names hold.
func TestIdentityKeysDoNotCollide(t *testing.T) {
	ids := []user.Info{
		&user.DefaultInfo{Name: "alice"},
		&user.DefaultInfo{Name: "alice", UID: "2"},
		&user.DefaultInfo{Name: "alice", Groups: []string{"team-a"}},
		&user.DefaultInfo{Name: "alice", Groups: []string{"team-b"}},
		&user.DefaultInfo{Name: "alice", Extra: map[string][]string{"scopes": {"x"}}},
		&user.DefaultInfo{Name: "alice", Extra: map[string][]string{"scopes": {"y"}}},
		&user.DefaultInfo{Name: `alice","UID":"","Groups":["team-a"]`},
		&user.DefaultInfo{Name: "alice\x00team-a"},
	}
	seen := map[string]int{}
	for i, u := range ids {
		k := identityKey(u)
		if j, dup := seen[k]; dup {
			t.Errorf("identities %d and %d share the key %s", j, i, k)
		}
		seen[k] = i
	}
	// Order does not make another identity.
	a := &user.DefaultInfo{Name: "a", Groups: []string{"x", "y"}, Extra: map[string][]string{"k": {"1", "2"}, "l": {"3"}}}
	b := &user.DefaultInfo{Name: "a", Groups: []string{"y", "x"}, Extra: map[string][]string{"l": {"3"}, "k": {"2", "1"}}}
	if identityKey(a) != identityKey(b) {
		t.Error("the same identity with groups in another order has another key")
	}
}
