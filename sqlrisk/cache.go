package sqlrisk

import (
	"sync"
	"sync/atomic"

	"github.com/airlock-gw/airlock/protocols"
)

// Cache defaults.
const (
	DefaultCacheEntries  = 10000
	DefaultCacheMaxText  = 16 << 10
	DefaultCacheMaxBytes = 64 << 20
)

type cacheKey struct {
	protocol protocols.Protocol
	text     string
}

type cacheSlot struct {
	key  cacheKey
	val  *protocols.Classification
	size int
	ref  atomic.Bool
}

// Cache is a bounded, concurrency-safe map from (protocol, exact text) to a
// classification, so that prepared statements and ORMs that repeat the same
// text cost a map lookup. Eviction is CLOCK (second chance): a hit only sets
// a flag under the read lock, so concurrent hits never contend on a write
// lock. It bounds both the number of entries and the bytes of text they
// hold, and never stores texts longer than its per-text bound.
type Cache struct {
	mu       sync.RWMutex
	index    map[cacheKey]*cacheSlot
	ring     []*cacheSlot
	free     []int // positions of ring emptied by eviction
	hand     int
	bytes    int
	entries  int
	maxText  int
	maxBytes int

	hits, misses atomic.Uint64
}

// NewCache returns a cache of at most entries classifications, each for a
// text of at most maxText bytes, holding at most maxBytes of text in all.
// Zero values take the defaults; entries < 0 returns nil, a valid cache that
// stores nothing.
func NewCache(entries, maxText, maxBytes int) *Cache {
	if entries < 0 {
		return nil
	}
	if entries == 0 {
		entries = DefaultCacheEntries
	}
	if maxText <= 0 {
		maxText = DefaultCacheMaxText
	}
	if maxBytes <= 0 {
		maxBytes = DefaultCacheMaxBytes
	}
	return &Cache{
		index:    make(map[cacheKey]*cacheSlot, min(entries, 1024)),
		entries:  entries,
		maxText:  maxText,
		maxBytes: maxBytes,
	}
}

// get returns the cached classification for key.
func (c *Cache) get(k cacheKey) (*protocols.Classification, bool) {
	if c == nil || len(k.text) > c.maxText {
		return nil, false
	}
	c.mu.RLock()
	s, ok := c.index[k]
	var v *protocols.Classification
	if ok {
		v = s.val
		s.ref.Store(true)
	}
	c.mu.RUnlock()
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return v, ok
}

// put stores v for key when the text is small enough.
func (c *Cache) put(k cacheKey, v *protocols.Classification) {
	if c == nil || len(k.text) > c.maxText {
		return
	}
	size := len(k.text) + len(v.Redacted)
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.index[k]; ok {
		c.bytes += size - s.size
		s.val, s.size = v, size
		return
	}
	for len(c.index) > 0 && (len(c.index) >= c.entries || c.bytes+size > c.maxBytes) {
		c.evict()
	}
	s := &cacheSlot{key: k, val: v, size: size}
	c.index[k] = s
	c.bytes += size
	if n := len(c.free); n > 0 {
		c.ring[c.free[n-1]] = s
		c.free = c.free[:n-1]
		return
	}
	c.ring = append(c.ring, s)
}

// evict removes one entry whose reference flag is clear, clearing the flags
// it passes on the way (at most two sweeps of the ring).
func (c *Cache) evict() {
	for range 2*len(c.ring) + 1 {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		s := c.ring[c.hand]
		if s == nil {
			c.hand++
			continue
		}
		if s.ref.Load() {
			s.ref.Store(false)
			c.hand++
			continue
		}
		delete(c.index, s.key)
		c.bytes -= s.size
		c.ring[c.hand] = nil
		c.free = append(c.free, c.hand)
		c.hand++
		return
	}
}

// CacheStats are a cache's counters.
type CacheStats struct {
	Entries int
	Bytes   int
	Hits    uint64
	Misses  uint64
}

// Stats returns the cache's counters; a nil cache has none.
func (c *Cache) Stats() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return CacheStats{Entries: len(c.index), Bytes: c.bytes, Hits: c.hits.Load(), Misses: c.misses.Load()}
}
