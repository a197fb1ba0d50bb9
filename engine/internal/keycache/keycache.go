// Package keycache keeps unwrapped data keys in memory for a bounded time
// and count, so that reads of a blob do not ask the key provider (an HSM,
// a KMS) to unwrap its data key each time. Keys are never written
// anywhere.
package keycache

import (
	"container/list"
	"sync"
	"time"
)

// Key names one unwrapped data key: the blob and the wrap it was
// unwrapped from. The wrapped bytes are part of it: a blob swept by gc and
// pushed again has the same digest and key-encryption key but a new data
// key, which must not be served the old one.
type Key struct {
	// Blob is the blob's digest.
	Blob string
	// KEK is the key-encryption key's name, as the wrap has it.
	KEK string
	// Version is the key-encryption key's version that made the wrap.
	Version uint32
	// Wrapped is the wrapped data key.
	Wrapped string
}

// Cache is a least-recently-used cache of data keys whose entries expire
// a fixed time after they were put. It is safe for concurrent use.
type Cache struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	ll    *list.List
	items map[Key]*list.Element
}

type entry struct {
	k       Key
	key     []byte
	expires time.Time
}

// New returns a cache of at most max keys (none when max <= 0), each kept
// for ttl after it is put, by the clock now.
func New(max int, ttl time.Duration, now func() time.Time) *Cache {
	return &Cache{max: max, ttl: ttl, now: now, ll: list.New(), items: map[Key]*list.Element{}}
}

// Get returns the data key k names, or nil when the cache has none (or it
// expired).
func (c *Cache) Get(k Key) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil
	}
	ent := el.Value.(*entry)
	if c.now().After(ent.expires) {
		c.removeLocked(el)
		return nil
	}
	c.ll.MoveToFront(el)
	return ent.key
}

// Put keeps key under k, dropping the least recently used keys beyond
// the bound.
func (c *Cache) Put(k Key, key []byte) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.removeLocked(el)
	}
	c.items[k] = c.ll.PushFront(&entry{k: k, key: key, expires: c.now().Add(c.ttl)})
	for c.ll.Len() > c.max {
		c.removeLocked(c.ll.Back())
	}
}

// Drop removes every key unwrapped through a key-encryption key whose
// name match accepts, and returns how many.
func (c *Cache) Drop(match func(kek string) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, el := range c.items {
		if match(k.KEK) {
			c.removeLocked(el)
			n++
		}
	}
	return n
}

// Len is the number of keys held (expired ones included until they are
// next looked up).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

func (c *Cache) removeLocked(el *list.Element) {
	ent := el.Value.(*entry)
	delete(c.items, ent.k)
	c.ll.Remove(el)
	// Callers may still hold the slice for an in-flight read; it is
	// released by the garbage collector rather than zeroed under them.
}
