package blob

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"runtime"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/crypt"
)

// Reader reads one committed blob. ReadAt decodes only the frames under
// the range asked for and is safe for concurrent use; Read and Seek share
// one position. Every byte returned has been authenticated (sealed) or
// CRC-checked (plain); a failed check is ErrCorrupt, never wrong bytes.
type Reader struct {
	f      Source
	d      digest.Digest
	h      *header
	sealer *crypt.FrameSealer
	fs     int64
	offs   []int64 // file offset of each frame's head
	table  []frameHdr

	mu     sync.Mutex
	cacheN int64 // frame held in cache, -1 for none
	cache  []byte
	ahead  *prefetch   // the next frame, decoding in the background
	shared *frameCache // the store's decoded frames, for WriteTo; may be nil
	key    fileKey     // names this file's frames in shared
	spare  []byte      // buffer for the next prefetch

	pos int64
}

// Open opens committed blob d. dataKey is required when the blob is
// sealed (ErrKeyRequired without it); a plain blob opened with a data key
// is ErrCorrupt, since the caller expects a sealed file and a plain one
// in its place is authenticated by nothing.
func (s *Store) Open(ctx context.Context, d digest.Digest, dataKey []byte) (*Reader, error) {
	p, err := s.Path(d)
	if err != nil {
		return nil, err
	}
	f, err := s.fs.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, d)
		}
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	r, err := newReader(f, d, dataKey)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	r.shared = s.shared
	return r, nil
}

// Source is the stored bytes of one committed blob as a backend serves
// them: random access (one ReadAt per frame read) and release.
type Source interface {
	io.ReaderAt
	io.Closer
}

// Viewer is a Source that can lend the stored bytes of a frame it holds
// in memory already (an object store's read-ahead windows) instead of
// copying them: the Reader decodes the frame from b, never writes to it,
// and calls release once done. ok is false when the source does not hold
// the n bytes at off whole; the Reader then reads them with ReadAt.
type Viewer interface {
	View(off int64, n int) (b []byte, release func(), ok bool)
}

// FrameAligner is a Source that reads ahead in windows and can cut them
// where frames begin. NewReader tells it where the first frame starts
// and the stored length of every frame, when all of them but the last
// have the same (raw frames: data that does not compress, such as a
// gzip layer), so that no frame straddles two windows and every frame
// can be lent (Viewer) rather than copied out of two. Frames of other
// lengths are not told: the source then cuts its windows as it would.
type FrameAligner interface {
	AlignFrames(first, stride int64)
}

// NewReader reads committed blob d from src, whose stored length is
// storedSize (an object store's ranged reads, say): the same checks and
// the same frame-at-a-time decoding as a file of the Store. The Reader
// closes src. Frames are not shared between its readers and other ones.
func NewReader(src Source, storedSize int64, d digest.Digest, dataKey []byte) (*Reader, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	r, _, err := readHeader(src, storedSize, d, dataKey)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	if a, ok := src.(FrameAligner); ok {
		if stride := r.stride(); stride > 0 {
			a.AlignFrames(headerSize, stride)
		}
	}
	return r, nil
}

// stride is the stored length of each frame (head included) when every
// frame but the last has the same, 0 otherwise or for a blob of one
// frame.
func (r *Reader) stride() int64 {
	if len(r.table) < 2 {
		return 0
	}
	n := r.table[0].length
	for _, t := range r.table[:len(r.table)-1] {
		if t.length != n {
			return 0
		}
	}
	return frameHdrSize + int64(n)
}

func newReader(f vfs.File, d digest.Digest, dataKey []byte) (*Reader, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	r, hb, err := readHeader(f, st.Size(), d, dataKey)
	if err != nil {
		return nil, err
	}
	r.key = frameKeyOf(st, hb)
	return r, nil
}

