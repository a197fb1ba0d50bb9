package s3

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/minio/minio-go/v7"

	"github.com/berthstore/berth/blob"
)

// objectSource reads ranges of one object, one GET each: the Source of a
// blob.Reader. ctx carries the reader's values, not its deadline: each GET
// has its own.
type objectSource struct {
	s    *Store
	ctx  context.Context
	key  string
	size int64
	// etag pins the version read: a GET of a replaced object fails
	// rather than mixing two versions' frames.
	etag string
	// prefix is the object's first bytes, read by Open's first GET
	// (openPrefix); reads within it cost no request.
	prefix []byte
	// tail is the object's last bytes, from tailOff, when Open read them
	// (openRef): a large blob's frame table, read without a request.
	tail    []byte
	tailOff int64
	// first and stride are where frames start and their stored length
	// (AlignFrames), 0 when not told: the read-ahead's windows are cut
	// where frames begin.
	first, stride int64
	// ahead reads windows ahead of a sequential reader (nil until one
	// is seen).
	mu    sync.Mutex
	ends  [8]int64 // ends of the last reads, to see a sequential reader
	nends int
	hits  int
	ahead *readAhead
}

// ReadAt reads len(p) bytes at off: with one ranged GET, or, once reads
// follow each other (a pull), from windows fetched ahead.
func (o *objectSource) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("blob: s3: negative offset %d", off)
	}
	if off >= o.size {
		return 0, io.EOF
	}
	want := p
	if rest := o.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	if len(want) == 0 {
		return 0, nil
	}
	ra := o.sequential(off, int64(len(want)))
	if end := off + int64(len(want)); end <= int64(len(o.prefix)) {
		copy(want, o.prefix[off:end])
		if len(want) < len(p) {
			return len(want), io.EOF
		}
		return len(want), nil
	}
	if end := off + int64(len(want)); o.tail != nil && off >= o.tailOff && end <= o.size {
		copy(want, o.tail[off-o.tailOff:end-o.tailOff])
		if len(want) < len(p) {
			return len(want), io.EOF
		}
		return len(want), nil
	}
	if ra != nil {
		if err := ra.read(want, off); err != nil {
			return 0, err
		}
		if len(want) < len(p) {
			return len(want), io.EOF
		}
		return len(want), nil
	}
	return o.get(p, want, off)
}

// openPrefixSize is how many bytes Open's first GET asks for: a blob of
// up to this size (a config, a small layer) is read with that one
// request; a larger one gets its header from it.
const openPrefixSize = 256 << 10

// openPrefix GETs the first n bytes of key (of the version
// etag, when not empty): the object's size (from Content-Range), its ETag
// (which pins every later GET) and those bytes, in one request. An object
// too short to be a blob is a reference (ref.go): no source, and the
// object's user metadata, which names its data object. Neither, and no
// error: the object is empty, an older reference, which the ranged GET
// cannot read (the caller HEADs it).
func (s *Store) openPrefix(ctx context.Context, key, what, etag string, n int64) (*objectSource, map[string]string, error) {
	var opts minio.GetObjectOptions
	if err := opts.SetRange(0, n-1); err != nil {
		return nil, nil, err
	}
	if etag != "" {
		if err := opts.SetMatchETag(etag); err != nil {
			return nil, nil, err
		}
	}
	rctx, cancel := s.bodyRequest(ctx, n)
	defer cancel()
	body, info, h, err := s.core.GetObject(rctx, s.opts.Bucket, key, opts)
	if err != nil {
		switch code := minio.ToErrorResponse(err).Code; {
		case code == "InvalidRange":
			return nil, nil, nil // an empty object: no byte 0
		case code == "PreconditionFailed" && etag != "":
			// A reference's data object is never replaced: one that
			// changed is not what the reference was made for.
			return nil, nil, fmt.Errorf("%w: %s: %s is not the version its reference names", blob.ErrCorrupt, what, key)
		}
		return nil, nil, mapErr(err, what)
	}
	defer body.Close()
	size := info.Size
	if cr := h.Get("Content-Range"); cr != "" {
		total, ok := rangeTotal(cr)
		if !ok {
			return nil, nil, fmt.Errorf("blob: s3: %s: Content-Range %q", what, cr)
		}
		size = total
	}
	switch {
	case info.Size == 0:
		return nil, nil, nil // an empty object served whole
	case info.Size < 0 || info.Size > n || size < info.Size:
		return nil, nil, fmt.Errorf("blob: s3: %s: %d bytes for a range of %d of an object of %d", what, info.Size, n, size)
	case isRefSize(size):
		return nil, info.UserMetadata, nil
	}
	buf := make([]byte, info.Size)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, nil, mapErr(err, what)
	}
	return &objectSource{s: s, ctx: context.WithoutCancel(ctx), key: key, size: size, etag: info.ETag, prefix: buf}, nil, nil
}

