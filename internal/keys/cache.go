package keys

import (
	"container/list"
	"crypto/cipher"
	"sync"
	"time"
)

// cacheKey names an unwrapped key: a patient DEK (version 0) or a tenant
// KEK version (patient "").
type cacheKey struct {
	tenant, patient string
	version         int
}

type cacheEntry struct {
	key     cacheKey
	aead    cipher.AEAD
	id      keyID  // DEK: dekID; KEK: versionID
	mac     []byte // raw key, kept only for the blind-index key
	expires time.Time
}

// cache is a size-bounded LRU of unwrapped keys with a TTL. The TTL bounds
// how long a key destroyed or replaced by another process stays usable
// here; this process invalidates its own entries at once.
type cache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	ll    *list.List // front = most recently used
	m     map[cacheKey]*list.Element
	epoch uint64 // bumped on every invalidation
}

func newCache(max int, ttl time.Duration, now func() time.Time) *cache {
	return &cache{max: max, ttl: ttl, now: now, ll: list.New(), m: make(map[cacheKey]*list.Element)}
}

func (c *cache) get(k cacheKey) (*cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[k]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.ll.Remove(el)
		delete(c.m, k)
		return nil, false
	}
	c.ll.MoveToFront(el)
	return e, true
}

// snapshot returns the invalidation epoch; a key loaded from the store after
// a snapshot is cached only if nothing was invalidated meanwhile, so a load
// racing with Shred cannot put the shredded key back.
func (c *cache) snapshot() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

func (c *cache) put(epoch uint64, e *cacheEntry) {
	if c.max <= 0 || c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	e.expires = c.now().Add(c.ttl)
	if el, ok := c.m[e.key]; ok {
		el.Value = e
		c.ll.MoveToFront(el)
		return
	}
	c.m[e.key] = c.ll.PushFront(e)
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*cacheEntry).key)
	}
}

func (c *cache) invalidate(k cacheKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if el, ok := c.m[k]; ok {
		c.ll.Remove(el)
		delete(c.m, k)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