// readHeader reads and checks the header and frame table of the blob in
// f, of stored length size.
func readHeader(f Source, size int64, d digest.Digest, dataKey []byte) (*Reader, []byte, error) {
	var err error
	hb := make([]byte, headerSize)
	if _, err := f.ReadAt(hb, 0); err != nil {
		return nil, nil, readErr("header", err)
	}
	h, err := decodeHeader(hb)
	if err != nil {
		return nil, nil, err
	}
	r := &Reader{f: f, d: d, h: h, fs: int64(h.frameSize), cacheN: -1}
	switch {
	case h.sealed() && dataKey == nil:
		return nil, nil, ErrKeyRequired
	case h.sealed():
		if r.sealer, err = crypt.NewFrameSealer(dataKey, h.fileID); err != nil {
			return nil, nil, err
		}
	case dataKey != nil:
		// A plain file where a sealed one is expected: anyone who can
		// write the store can make one, with any content.
		return nil, nil, fmt.Errorf("%w: plain file where a sealed one is expected", ErrCorrupt)
	}
	if err := checkHeader(hb, r.sealer); err != nil {
		return nil, nil, err
	}
	if h.flags&flagCommitted == 0 {
		return nil, nil, fmt.Errorf("%w: not committed", ErrCorrupt)
	}
	if algOf(h.alg) != d.Algorithm() || hex.EncodeToString(h.digest) != d.Encoded() {
		return nil, nil, fmt.Errorf("%w: file holds another digest", ErrCorrupt)
	}
	if err := h.checkLength(size); err != nil {
		return nil, nil, err
	}
	n := int64(h.frames)
	tb := make([]byte, n*tableEntrySize)
	if _, err := f.ReadAt(tb, int64(h.tableOff)); err != nil {
		return nil, nil, readErr("table", err)
	}
	r.table = make([]frameHdr, n)
	r.offs = make([]int64, n)
	off := int64(headerSize)
	maxStored := uint32(maxStoredPayload(r.fs))
	for i := range r.table {
		t, err := getFrameHdr(tb[i*tableEntrySize:])
		if err != nil {
			return nil, nil, err
		}
		if (t.flags&frameFlagLast != 0) != (int64(i) == n-1) || t.length > maxStored {
			return nil, nil, fmt.Errorf("%w: table entry %d", ErrCorrupt, i)
		}
		r.table[i], r.offs[i] = t, off
		off += frameHdrSize + int64(t.length)
	}
	if off != int64(h.tableOff) {
		return nil, nil, fmt.Errorf("%w: frames end at %d, table at %d", ErrCorrupt, off, h.tableOff)
	}
	return r, hb, nil
}

// readErr is a failed read of the stored bytes: the backend's
// ErrUnavailable as it is (retry later), anything else ErrCorrupt that
// still wraps the cause (errors.Is(err, syscall.EIO) holds for a disk's
// I/O error).
func readErr(what string, err error) error {
	if errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	return fmt.Errorf("%w: reading %s: %w", ErrCorrupt, what, err)
}

// maxStoredPayload bounds a frame's stored payload: raw data plus the
// larger of the seal overhead and the CRC.
func maxStoredPayload(frameSize int64) int64 { return frameSize + crypt.Overhead }

// Size is the blob's logical length.
func (r *Reader) Size() int64 { return int64(r.h.size) }

// Digest is the blob's digest.
func (r *Reader) Digest() digest.Digest { return r.d }

// Frames is the number of frames the blob is stored in.
func (r *Reader) Frames() int { return len(r.table) }

// frameLen is the logical length of frame i.
func (r *Reader) frameLen(i int64) int64 {
	if i == int64(len(r.table))-1 {
		return r.Size() - i*r.fs
	}
	return r.fs
}

// decodeFrame authenticates frame i and decodes it into out, which must
// be exactly frameLen(i) bytes. Whatever the file holds, it writes
// nothing outside out; on failure out holds zeros, never bytes of a frame
// that failed.
func (r *Reader) decodeFrame(i int64, out []byte) error {
	if int64(len(out)) != r.frameLen(i) {
		panic("blob: decodeFrame: buffer is not one frame long") // a bug in the caller
	}
	t := r.table[i]
	n := frameHdrSize + int(t.length)
	var buf []byte
	if v, ok := r.f.(Viewer); ok {
		if b, release, ok := v.View(r.offs[i], n); ok && len(b) == n {
			buf = b
			defer release()
		} else if ok {
			release()
		}
	}
	if buf == nil {
		buf = buffers.get(n)[:n]
		defer buffers.put(buf)
		if _, err := r.f.ReadAt(buf, r.offs[i]); err != nil {
			return fmt.Errorf("%s: %w", r.d, readErr(fmt.Sprintf("frame %d", i), err))
		}
	}
	if got, err := getFrameHdr(buf); err != nil || got != t {
		return fmt.Errorf("%w: %s frame %d head differs from table", ErrCorrupt, r.d, i)
	}
	last := t.flags&frameFlagLast != 0
	if err := decodePayload(r.sealer, &r.h.fileID, uint64(i), last, t.codec, buf[frameHdrSize:], out); err != nil {
		clear(out)
		return fmt.Errorf("blob %s: %w", r.d, err)
	}
	return nil
}