// openTailSize is how many of its last bytes openRef reads of a data
// object larger than openPrefixSize, beside its first ones: the frame
// table of a blob of up to 8,000 frames (8 GiB in frames of 1 MiB).
const openTailSize = 64 << 10

// openRef opens the data object that reference r names, with the same
// GET as a blob's own object, pinned to the ETag the reference was
// written with, and of the size it says. The reference tells the size, so
// that GET asks for the first frame whole (a blob pushed in parts is
// large: a reader's first read is its first frame), and the last bytes,
// where the frame table is, are asked for at the same time: a large blob
// pushed in parts opens and reads its first frame in two round trips
// (the reference, then both ends of its data), not four.
func (s *Store) openRef(ctx context.Context, r blobRef, what string) (*objectSource, error) {
	var (
		tail    []byte
		tailOff int64
		tailErr error
		wg      sync.WaitGroup
	)
	head := min(r.size, max(openPrefixSize, s.firstFrameEnd()))
	if r.size > head {
		tailOff = max(head, r.size-openTailSize)
		tail = make([]byte, r.size-tailOff)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts := &objectSource{s: s, key: r.key, size: r.size, etag: r.etag}
			_, tailErr = ts.getCtx(ctx, tail, tail, tailOff)
		}()
	}
	src, meta, err := s.openPrefix(ctx, r.key, what, r.etag, head)
	wg.Wait()
	switch {
	case err != nil:
		return nil, err
	case src == nil || meta != nil:
		return nil, fmt.Errorf("%w: %s: the reference's data object %s is not a blob", blob.ErrCorrupt, what, r.key)
	case src.size != r.size:
		return nil, fmt.Errorf("%w: %s: the reference says %d bytes, its data object %s holds %d", blob.ErrCorrupt, what, r.size, r.key, src.size)
	}
	if tailErr == nil {
		// Both GETs were of the ETag the prefix's was: the same bytes.
		src.tail, src.tailOff = tail, tailOff
	}
	return src, nil
}

// firstFrameEnd is where the first frame of a blob this store writes
// ends, or a little after: its header, the frame's head (8 bytes), a
// whole frame and its seal's tag or checksum (at most 16 bytes; 64 leave
// room).
func (s *Store) firstFrameEnd() int64 {
	fs := int64(s.opts.Blob.FrameSize)
	if fs == 0 {
		fs = 1 << 20
	}
	return int64(blob.HeaderSize) + 8 + fs + 64
}

