package keys

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
)

func entry(p string) *cacheEntry { return &cacheEntry{key: cacheKey{tenant: "t", patient: p}} }

func TestCacheBoundedLRU(t *testing.T) {
	c := newCache(3, time.Minute, clock.NewFake(time.Unix(0, 0)).Now)
	for _, p := range []string{"a", "b", "c"} {
		c.put(c.snapshot(), entry(p))
	}
	c.get(cacheKey{tenant: "t", patient: "a"}) // a is now most recently used
	c.put(c.snapshot(), entry("d"))            // evicts b
	if c.len() != 3 {
		t.Fatalf("len %d, want 3", c.len())
	}
	for p, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if _, ok := c.get(cacheKey{tenant: "t", patient: p}); ok != want {
			t.Errorf("%s cached = %v, want %v", p, ok, want)
		}
	}
}

func TestCacheTTL(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	c := newCache(10, 30*time.Second, fc.Now)
	c.put(c.snapshot(), entry("a"))
	fc.Advance(29 * time.Second)
	if _, ok := c.get(entry("a").key); !ok {
		t.Fatal("expired early")
	}
	fc.Advance(time.Second)
	if _, ok := c.get(entry("a").key); ok {
		t.Fatal("served after TTL")
	}
	if c.len() != 0 {
		t.Fatal("expired entry kept")
	}
}

// A key loaded before an invalidation (e.g. a shred) is not cached after it.
func TestCacheInvalidateBeatsInFlightLoad(t *testing.T) {
	c := newCache(10, time.Minute, time.Now)
	epoch := c.snapshot()
	c.put(c.snapshot(), entry("a"))
	c.invalidate(entry("a").key)
	if _, ok := c.get(entry("a").key); ok {
		t.Fatal("invalidated entry served")
	}
	c.put(epoch, entry("a")) // the in-flight load finishing late
	if _, ok := c.get(entry("a").key); ok {
		t.Fatal("stale load re-cached after invalidation")
	}
}

func TestCacheDisabled(t *testing.T) {
	for _, c := range []*cache{newCache(-1, time.Minute, time.Now), newCache(10, -1, time.Now)} {
		c.put(c.snapshot(), entry("a"))
		if c.len() != 0 {
			t.Fatal("disabled cache stored an entry")
		}
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := newCache(50, time.Minute, time.Now)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				p := fmt.Sprint((w * i) % 100)
				if _, ok := c.get(entry(p).key); !ok {
					c.put(c.snapshot(), entry(p))
				}
				if i%97 == 0 {
					c.invalidate(entry(p).key)
				}
			}
		})
	}
	wg.Wait()
	if n := c.len(); n > 50 {
		t.Fatalf("cache grew to %d entries, bound is 50", n)
	}
}
