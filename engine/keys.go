package engine

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/index"
)

// kekName is the key-encryption key of a repository: its KMS key, or the
// registry's default key.
func kekName(s *RepositorySettings) string {
	if s.Encryption.KMSKey != "" {
		return s.Encryption.KMSKey
	}
	return crypt.DefaultKeyName
}

// blobWrapAD is the associated data of a blob record's wraps: the digest,
// so a wrap cannot be moved to another blob's record.
func blobWrapAD(d digest.Digest) []byte { return []byte("blob\x00" + string(d)) }

// uploadWrapAD binds an upload's wrap to its session id.
func uploadWrapAD(id string) []byte { return []byte("upload\x00" + id) }

func toIndexWrap(w crypt.WrappedKey) index.KeyWrap {
	return index.KeyWrap{KeyID: w.KeyName, Version: w.Version, Wrapped: w.Ciphertext}
}

func fromIndexWrap(w index.KeyWrap) crypt.WrappedKey {
	return crypt.WrappedKey{KeyName: w.KeyID, Version: w.Version, Ciphertext: w.Wrapped}
}

// findWrap returns the wrap under key name in rec, if any.
func findWrap(rec *index.Blob, name string) (index.KeyWrap, bool) {
	for _, w := range rec.Wraps {
		if w.KeyID == name {
			return w, true
		}
	}
	return index.KeyWrap{}, false
}

// blobDataKey returns the data key of rec as the repository keyed by kek
// may read it: only through a wrap under kek. nil for a plain blob.
func (e *Engine) blobDataKey(ctx context.Context, rec *index.Blob, kek string) ([]byte, error) {
	if len(rec.Wraps) == 0 {
		return nil, nil
	}
	w, ok := findWrap(rec, kek)
	if !ok {
		return nil, fmt.Errorf("%w: blob %s has no wrap under key %q", ErrBlobUnknown, rec.Digest, kek)
	}
	ck := cacheKey(rec.Digest, w)
	if k := e.dkeys.get(ck); k != nil {
		return k, nil
	}
	k, err := e.keys.Unwrap(ctx, fromIndexWrap(w), blobWrapAD(rec.Digest))
	if err != nil {
		return nil, keyErr(fmt.Errorf("blob %s: %w", rec.Digest, err))
	}
	e.dkeys.put(ck, k)
	return k, nil
}

// addWrap makes sure rec holds a wrap under kek, unwrapping its data key
// through any other wrap. It reports whether rec changed.
func (e *Engine) addWrap(ctx context.Context, rec *index.Blob, kek string) (bool, error) {
	if len(rec.Wraps) == 0 {
		return false, nil
	}
	if _, ok := findWrap(rec, kek); ok {
		return false, nil
	}
	var dk []byte
	var lastErr error
	for _, w := range rec.Wraps {
		k, err := e.blobDataKey(ctx, rec, w.KeyID)
		if err == nil {
			dk = k
			break
		}
		lastErr = err
	}
	if dk == nil {
		return false, lastErr
	}
	nw, err := e.keys.Wrap(ctx, kek, dk, blobWrapAD(rec.Digest))
	if err != nil {
		return false, keyErr(fmt.Errorf("blob %s: wrapping under %q: %w", rec.Digest, kek, err))
	}
	rec.Wraps = append(rec.Wraps, toIndexWrap(nw))
	return true, nil
}

// cacheKey names an unwrapped data key in the cache. The wrapped bytes are
// part of it: a blob swept by gc and pushed again has the same digest and
// key id but a new data key, which must not be served the old one.
func cacheKey(d digest.Digest, w index.KeyWrap) string {
	return fmt.Sprintf("%s\x00%s\x00%d/%x", d, w.KeyID, w.Version, w.Wrapped) // three parts: see dropKey
}

// keyCache keeps unwrapped data keys in memory for a bounded time and
// count. They are never written anywhere.
type keyCache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	ll    *list.List
	items map[string]*list.Element
}

type keyEntry struct {
	k       string
	key     []byte
	expires time.Time
}

func newKeyCache(max int, ttl time.Duration) *keyCache {
	return &keyCache{max: max, ttl: ttl, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *keyCache) get(k string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil
	}
	ent := el.Value.(*keyEntry)
	if time.Now().After(ent.expires) {
		c.removeLocked(el)
		return nil
	}
	c.ll.MoveToFront(el)
	return ent.key
}

func (c *keyCache) put(k string, key []byte) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.removeLocked(el)
	}
	c.items[k] = c.ll.PushFront(&keyEntry{k: k, key: key, expires: time.Now().Add(c.ttl)})
	for c.ll.Len() > c.max {
		c.removeLocked(c.ll.Back())
	}
}

func (c *keyCache) removeLocked(el *list.Element) {
	ent := el.Value.(*keyEntry)
	delete(c.items, ent.k)
	c.ll.Remove(el)
	// Callers may still hold the slice for an in-flight read; it is
	// released by the garbage collector rather than zeroed under them.
}