// rangeTotal is the complete length of a Content-Range "bytes a-b/n".
func rangeTotal(cr string) (int64, bool) {
	_, total, ok := strings.Cut(cr, "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	return n, err == nil && n >= 0
}

// get reads want at off with one ranged GET.
func (o *objectSource) get(p, want []byte, off int64) (int, error) {
	return o.getCtx(o.ctx, p, want, off)
}

// getCtx is get under ctx.
func (o *objectSource) getCtx(ctx context.Context, p, want []byte, off int64) (int, error) {
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+int64(len(want))-1); err != nil {
		return 0, err
	}
	if o.etag != "" {
		if err := opts.SetMatchETag(o.etag); err != nil {
			return 0, err
		}
	}
	ctx, cancel := o.s.bodyRequest(ctx, int64(len(want)))
	defer cancel()
	obj, err := o.s.client.GetObject(ctx, o.s.opts.Bucket, o.key, opts)
	if err != nil {
		return 0, mapErr(err, o.key)
	}
	defer obj.Close()
	n, err := io.ReadFull(obj, want)
	if err != nil {
		return n, mapErr(err, o.key)
	}
	if len(want) < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// View lends the n bytes at off from the read-ahead's window holding
// them (see blob.Viewer): a pull decodes its frames where the stream put
// them, without copying them first. ok is false unless a sequential
// reader's window holds the whole range.
func (o *objectSource) View(off int64, n int) ([]byte, func(), bool) {
	o.mu.Lock()
	ra := o.ahead
	o.mu.Unlock()
	if ra == nil || n <= 0 || off < 0 || off+int64(n) > o.size {
		return nil, nil, false
	}
	idx := ra.index(off)
	if ra.index(off+int64(n)-1) != idx || !ra.near(off) {
		return nil, nil, false
	}
	w := ra.acquire(idx)
	<-w.done
	if w.err != nil {
		ra.release(w)
		return nil, nil, false // ReadAt reports it
	}
	s := off - ra.start(idx)
	return w.data[s : s+int64(n) : s+int64(n)], func() { ra.release(w) }, true
}

// sequential notes a read of n bytes at off and returns the read-ahead
// when the read starts where an earlier one ended (and the object is
// large enough for windows to pay).
func (o *objectSource) sequential(off, n int64) *readAhead {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ahead != nil {
		if o.ahead.near(off) {
			return o.ahead
		}
		return nil // a jump: read just what is asked
	}
	seq := false
	for i := 0; i < min(o.nends, len(o.ends)); i++ {
		if o.ends[i] == off {
			seq = true
		}
	}
	o.ends[o.nends%len(o.ends)] = off + n
	o.nends++
	if seq {
		o.hits++
	}
	// Two reads in a row that continue earlier ones (the header then
	// frame 0 is one): a reader going through the object.
	if o.hits < 2 || o.size < 2*aheadWindow {
		return nil
	}
	ctx, cancel := context.WithCancel(o.ctx)
	ra := o.newReadAhead(ctx, cancel)
	ra.next, ra.want = ra.index(off), ra.index(off)
	o.ahead = ra
	go ra.stream(ra.next)
	return ra
}

// newReadAhead is o's read-ahead, its windows cut where o's frames
// begin if AlignFrames told where, and not started.
func (o *objectSource) newReadAhead(ctx context.Context, cancel context.CancelFunc) *readAhead {
	ra := &readAhead{o: o, ctx: ctx, cancel: cancel, wins: map[int64]*window{}, win: aheadWindow, wake: make(chan struct{}, 1)}
	if o.stride > 0 && o.stride <= aheadWindow {
		// Whole frames to a window: as many as fit in aheadWindow.
		// Larger frames (the archive tier's) are cut as before: a
		// window of one would hold up to four times the memory.
		ra.first, ra.win = o.first, aheadWindow/o.stride*o.stride
	}
	return ra
}

// AlignFrames notes where frames start and their stored length (see
// blob.FrameAligner): the read-ahead, started later, cuts its windows
// there.
func (o *objectSource) AlignFrames(first, stride int64) {
	if first < 0 || stride <= 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ahead == nil {
		o.first, o.stride = first, stride
	}
}

// Close stops the windows being fetched ahead.
func (o *objectSource) Close() error {
	o.mu.Lock()
	ra := o.ahead
	o.mu.Unlock()
	if ra != nil {
		ra.cancel()
	}
	return nil
}

// Read-ahead of a sequential reader: the object in windows of at most
// aheadWindow bytes (whole frames each, when the reader said where they
// are and they are no larger: window 0 is [0, first+win), window i is
// [first+i*win, first+(i+1)*win)), the one being read and up to
// aheadWindows after it held, the ones behind dropped. They come from one GET of the rest of
// the object, read in order as the reader catches up (as a client's own
// GET of the whole object would: one request, no gaps between windows);
// should that stream fail (a timeout while the client was slow, a
// connection reset), each window still missing is fetched with a ranged
// GET of its own.
const (
	aheadWindow  = 4 << 20
	aheadWindows = 3
)

type readAhead struct {
	o      *objectSource
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{} // the reader moved on
	// first and win cut the windows (see above): first is 0 and win
	// aheadWindow unless frames were aligned.
	first, win int64

	mu   sync.Mutex
	wins map[int64]*window
	// next is the window the stream fills next; -1 once it failed.
	next int64
	// want is the furthest window the reader asked for.
	want int64
}

// window is one fetched range of the object.
type window struct {
	data    []byte
	err     error
	done    chan struct{}
	fetched bool // by a GET of its own (not the stream)
	// refs counts the reads copying from or decoding in data; dropped:
	// the window left wins. data goes back to windowPool once both say
	// nobody can read it any more (under readAhead.mu).
	refs    int
	dropped bool
}

// windowPoolSize is the size of windowPool's buffers: aheadWindow, and
// room for the header that window 0 holds besides whole frames.
const windowPoolSize = aheadWindow + 4<<10

// windowPool holds window buffers of windowPoolSize bytes: a pull reuses
// a few instead of allocating (and zeroing) a new one for every 4 MiB.
var windowPool = sync.Pool{New: func() any { b := make([]byte, windowPoolSize); return &b }}

// newWindowBuf is a buffer of n ≤ windowPoolSize bytes from the pool.
func newWindowBuf(n int64) []byte { return (*windowPool.Get().(*[]byte))[:n] }

// putWindowBuf returns b, from newWindowBuf, to the pool.
func putWindowBuf(b []byte) {
	b = b[:windowPoolSize]
	windowPool.Put(&b)
}

// index is the window holding byte off.
func (ra *readAhead) index(off int64) int64 {
	if off < ra.first+ra.win {
		return 0
	}
	return (off - ra.first) / ra.win
}

// start is where window i begins.
func (ra *readAhead) start(i int64) int64 {
	if i == 0 {
		return 0
	}
	return ra.first + i*ra.win
}

// length is how many bytes window i holds.
func (ra *readAhead) length(i int64) int64 {
	return min(ra.first+(i+1)*ra.win, ra.o.size) - ra.start(i)
}

// recycle returns w's buffer to the pool if it is dropped, filled and
// unread. Called with mu held.
func (w *window) recycle() {
	if !w.dropped || w.refs > 0 || w.data == nil {
		return
	}
	select {
	case <-w.done:
	default:
		return // still being filled
	}
	b := w.data
	w.data = nil
	putWindowBuf(b)
}

// near reports whether a read at off is one of the sequential reader's:
// in a window being fetched or just after one.
func (ra *readAhead) near(off int64) bool {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	idx := ra.index(off)
	return ra.wins[idx] != nil || ra.wins[idx-1] != nil
}

// windowCopies counts the bytes read copies out of windows (what was not
// lent with View): a test's measure of frames straddling two windows.
var windowCopies atomic.Int64

// read copies len(p) bytes at off out of the windows under them.
func (ra *readAhead) read(p []byte, off int64) error {
	for len(p) > 0 {
		idx := ra.index(off)
		w := ra.acquire(idx)
		<-w.done
		if w.err != nil {
			ra.release(w)
			return w.err
		}
		c := copy(p, w.data[off-ra.start(idx):])
		windowCopies.Add(int64(c))
		ra.release(w)
		p, off = p[c:], off+int64(c)
	}
	return nil
}

// acquire is window idx, held for reading until release.
func (ra *readAhead) acquire(idx int64) *window {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	w := ra.window(idx)
	w.refs++
	return w
}

// release ends a read of w.
func (ra *readAhead) release(w *window) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	w.refs--
	w.recycle()
}

