package token

import "sync"

// DefaultCacheSize bounds the cache of verified tokens. An entry is the
// token's SHA-256 (32 bytes) and its Claims (string headers, numbers, and
// the strings they point to); BenchmarkCache measures the bytes per entry,
// and the README gives the figure.
const DefaultCacheSize = 32_768

// cache remembers tokens that verified, keyed by a hash of the whole
// token, so that /session behind a gateway does not repeat a public-key
// signature check on every API call. An entry never outlives its token's
// exp; when full, an arbitrary entry makes room.
type cache struct {
	mu  sync.Mutex
	max int
	m   map[[32]byte]Claims
}

func newCache(max int) *cache {
	return &cache{max: max, m: make(map[[32]byte]Claims)}
}

// get returns the claims of a cached token whose exp is after minExp.
func (c *cache) get(sum [32]byte, minExp int64) (Claims, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.m[sum]
	if ok && cl.Expiry <= minExp {
		delete(c.m, sum)
		return Claims{}, false
	}
	return cl, ok
}

func (c *cache) put(sum [32]byte, cl Claims) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k := range c.m { // map order is random: an arbitrary victim
			delete(c.m, k)
			break
		}
	}
	c.m[sum] = cl
}

// Cached is how many verified tokens the cache holds.
func (s *Set) Cached() int {
	if s.cache == nil {
		return 0
	}
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	return len(s.cache.m)
}