// decodePayload authenticates one stored frame payload and decodes it
// into out, failing with ErrCorrupt unless it holds exactly len(out)
// bytes. Lengths are checked before anything is copied or decrypted, and
// every decoder is handed a slice whose capacity ends where out ends, so
// that even a frame that authenticates (a writer that holds the key, or a
// plain file) cannot make it write past out.
func decodePayload(sealer *crypt.FrameSealer, fileID *[crypt.FileIDSize]byte, n uint64, last bool, codec byte, stored, out []byte) error {
	want := len(out)
	var plain []byte
	if sealer != nil {
		if codec == codecRaw {
			if len(stored) != want+crypt.Overhead {
				return fmt.Errorf("%w: frame %d stores %d bytes for %d", ErrCorrupt, n, len(stored), want)
			}
			got, err := sealer.Open(out[:0:want], stored, n, last, codec)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrCorrupt, err)
			}
			if len(got) != want {
				return fmt.Errorf("%w: frame %d holds %d bytes", ErrCorrupt, n, len(got))
			}
			return nil
		}
		if len(stored) < crypt.Overhead {
			return fmt.Errorf("%w: frame %d too short", ErrCorrupt, n)
		}
		scratch := buffers.get(len(stored) - crypt.Overhead)
		defer buffers.put(scratch)
		var err error
		if plain, err = sealer.Open(scratch, stored, n, last, codec); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	} else {
		if len(stored) < crcSize {
			return fmt.Errorf("%w: frame %d too short", ErrCorrupt, n)
		}
		plain = stored[:len(stored)-crcSize]
		if codec == codecRaw && len(plain) != want {
			return fmt.Errorf("%w: frame %d stores %d bytes for %d", ErrCorrupt, n, len(plain), want)
		}
		if binary.BigEndian.Uint32(stored[len(plain):]) != plainCheck(fileID, n, last, codec, plain) {
			return fmt.Errorf("%w: frame %d checksum", ErrCorrupt, n)
		}
		if codec == codecRaw {
			copy(out, plain)
			return nil
		}
	}
	// The decoder is limited to the capacity it is given (see decoder).
	got, err := decoder().DecodeAll(plain, out[:0:want])
	if err != nil {
		return fmt.Errorf("%w: frame %d: zstd: %v", ErrCorrupt, n, err)
	}
	if len(got) != want {
		return fmt.Errorf("%w: frame %d decodes to %d bytes", ErrCorrupt, n, len(got))
	}
	if want > 0 && &got[0] != &out[0] {
		copy(out, got) // not reached: the decoder does not grow past the capacity
	}
	return nil
}

// ReadAt reads len(p) bytes at off, decoding only the frames under them.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("blob %s: negative offset", r.d)
	}
	size := r.Size()
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < size {
		i := off / r.fs
		within := off - i*r.fs
		flen := r.frameLen(i)
		if within == 0 && int64(len(p)-n) >= flen {
			// The whole frame is wanted: decode straight into p.
			if err := r.decodeFrame(i, p[n:n+int(flen)]); err != nil {
				return n, err
			}
			n += int(flen)
			off += flen
			continue
		}
		c, err := r.copyFromCached(i, within, p[n:])
		if err != nil {
			return n, err
		}
		n += c
		off += int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// prefetch is a frame being decoded ahead of a sequential reader.
type prefetch struct {
	n    int64
	done chan struct{}
	buf  []byte
	err  error
}

// copyFromCached copies from frame i (decoded once into the reader's
// one-frame cache) starting at within. When frames are read in order, the
// next one is decoded in the background meanwhile, so decoding overlaps
// the caller's work (e.g. writing to a network connection).
func (r *Reader) copyFromCached(i, within int64, p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cacheN != i {
		sequential := r.cacheN >= 0 && i == r.cacheN+1
		if a := r.ahead; a != nil {
			<-a.done
			r.ahead = nil
			if a.n == i && a.err == nil {
				r.cache, r.spare = a.buf, r.cache
				r.cacheN = i
			} else {
				r.spare = a.buf
			}
		}
		if r.cacheN != i {
			if r.cache == nil {
				r.cache = make([]byte, 0, r.fs)
			}
			r.cache = r.cache[:r.frameLen(i)]
			if err := r.decodeFrame(i, r.cache); err != nil {
				r.cacheN = -1
				return 0, err
			}
			r.cacheN = i
		}
		if sequential && i+1 < int64(len(r.table)) {
			buf := r.spare
			if buf == nil {
				buf = make([]byte, 0, r.fs)
			}
			r.spare = nil
			a := &prefetch{n: i + 1, done: make(chan struct{}), buf: buf[:r.frameLen(i+1)]}
			r.ahead = a
			go func() {
				defer close(a.done)
				a.err = r.decodeFrame(a.n, a.buf)
			}()
		}
	}
	return copy(p, r.cache[within:]), nil
}

// Advise tells the reader that the logical range [off, off+n) will be
// read soon: the kernel starts reading the frames under it from disk in
// the background, so that a sequential reader that advises ahead of
// itself finds them in the page cache. It is only a hint.
func (r *Reader) Advise(off, n int64) {
	size := r.Size()
	if n <= 0 || off >= size || off < 0 {
		return
	}
	lastByte := size - 1
	if n <= lastByte-off { // off+n-1 < size, computed without overflow
		lastByte = off + n - 1
	}
	first, last := off/r.fs, lastByte/r.fs
	start := r.offs[first]
	end := r.offs[last] + frameHdrSize + int64(r.table[last].length)
	if f, ok := r.f.(syscall.Conn); ok {
		willNeed(f, start, end-start)
	}
}

// Read reads from the current position.
func (r *Reader) Read(p []byte) (int, error) {
	if r.pos >= r.Size() {
		return 0, io.EOF
	}
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the position for Read.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = r.pos
	case io.SeekEnd:
		base = r.Size()
	default:
		return 0, fmt.Errorf("blob: bad whence %d", whence)
	}
	if offset > 0 && base > math.MaxInt64-offset {
		return 0, fmt.Errorf("blob: position overflows")
	}
	abs := base + offset
	if abs < 0 {
		return 0, fmt.Errorf("blob: negative position")
	}
	r.pos = abs
	return abs, nil
}