// window returns window idx, asking for it and the ones after it as
// needed (from the stream, or with a GET of their own), and drops the
// ones before it. Called with mu held.
func (ra *readAhead) window(idx int64) *window {
	for i, w := range ra.wins {
		if i < idx-1 {
			delete(ra.wins, i)
			w.dropped = true
			w.recycle()
		}
	}
	if idx > ra.want {
		ra.want = idx
		select {
		case ra.wake <- struct{}{}:
		default:
		}
	}
	last := ra.index(ra.o.size - 1)
	for i := idx; i <= min(idx+aheadWindows, last); i++ {
		if ra.wins[i] == nil {
			w := &window{done: make(chan struct{})}
			ra.wins[i] = w
			if ra.next < 0 || i < ra.next {
				ra.fetch(w, i) // no stream, or behind it
			}
		}
	}
	return ra.wins[idx]
}

// fetch gets window i with a ranged GET of its own. Called with mu held.
func (ra *readAhead) fetch(w *window, i int64) {
	w.fetched = true
	from, n := ra.start(i), ra.length(i)
	go func() {
		defer close(w.done)
		buf := newWindowBuf(n)
		_, w.err = ra.o.getCtx(ra.ctx, buf, buf, from)
		if w.err == nil {
			w.data = buf
		} else {
			putWindowBuf(buf)
		}
	}()
}

