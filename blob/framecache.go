package blob

import (
	"container/list"
	"os"
	"sync"
	"sync/atomic"
)

// frameCache shares decoded frames among the sequential readers of a
// store: when several clients pull one blob at once (a rollout fetching
// one layer to many nodes), each frame is opened and decompressed once.
// Entries are immutable once decoded and reference-counted: an evicted
// entry's buffer goes back to the pool when its last reader releases it.
//
// An entry is named by what authenticated it (fileKey): a reader finds
// only frames decoded by a reader of the same file version whose header
// checked out under the same data key, so it is never served a frame it
// could not have decoded itself, whatever else shares the file's id or
// path.
type frameCache struct {
	mu      sync.Mutex
	max     int
	entries map[frameKey]*cachedFrame
	lru     list.List // of *cachedFrame, most recent first
}

// fileKey names the frames of one opened blob file in the cache.
type fileKey struct {
	// check is the header's check as read and verified at open: for a
	// sealed file its HMAC under a key derived from the data key and the
	// file id, so only readers holding that data key, of a file with that
	// id, digest, size and table, share; for a plain file the SHA-256 of
	// the header. A plain header cannot have a sealed one's check (the
	// sealed flag is in the hashed bytes), so plain and sealed files never
	// share, even with one id.
	check [headerSize - headerBodySize]byte
	// file is the opened file's identity and version (device, inode,
	// size, modification and change times; a per-open number where the
	// platform has no inode): a file put in another's place, with a copy
	// of its header, does not share the other's frames.
	file fileIdentity
}

// frameKeyOf is the cache name of the file opened with status st and
// header hb (whose check has been verified).
func frameKeyOf(st os.FileInfo, hb []byte) fileKey {
	var k fileKey
	copy(k.check[:], hb[headerBodySize:headerSize])
	k.file = identify(st)
	return k
}

type frameKey struct {
	file fileKey
	n    int64
}

type cachedFrame struct {
	key     frameKey
	done    chan struct{}
	buf     []byte
	err     error
	elem    *list.Element // nil once evicted
	refs    int           // readers holding buf
	evicted bool
}

func newFrameCache(frames int) *frameCache {
	return &frameCache{max: frames, entries: map[frameKey]*cachedFrame{}}
}

// get returns frame n of r, decoding it (once, whoever asks meanwhile)
// when no reader has, and a function that releases it. The slice must not
// be modified, nor used after release.
func (c *frameCache) get(r *Reader, n int64) ([]byte, func(), error) {
	k := frameKey{r.key, n}
	c.mu.Lock()
	if e, ok := c.entries[k]; ok {
		e.refs++
		c.lru.MoveToFront(e.elem)
		c.mu.Unlock()
		<-e.done
		if e.err != nil {
			c.release(e)
			return nil, nil, e.err
		}
		return e.buf, func() { c.release(e) }, nil
	}
	e := &cachedFrame{key: k, done: make(chan struct{}), refs: 1}
	e.elem = c.lru.PushFront(e)
	c.entries[k] = e
	c.evictLocked()
	c.mu.Unlock()

	buf := buffers.get(int(r.fs))[:r.frameLen(n)]
	e.err = r.decodeFrame(n, buf)
	e.buf = buf
	if e.err != nil {
		buffers.put(buf)
		c.mu.Lock()
		if c.entries[k] == e { // failures are not kept
			c.removeLocked(e)
		}
		c.mu.Unlock()
	}
	close(e.done)
	if e.err != nil {
		c.release(e)
		return nil, nil, e.err
	}
	return e.buf, func() { c.release(e) }, nil
}

func (c *frameCache) evictLocked() {
	for c.lru.Len() > c.max {
		c.removeLocked(c.lru.Back().Value.(*cachedFrame))
	}
}

// removeLocked drops e from the cache; its buffer is recycled once no
// reader holds it.
func (c *frameCache) removeLocked(e *cachedFrame) {
	if e.evicted {
		return
	}
	e.evicted = true
	c.lru.Remove(e.elem)
	e.elem = nil
	delete(c.entries, e.key)
	if e.refs == 0 && e.err == nil && e.buf != nil {
		buffers.put(e.buf)
		e.buf = nil
	}
}

func (c *frameCache) release(e *cachedFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if e.refs == 0 && e.evicted && e.err == nil && e.buf != nil {
		buffers.put(e.buf)
		e.buf = nil
	}
}

// opens numbers the opens whose file has no identity to share by.
var opens atomic.Uint64

func nextOpen() uint64 { return opens.Add(1) }
