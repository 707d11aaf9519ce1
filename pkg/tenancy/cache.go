package tenancy

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/utils/lru"
)

// DecideFunc decides one identity's scope (the SubjectAccessReviews).
type DecideFunc func(ctx context.Context, u user.Info) (Scope, error)

// Cache remembers each identity's scope for a TTL, holds at most a bound of
// identities (least recently used go first), and decides an identity once
// at a time: callers asking while a decision runs wait for it (no
// thundering herd of SubjectAccessReviews). A failed decision is not kept:
// the next request decides again.
type Cache struct {
	decide DecideFunc
	ttl    time.Duration
	now    func() time.Time

	done *lru.Cache // identity key → entry

	mu       sync.Mutex
	inflight map[string]*call
}

type entry struct {
	scope   Scope
	expires time.Time
}

type call struct {
	finished chan struct{}
	scope    Scope
	err      error
}

// NewCache caches decide's answers for ttl, for at most size identities.
func NewCache(decide DecideFunc, ttl time.Duration, size int) *Cache {
	return &Cache{decide: decide, ttl: ttl, now: time.Now, done: lru.New(size), inflight: map[string]*call{}}
}

// Scope is u's scope: cached, or decided now.
func (c *Cache) Scope(ctx context.Context, u user.Info) (Scope, error) {
	key := identityKey(u)
	if v, ok := c.done.Get(key); ok {
		if e := v.(entry); c.now().Before(e.expires) {
			return e.scope, nil
		}
		c.done.Remove(key)
	}
	c.mu.Lock()
	cl, running := c.inflight[key]
	if !running {
		cl = &call{finished: make(chan struct{})}
		c.inflight[key] = cl
	}
	c.mu.Unlock()
	if running {
		select {
		case <-cl.finished:
			return cl.scope, cl.err
		case <-ctx.Done():
			return Scope{}, ctx.Err()
		}
	}
	// The decision outlives one caller's cancellation: others wait for it.
	cl.scope, cl.err = c.decide(context.WithoutCancel(ctx), u)
	if cl.err == nil {
		c.done.Add(key, entry{scope: cl.scope, expires: c.now().Add(c.ttl)})
	}
	c.mu.Lock()
	delete(c.inflight, key)
	c.mu.Unlock()
	close(cl.finished)
	return cl.scope, cl.err
}

// identityKey is unambiguous: everything a SubjectAccessReview carries,
// groups and extra sorted, JSON-encoded (no separator a user name could
// forge).
func identityKey(u user.Info) string {
	groups := slices.Clone(u.GetGroups())
	slices.Sort(groups)
	extra := map[string][]string{}
	for k, v := range u.GetExtra() {
		v = slices.Clone(v)
		slices.Sort(v)
		extra[k] = v
	}
	b, _ := json.Marshal(struct {
		Name, UID string
		Groups    []string
		Extra     map[string][]string // encoding/json sorts map keys
	}{u.GetName(), u.GetUID(), groups, extra})
	return string(b)
}

// inflightCount is the number of decisions running (tests).
func (c *Cache) inflightCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inflight)
}
