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

func (n *rnode) in() *inode { return &n.t.inodes[n.id] }

func (n *rnode) fill(a *gofuse.Attr) {
	in := n.in()
	a.Ino = n.t.base + uint64(n.id)
	a.Mode = fileMode(in)
	a.Nlink = in.nlink
	a.Uid, a.Gid = in.uid, in.gid
	a.Size = uint64(in.size)
	a.Blocks = (a.Size + 511) / 512
	a.Blksize = 4096
	a.Rdev = in.rdev
	mt := in.mtime
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
	if n.in().typ != engine.TOCDir {
		return nil, syscall.ENOTDIR
	}
	id, ok := n.t.lookup(n.id, name)
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
	if n.in().typ != engine.TOCDir {
		return nil, syscall.ENOTDIR
	}
	ents := n.t.dirs[n.id]
	out := make([]gofuse.DirEntry, len(ents))
	for i, e := range ents {
		in := &n.t.inodes[e.ino]
		out[i] = gofuse.DirEntry{Name: e.name, Mode: fileMode(in) & syscall.S_IFMT, Ino: n.t.base + uint64(e.ino)}
	}
	return fs.NewListDirStream(out), 0
}

// Readlink returns a symlink's target.
func (n *rnode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	in := n.in()
	if in.typ != engine.TOCSymlink {
		return nil, syscall.EINVAL
	}
	return []byte(in.linkname), 0
}

// Open opens regular files read-only, with the kernel keeping pages (the
// content of a digest never changes). Files of a megabyte or more get a
// handle that decodes ahead of sequential reads.
func (n *rnode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	in := n.in()
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	switch in.typ {
	case engine.TOCReg:
	case engine.TOCDir:
		return nil, 0, syscall.EISDIR
	default:
		return nil, 0, syscall.EACCES // devices and fifos are shown, not opened
	}
	if in.size < chunkSize {
		return nil, gofuse.FOPEN_KEEP_CACHE, 0
	}
	return &fileHandle{}, gofuse.FOPEN_KEEP_CACHE, 0
}

// Read reads a regular file at off.
func (n *rnode) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	in := n.in()
	if in.typ != engine.TOCReg {
		return nil, syscall.EINVAL
	}
	if off < 0 || off >= in.size {
		return gofuse.ReadResultData(nil), 0
	}
	want := min(int64(len(dest)), in.size-off)
	dest = dest[:want]
	ld := n.t.layers[in.layer]
	nr, err := n.v.chunks.readAt(ctx, ld, dest, in.offset+off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, n.v.errno("read", err)
	}
	if h, ok := f.(*fileHandle); ok {
		// Sequential reader: decode the next chunks in the background
		// (on the other core) while the kernel copies this one.
		end := in.offset + off + int64(nr)
		last := (in.offset + in.size - 1) / chunkSize
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
				ld.advise(n.v.ctx, from*chunkSize, (to-from+1)*chunkSize)
			}
		}
	}
	return gofuse.ReadResultData(dest[:nr]), 0
}

// readAheadChunks is how many chunks a sequential reader decodes ahead.
const readAheadChunks = 2

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
// blob's digest, content-addressed) for reads of small files.
type chunkCache struct {
	mu    sync.Mutex
	max   int
	m     map[chunkKey]*list.Element
	lru   *list.List
	fills map[chunkKey]*chunkFill
}

type chunkKey struct {
	d digest.Digest
	n int64
}

type chunkVal struct {
	k    chunkKey
	data []byte
}

type chunkFill struct {
	done chan struct{}
	data []byte
	err  error
}

func newChunkCache(bytes int64) *chunkCache {
	return &chunkCache{max: max(1, int(bytes/chunkSize)), m: map[chunkKey]*list.Element{}, lru: list.New(), fills: map[chunkKey]*chunkFill{}}
}

func (c *chunkCache) get(ctx context.Context, ld *layerData, n int64) ([]byte, error) {
	k := chunkKey{ld.toc.Data, n}
	c.mu.Lock()
	if el, ok := c.m[k]; ok {
		c.lru.MoveToFront(el)
		c.mu.Unlock()
		return el.Value.(*chunkVal).data, nil
	}
	if f, ok := c.fills[k]; ok {
		c.mu.Unlock()
		<-f.done
		return f.data, f.err
	}
	f := &chunkFill{done: make(chan struct{})}
	c.fills[k] = f
	c.mu.Unlock()

	f.data, f.err = c.load(ctx, ld, n)

	c.mu.Lock()
	delete(c.fills, k)
	if f.err == nil {
		c.m[k] = c.lru.PushFront(&chunkVal{k: k, data: f.data})
		for c.lru.Len() > c.max {
			el := c.lru.Back()
			c.lru.Remove(el)
			delete(c.m, el.Value.(*chunkVal).k)
		}
	}
	c.mu.Unlock()
	close(f.done)
	return f.data, f.err
}

func (c *chunkCache) load(ctx context.Context, ld *layerData, n int64) ([]byte, error) {
	r, err := ld.reader(ctx)
	if err != nil {
		return nil, err
	}
	size := r.Size()
	off := n * chunkSize
	if off >= size {
		return nil, io.EOF
	}
	buf := make([]byte, min(chunkSize, size-off))
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
		go func() { _, _ = c.get(ctx, ld, n) }()
	}
}

// readAt fills p from the layer's data at off, chunk by chunk.
func (c *chunkCache) readAt(ctx context.Context, ld *layerData, p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		ci := pos / chunkSize
		data, err := c.get(ctx, ld, ci)
		if err != nil {
			return n, err
		}
		within := pos - ci*chunkSize
		if within >= int64(len(data)) {
			return n, io.ErrUnexpectedEOF
		}
		n += copy(p[n:], data[within:])
	}
	return n, nil
}
