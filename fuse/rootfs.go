package fuse

import (
	"container/list"
	"context"
	"errors"
	"io"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
)

// chunkSize is the unit small files are read in: one blob frame with
// the engine's default frame size, so a chunk read decodes one frame.
const chunkSize = 1 << 20

// rnode is one file of an image's root filesystem.
type rnode struct {
	common
	t  *tree
	id int32
}

var (
	_ = (fs.NodeLookuper)((*rnode)(nil))
	_ = (fs.NodeReaddirer)((*rnode)(nil))
	_ = (fs.NodeGetattrer)((*rnode)(nil))
	_ = (fs.NodeOpener)((*rnode)(nil))
	_ = (fs.NodeReader)((*rnode)(nil))
	_ = (fs.NodeReadlinker)((*rnode)(nil))
	_ = (fs.NodeStatfser)((*rnode)(nil))
)

func (n *rnode) in() *inode { return &n.t.Inodes[n.id] }

func (n *rnode) fill(a *gofuse.Attr) {
	in := n.in()
	a.Ino = n.t.base + uint64(n.id)
	a.Mode = fileMode(in)
	a.Nlink = in.Nlink
	a.Uid, a.Gid = in.UID, in.GID
	a.Size = uint64(in.Size)
	a.Blocks = (a.Size + 511) / 512
	a.Blksize = 4096
	a.Rdev = in.Rdev
	mt := in.MTime
	a.SetTimes(&mt, &mt, &mt)
}

// Getattr describes the file as its layer does.
func (n *rnode) Getattr(ctx context.Context, f fs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	n.fill(&out.Attr)
	out.SetTimeout(n.v.opts.ImmutableTimeout)
	return 0
}

// Lookup finds a child of a directory.
func (n *rnode) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.in().Type != engine.TOCDir {
		return nil, syscall.ENOTDIR
	}
	id, ok := n.t.Lookup(n.id, name)
	if !ok {
		return nil, syscall.ENOENT
	}
	ch := &rnode{common: common{v: n.v}, t: n.t, id: id}
	ch.fill(&out.Attr)
	n.immutable(out)
	return n.NewInode(ctx, ch, fs.StableAttr{Mode: fileMode(ch.in()) & syscall.S_IFMT, Ino: n.t.base + uint64(id)}), 0
}

// Readdir lists a directory.
func (n *rnode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	if n.in().Type != engine.TOCDir {
		return nil, syscall.ENOTDIR
	}
	ents := n.t.Dirs[n.id]
	out := make([]gofuse.DirEntry, len(ents))
	for i, e := range ents {
		in := &n.t.Inodes[e.Ino]
		out[i] = gofuse.DirEntry{Name: e.Name, Mode: fileMode(in) & syscall.S_IFMT, Ino: n.t.base + uint64(e.Ino)}
	}
	return fs.NewListDirStream(out), 0
}

// Readlink returns a symlink's target.
func (n *rnode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	in := n.in()
	if in.Type != engine.TOCSymlink {
		return nil, syscall.EINVAL
	}
	return []byte(in.Linkname), 0
}

// Open opens regular files read-only, with the kernel keeping pages (the
// content of a digest never changes). Files of a megabyte or more get a
// handle that decodes ahead of sequential reads.
func (n *rnode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	in := n.in()
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	switch in.Type {
	case engine.TOCReg:
	case engine.TOCDir:
		return nil, 0, syscall.EISDIR
	default:
		return nil, 0, syscall.EACCES // devices and fifos are shown, not opened
	}
	if in.Size < chunkSize {
		return nil, gofuse.FOPEN_KEEP_CACHE, 0
	}
	return &fileHandle{}, gofuse.FOPEN_KEEP_CACHE, 0
}