// Close closes the file, after any background decode has finished.
func (r *Reader) Close() error {
	r.mu.Lock()
	if a := r.ahead; a != nil {
		<-a.done
		r.ahead = nil
	}
	r.mu.Unlock()
	return r.f.Close()
}

// writeAhead is how many frames one WriteTo decodes ahead of the one it
// writes, at most.
const writeAhead = 3

// aheadSlots bounds the frames decoded ahead by all WriteTo calls of the
// process together: more than the cores can decode buys nothing, and each
// costs a frame of memory, so eight clients pulling at once stay as lean
// as two.
var aheadSlots = make(chan struct{}, 2*runtime.GOMAXPROCS(0))

// WriteTo writes the blob from the current position to w: whole frames,
// decoded in parallel ahead of the write (up to writeAhead frames, as
// process-wide slots allow), so a transfer runs at the decoders' combined
// speed rather than one core's. io.Copy uses it.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	size := r.Size()
	if r.pos >= size {
		return 0, nil
	}
	type decoded struct {
		buf     []byte
		err     error
		done    chan struct{}
		release func() // set when buf belongs to the store's frame cache
	}
	decode := func(d *decoded, i int64) {
		if r.shared != nil {
			d.buf, d.release, d.err = r.shared.get(r, i)
			return
		}
		buf := buffers.get(int(r.fs))[:r.frameLen(i)]
		if d.err = r.decodeFrame(i, buf); d.err != nil {
			buffers.put(buf)
			return
		}
		d.buf = buf
	}
	release := func(d *decoded) {
		switch {
		case d.err != nil:
		case d.release != nil:
			d.release()
		default:
			buffers.put(d.buf)
		}
	}
	// launch decodes frame i in the background if a slot is free.
	launch := func(i int64) *decoded {
		select {
		case aheadSlots <- struct{}{}:
		default:
			return nil
		}
		d := &decoded{done: make(chan struct{})}
		go func() {
			defer func() { <-aheadSlots }()
			defer close(d.done)
			decode(d, i)
		}()
		return d
	}
	first, last := r.pos/r.fs, int64(len(r.table))-1
	var queue []*decoded // frames next.. queued in order
	next := first
	fill := func() {
		for next <= last && len(queue) < writeAhead {
			d := launch(next)
			if d == nil {
				return
			}
			queue = append(queue, d)
			next++
		}
	}
	drain := func() {
		for _, d := range queue {
			<-d.done
			release(d)
		}
	}
	var n int64
	for i := first; i <= last; i++ {
		fill()
		var d *decoded
		if len(queue) > 0 {
			d = queue[0]
			queue = queue[1:]
			<-d.done
		} else {
			// No slot free: decode this frame here.
			d = &decoded{}
			decode(d, i)
			next = i + 1
		}
		if d.err != nil {
			drain()
			return n, d.err
		}
		fill()
		b := d.buf
		if i == first {
			b = b[r.pos-first*r.fs:]
		}
		m, err := w.Write(b)
		release(d)
		n += int64(m)
		r.pos += int64(m)
		if err != nil {
			drain()
			return n, err
		}
	}
	return n, nil
}
