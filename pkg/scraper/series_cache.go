package scraper

import "hash/maphash"

// seriesCache finds a target's series by their raw exposition text without
// keeping that text: the text (~100 bytes a kubelet series, more than the
// entry itself) would be a second copy of every series beside the labels
// the head keeps. A series is keyed by a 64-bit hash of its text and its
// entry holds a second, independent one, so a hit is two hashes equal.
//
// Both hashes are seeded per cache, so a tenant who names a pod cannot make
// its series collide with another's on purpose; by chance two of a target's
// series share the first hash with odds of n²/2⁶⁵ (10⁻¹² for 10,000
// series). When they do, the later one is kept by its text in collided, so
// a collision costs memory, never a sample given to the wrong series.
type seriesCache struct {
	key, check func([]byte) uint64
	entries    map[uint64]*seriesEntry
	collided   map[string]*seriesEntry
}

func newSeriesCache() *seriesCache {
	keySeed, checkSeed := maphash.MakeSeed(), maphash.MakeSeed()
	return &seriesCache{
		key:     func(b []byte) uint64 { return maphash.Bytes(keySeed, b) },
		check:   func(b []byte) uint64 { return maphash.Bytes(checkSeed, b) },
		entries: map[uint64]*seriesEntry{},
	}
}

// cacheSlot is where get found, or put will keep, one series.
type cacheSlot struct {
	key, check uint64
	collided   bool // another series holds key
}

// get returns the entry of the series whose text is raw (nil if none) and
// the slot to put a new one in.
func (c *seriesCache) get(raw []byte) (*seriesEntry, cacheSlot) {
	s := cacheSlot{key: c.key(raw), check: c.check(raw)}
	e := c.entries[s.key]
	if e != nil && e.check == s.check {
		return e, s
	}
	s.collided = e != nil
	if len(c.collided) > 0 {
		// The series may have collided with one that has since gone.
		if e := c.collided[string(raw)]; e != nil {
			return e, s
		}
	}
	return nil, s
}

// put keeps e as the series whose text is raw, in the slot get gave.
func (c *seriesCache) put(raw []byte, s cacheSlot, e *seriesEntry) {
	e.check = s.check
	if !s.collided {
		c.entries[s.key] = e
		return
	}
	if c.collided == nil {
		c.collided = map[string]*seriesEntry{}
	}
	c.collided[string(raw)] = e
}

// sweep calls keep for every entry and removes those it returns false for.
func (c *seriesCache) sweep(keep func(*seriesEntry) bool) {
	for k, e := range c.entries {
		if !keep(e) {
			delete(c.entries, k)
		}
	}
	for k, e := range c.collided {
		if !keep(e) {
			delete(c.collided, k)
		}
	}
}