// Read reads a regular file at off.
func (n *rnode) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	in := n.in()
	if in.Type != engine.TOCReg {
		return nil, syscall.EINVAL
	}
	if off < 0 || off >= in.Size {
		return gofuse.ReadResultData(nil), 0
	}
	want := min(int64(len(dest)), in.Size-off)
	dest = dest[:want]
	ld := n.t.layers[in.Layer]
	res, err := n.v.chunks.result(ctx, ld, in.Offset+off, int(want))
	if err != nil && !errors.Is(err, io.EOF) {
		res.Done()
		return nil, n.v.errno("read", err)
	}
	nr := res.size
	if h, ok := f.(*fileHandle); ok {
		// Sequential reader: decode the next chunks in the background
		// (on the other core) while the kernel copies this one.
		end := in.Offset + off + int64(nr)
		last := (in.Offset + in.Size - 1) / chunkSize
		next := end / chunkSize
		if end%chunkSize != 0 {
			next++
		}
		if h.seq(next) {
			for c := next; c <= min(next+readAheadChunks-1, last); c++ {
				n.v.chunks.prefetch(n.v.ctx, ld, c)
			}
			// Start the disk reads further ahead still, so that the
			// decoders find the frames in the page cache.
			if from, to := h.advise(next, last); from <= to {
				go ld.advise(from*chunkSize, (to-from+1)*chunkSize)
			}
		}
	}
	return res, 0
}

// readAheadChunks is how many chunks a sequential reader decodes ahead.
const readAheadChunks = 6

// adviseChunks is how many chunks ahead of a sequential reader the disk
// reads are started (posix_fadvise WILLNEED), in steps of half as many.
const adviseChunks = 16

// fileHandle is an open large file; it detects sequential reading.
type fileHandle struct {
	mu      sync.Mutex
	next    int64 // the chunk after the last read
	advised int64 // chunks before this one have been advised
}

// advise returns the chunks to advise now for a sequential reader at
// chunk next of a file whose data ends in chunk last (from > to: none).
// It advises adviseChunks ahead, in batches of half that.
func (h *fileHandle) advise(next, last int64) (from, to int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.advised > next+adviseChunks/2 {
		return 1, 0
	}
	from = max(h.advised, next)
	to = min(next+adviseChunks, last)
	h.advised = to + 1
	return from, to
}

// seq records a read ending before chunk next and reports whether reads
// look sequential.
func (h *fileHandle) seq(next int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := next >= h.next && next <= h.next+readAheadChunks+1
	h.next = next
	return s || next <= 1
}

func readFull(r io.ReaderAt, p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.ReadAt(p[n:], off+int64(n))
		n += m
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.ErrUnexpectedEOF
		}
	}
	return n, nil
}

// chunkCache keeps decoded chunks of layer data (keyed by the data
// blob's digest, content-addressed) for reads of small files and for
// the chunks decoded ahead of sequential readers. Entries are counted
// references: a chunk evicted while a reader copies from it is recycled
// only after the reader releases it, and recycled buffers spare the
// allocation (and the kernel's zeroing) of a megabyte per chunk.
type chunkCache struct {
	mu    sync.Mutex
	max   int
	m     map[chunkKey]*list.Element
	lru   *list.List
	fills map[chunkKey]*chunkFill
	free  [][]byte // recycled chunk buffers, at most maxFree
}

// maxFree bounds the recycled buffers a chunk cache keeps.
const maxFree = 8

type chunkKey struct {
	d digest.Digest
	n int64
}

// chunkVal is a decoded chunk. refs and evicted are guarded by the
// cache's mutex.
type chunkVal struct {
	k       chunkKey
	data    []byte
	refs    int
	evicted bool
}

type chunkFill struct {
	done    chan struct{}
	waiters int // readers waiting for this fill; each gets a reference
	val     *chunkVal
	err     error
}

func newChunkCache(bytes int64) *chunkCache {
	return &chunkCache{max: max(1, int(bytes/chunkSize)), m: map[chunkKey]*list.Element{}, lru: list.New(), fills: map[chunkKey]*chunkFill{}}
}

// get returns chunk n of ld's data, holding a reference the caller
// gives back with release.
func (c *chunkCache) get(ctx context.Context, ld *layerData, n int64) (*chunkVal, error) {
	k := chunkKey{ld.toc.Data, n}
	c.mu.Lock()
	if el, ok := c.m[k]; ok {
		c.lru.MoveToFront(el)
		v := el.Value.(*chunkVal)
		v.refs++
		c.mu.Unlock()
		return v, nil
	}
	if f, ok := c.fills[k]; ok {
		f.waiters++
		c.mu.Unlock()
		<-f.done
		return f.val, f.err
	}
	f := &chunkFill{done: make(chan struct{})}
	c.fills[k] = f
	buf := c.takeBuffer()
	c.mu.Unlock()

	data, err := c.load(ctx, ld, n, buf)

	c.mu.Lock()
	delete(c.fills, k)
	if err == nil {
		v := &chunkVal{k: k, data: data, refs: 1 + f.waiters}
		f.val = v
		c.m[k] = c.lru.PushFront(v)
		for c.lru.Len() > c.max {
			el := c.lru.Back()
			c.lru.Remove(el)
			old := el.Value.(*chunkVal)
			delete(c.m, old.k)
			old.evicted = true
			if old.refs == 0 {
				c.putBuffer(old.data)
			}
		}
	} else {
		f.err = err
		c.putBuffer(buf)
	}
	c.mu.Unlock()
	close(f.done)
	return f.val, f.err
}