// stream reads windows from, from+1, ... to the end of the object from
// one GET, staying at most aheadWindows ahead of the reader. On failure
// it hands the windows it has not filled to fetch.
func (ra *readAhead) stream(from int64) {
	fail := func() {
		ra.mu.Lock()
		defer ra.mu.Unlock()
		ra.next = -1
		for i, w := range ra.wins {
			if !w.fetched && i >= from {
				select {
				case <-w.done:
				default:
					ra.fetch(w, i)
				}
			}
		}
	}
	o := ra.o
	off := ra.start(from)
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, o.size-1); err != nil {
		fail()
		return
	}
	if o.etag != "" {
		if err := opts.SetMatchETag(o.etag); err != nil {
			fail()
			return
		}
	}
	ctx, cancel := o.s.bodyRequest(ra.ctx, o.size-off)
	defer cancel()
	// Core's GET: the response body itself, read in this goroutine (the
	// client's Object hands every Read to a goroutine of its own).
	body, _, _, err := o.s.core.GetObject(ctx, o.s.opts.Bucket, o.key, opts)
	if err != nil {
		fail()
		return
	}
	defer body.Close()
	last := ra.index(o.size - 1)
	for i := from; i <= last; i++ {
		ra.mu.Lock()
		for i > ra.want+aheadWindows {
			ra.mu.Unlock()
			select {
			case <-ra.wake:
			case <-ra.ctx.Done():
				return
			}
			ra.mu.Lock()
		}
		w := ra.wins[i]
		if w == nil {
			w = &window{done: make(chan struct{})}
			ra.wins[i] = w
		}
		ra.next = i + 1
		ra.mu.Unlock()
		if w.fetched {
			// Handed to a GET of its own (cannot happen while the
			// stream lives); skip its bytes.
			if _, err := io.CopyN(io.Discard, body, ra.length(i)); err != nil {
				from = i + 1
				fail()
				return
			}
			continue
		}
		buf := newWindowBuf(ra.length(i))
		if _, err := io.ReadFull(body, buf); err != nil {
			putWindowBuf(buf)
			from = i
			fail()
			return
		}
		w.data = buf
		close(w.done)
	}
}
