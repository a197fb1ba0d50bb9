package console

// The merged trees of the images opened last: a page of the file browser
// must not merge an image's layer tables again for every click.

import (
	"context"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
)

// imageCache holds up to max open ImageFS by repository and digest,
// the least recently used closed first (once its last reader is done).
type imageCache struct {
	store Store
	max   int

	mu      sync.Mutex
	entries map[string]*cachedImage
	tick    uint64
	// opening single-flights the opening of one image.
	opening map[string]*sync.WaitGroup
}

// cachedImage is one open image filesystem and its readers.
type cachedImage struct {
	fsys    *engine.ImageFS
	readers int
	used    uint64
	evicted bool
}

func newImageCache(store Store, max int) *imageCache {
	return &imageCache{store: store, max: max, entries: map[string]*cachedImage{}, opening: map[string]*sync.WaitGroup{}}
}

// acquire returns the filesystem of image d of repo, opening it if
// needed, and the function that releases it.
func (c *imageCache) acquire(ctx context.Context, repo string, d digest.Digest) (*engine.ImageFS, func(), error) {
	key := repo + "@" + string(d)
	for {
		c.mu.Lock()
		if e, ok := c.entries[key]; ok {
			e.readers++
			c.tick++
			e.used = c.tick
			c.mu.Unlock()
			return e.fsys, func() { c.release(e) }, nil
		}
		if wg, ok := c.opening[key]; ok {
			c.mu.Unlock()
			wg.Wait()
			continue
		}
		wg := &sync.WaitGroup{}
		wg.Add(1)
		c.opening[key] = wg
		c.mu.Unlock()

		fsys, err := c.store.ImageFS(ctx, repo, string(d), nil)
		c.mu.Lock()
		delete(c.opening, key)
		wg.Done()
		if err != nil {
			c.mu.Unlock()
			return nil, nil, err
		}
		c.tick++
		e := &cachedImage{fsys: fsys, readers: 1, used: c.tick}
		c.entries[key] = e
		c.evictLocked()
		c.mu.Unlock()
		return fsys, func() { c.release(e) }, nil
	}
}

func (c *imageCache) release(e *cachedImage) {
	c.mu.Lock()
	e.readers--
	closeIt := e.evicted && e.readers == 0
	c.mu.Unlock()
	if closeIt {
		_ = e.fsys.Close()
	}
}

// evictLocked drops the least recently used entries beyond max; each is
// closed when its last reader releases it.
func (c *imageCache) evictLocked() {
	for len(c.entries) > c.max {
		var oldKey string
		var old *cachedImage
		for k, e := range c.entries {
			if old == nil || e.used < old.used {
				oldKey, old = k, e
			}
		}
		delete(c.entries, oldKey)
		old.evicted = true
		if old.readers == 0 {
			go func() { _ = old.fsys.Close() }()
		}
	}
}