// release gives back a reference that get returned.
func (c *chunkCache) release(v *chunkVal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v.refs--
	if v.refs == 0 && v.evicted {
		c.putBuffer(v.data)
	}
}

// takeBuffer returns a recycled chunk buffer, or nil. c.mu is held.
func (c *chunkCache) takeBuffer() []byte {
	if n := len(c.free); n > 0 {
		b := c.free[n-1]
		c.free = c.free[:n-1]
		return b
	}
	return nil
}

// putBuffer keeps b for reuse if there is room. c.mu is held.
func (c *chunkCache) putBuffer(b []byte) {
	if cap(b) == chunkSize && len(c.free) < maxFree {
		c.free = append(c.free, b[:0])
	}
}

// load decodes chunk n into buf (a recycled buffer, or nil).
func (c *chunkCache) load(ctx context.Context, ld *layerData, n int64, buf []byte) ([]byte, error) {
	r, err := ld.reader(ctx)
	if err != nil {
		return nil, err
	}
	size := r.Size()
	off := n * chunkSize
	if off >= size {
		return nil, io.EOF
	}
	if buf == nil {
		buf = make([]byte, chunkSize)
	}
	buf = buf[:min(chunkSize, size-off)]
	if _, err := readFull(r, buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf, nil
}

// prefetch loads chunk n in the background unless it is cached or loading.
func (c *chunkCache) prefetch(ctx context.Context, ld *layerData, n int64) {
	k := chunkKey{ld.toc.Data, n}
	c.mu.Lock()
	_, cached := c.m[k]
	_, loading := c.fills[k]
	c.mu.Unlock()
	if !cached && !loading {
		go func() {
			if v, err := c.get(ctx, ld, n); err == nil {
				c.release(v)
			}
		}()
	}
}

// result answers a read of n bytes of ld's data at off with slices of
// the cached chunks under it, holding their references until the reply
// is written (chunkResult.Done). On an error the result covers, and
// holds, what was read before it.
func (c *chunkCache) result(ctx context.Context, ld *layerData, off int64, n int) (*chunkResult, error) {
	r := &chunkResult{c: c}
	for r.size < n {
		pos := off + int64(r.size)
		ci := pos / chunkSize
		v, err := c.get(ctx, ld, ci)
		if err != nil {
			return r, err
		}
		within := pos - ci*chunkSize
		if within >= int64(len(v.data)) {
			c.release(v)
			return r, io.ErrUnexpectedEOF
		}
		part := v.data[within:min(int64(len(v.data)), within+int64(n-r.size))]
		r.vals = append(r.vals, v)
		r.vecs = append(r.vecs, part)
		r.size += len(part)
	}
	return r, nil
}

// chunkResult is a FUSE read reply made of slices of decoded chunks: the
// server writes them to /dev/fuse with one writev, with no copy into a
// reply buffer, and calls Done after, which gives the chunks back.
type chunkResult struct {
	c    *chunkCache
	vals []*chunkVal
	vecs [][]byte
	size int
}

var _ gofuse.ReadResult = (*chunkResult)(nil)

// Size is the reply's length.
func (r *chunkResult) Size() int { return r.size }

// Slices returns the reply's pieces (go-fuse writes them with writev).
func (r *chunkResult) Slices() ([][]byte, gofuse.Status) { return r.vecs, gofuse.OK }

// Bytes returns the reply in one buffer (when go-fuse cannot write
// slices), reusing buf.
func (r *chunkResult) Bytes(buf []byte) ([]byte, gofuse.Status) {
	buf = buf[:0]
	for _, v := range r.vecs {
		buf = append(buf, v...)
	}
	return buf, gofuse.OK
}

// Done releases the chunks; calling it again does nothing.
func (r *chunkResult) Done() {
	for _, v := range r.vals {
		r.c.release(v)
	}
	r.vals, r.vecs = nil, nil
}
