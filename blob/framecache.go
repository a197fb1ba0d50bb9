package blob

import (
	"container/list"
	"sync"

	"github.com/berthstore/berth/crypt"
)

// frameCache shares decoded frames among the sequential readers of a
// store: when several clients pull one blob at once (a rollout fetching
// one layer to many nodes), each frame is opened and decompressed once.
// Entries are immutable once decoded; an evicted entry's memory goes when
// its last reader lets it go. Only readers whose header MAC checked out
// under their key reach it, so a frame is never served to a reader that
// could not have decoded it itself.
type frameCache struct {
	mu      sync.Mutex
	max     int
	entries map[frameKey]*cachedFrame
	lru     list.List // of frameKey, most recent first
}

type frameKey struct {
	fileID [crypt.FileIDSize]byte
	n      int64
}

type cachedFrame struct {
	done chan struct{}
	buf  []byte
	err  error
	elem *list.Element
}

func newFrameCache(frames int) *frameCache {
	return &frameCache{max: frames, entries: map[frameKey]*cachedFrame{}}
}

// get returns frame n of r, decoding it (once, whoever asks meanwhile)
// when no reader has. The slice must not be modified.
func (c *frameCache) get(r *Reader, n int64) ([]byte, error) {
	k := frameKey{r.h.fileID, n}
	c.mu.Lock()
	if e, ok := c.entries[k]; ok {
		c.lru.MoveToFront(e.elem)
		c.mu.Unlock()
		<-e.done
		return e.buf, e.err
	}
	e := &cachedFrame{done: make(chan struct{})}
	e.elem = c.lru.PushFront(k)
	c.entries[k] = e
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(frameKey))
	}
	c.mu.Unlock()

	e.buf, e.err = r.decodeFrame(n, make([]byte, 0, r.frameLen(n)))
	if e.err != nil {
		c.mu.Lock()
		if c.entries[k] == e { // failures are not cached
			c.lru.Remove(e.elem)
			delete(c.entries, k)
		}
		c.mu.Unlock()
	}
	close(e.done)
	return e.buf, e.err
}
