package blob

import (
	"context"
	"crypto/rand"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/crypt"
)

// WriterState is what a Writer needs to resume after its process ended:
// the caller persists it (the engine keeps it in the index) after each
// Checkpoint. It holds no key material.
type WriterState struct {
	// FileID is the temporary file's random identifier.
	FileID [crypt.FileIDSize]byte `json:"fileID"`
	// Size is the logical bytes appended and durable.
	Size int64 `json:"size"`
	// Frames is the number of complete frames on disk.
	Frames uint32 `json:"frames"`
	// End is the file offset just past the complete frames.
	End int64 `json:"end"`
	// TailLen is the stored length (with its head) of the partial frame
	// checkpointed in tail slot TailSlot, or 0.
	TailLen int64 `json:"tailLen"`
	// TailSlot is the side file (<id>.tail0 or <id>.tail1) that holds the
	// checkpointed partial frame. Checkpoints alternate between the two, so
	// the partial frame of the last recorded state is never overwritten,
	// neither by the frames that follow it in the .part file nor by the
	// next Checkpoint before the caller has recorded it.
	TailSlot uint8 `json:"tailSlot,omitempty"`
	// Algorithm is the digest algorithm being computed.
	Algorithm digest.Algorithm `json:"algorithm"`
	// Hash is the marshalled state of the running hash after Size bytes.
	Hash []byte `json:"hash"`
	// Sealed tells whether frames are encrypted.
	Sealed bool `json:"sealed"`
	// Backend is a backend's own state of the upload (an object store's
	// multipart upload and side objects), opaque to the file store.
	Backend json.RawMessage `json:"backend,omitempty"`
}

// WriterOptions configure one writer.
type WriterOptions struct {
	// DataKey seals the frames; nil stores them plain (CRC-checked).
	DataKey []byte
	// Algorithm is the digest computed while writing. Default sha256.
	// Commit with another algorithm re-reads the file once to hash it.
	Algorithm digest.Algorithm
	// Limit is the largest blob accepted, in bytes; 0 means no limit.
	Limit int64
}

// Writer streams one blob into a temporary file. Bytes are hashed as they
// arrive; full frames are encoded (compressed, sealed) by the store's
// encoder pool and written in order by the writer's flusher goroutine.
// A Writer is used by one goroutine at a time. After its first failure it
// returns that failure forever.
type Writer struct {
	s      *Store
	id     string
	path   string
	f      vfs.File
	sealer *crypt.FrameSealer
	fileID [crypt.FileIDSize]byte
	alg    digest.Algorithm
	h      hash.Hash
	limit  int64

	size      int64
	cur       []byte // pending frame: never flushed until more bytes arrive
	nextFrame uint64
	rawOnly   bool // already-compressed content, or compression disabled
	sniffed   bool
	misses    atomic.Int32 // consecutive frames that did not compress

	queue     chan *frameJob
	flushDone chan struct{}
	// owned by the flusher; read by others only after a barrier
	off       int64
	flushedTo int64 // writeback has been started up to here
	table     []frameHdr

	errMu sync.Mutex
	err   error

	closed bool
	// slot is the tail slot of the last state Checkpoint returned.
	slot uint8

	// written mirrors off for other goroutines (Written); last, so that
	// the fields above keep their places in memory.
	written atomic.Int64
}

type frameJob struct {
	n       uint64
	last    bool
	data    []byte
	out     []byte
	err     error
	done    chan struct{}
	barrier chan struct{} // non-nil: no frame; closed when reached
}

// NewWriter starts upload id (a name safe in a file name: letters, digits, '-').
func (s *Store) NewWriter(ctx context.Context, id string, o WriterOptions) (*Writer, error) {
	p, err := s.uploadPath(id)
	if err != nil {
		return nil, err
	}
	w, err := s.newWriter(id, p, o)
	if err != nil {
		return nil, err
	}
	if _, err := rand.Read(w.fileID[:]); err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	if err := w.initSealer(o.DataKey); err != nil {
		return nil, err
	}
	f, err := s.createFile(p, true)
	if err != nil {
		return nil, wrapIOErr(fmt.Errorf("blob: upload %s: %w", id, err))
	}
	w.f = f
	hdr := header{frameSize: uint32(s.opts.FrameSize), fileID: w.fileID}
	if w.sealer != nil {
		hdr.flags |= flagSealed
	}
	if _, err := f.WriteAt(hdr.encode(w.sealer), 0); err != nil {
		f.Close()
		s.fs.Remove(p)
		return nil, wrapIOErr(fmt.Errorf("blob: upload %s: %w", id, err))
	}
	w.off = headerSize
	w.written.Store(w.off)
	w.start()
	return w, nil
}

func (s *Store) newWriter(id, p string, o WriterOptions) (*Writer, error) {
	alg := o.Algorithm
	if alg == "" {
		alg = digest.SHA256
	}
	if _, err := algByte(alg); err != nil {
		return nil, err
	}
	return &Writer{
		s: s, id: id, path: p, alg: alg, h: alg.Hash(), limit: o.Limit,
		rawOnly: s.opts.DisableCompression,
		cur:     buffers.get(s.opts.FrameSize),
	}, nil
}

func (w *Writer) initSealer(key []byte) error {
	if key == nil {
		return nil
	}
	sealer, err := crypt.NewFrameSealer(key, w.fileID)
	if err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	w.sealer = sealer
	return nil
}

func (w *Writer) start() {
	w.queue = make(chan *frameJob, w.s.opts.InFlight)
	w.flushDone = make(chan struct{})
	go w.flusher()
}

// ID is the writer's upload id.
func (w *Writer) ID() string { return w.id }

// Size is the number of bytes written so far.
func (w *Writer) Size() int64 { return w.size }

func (w *Writer) fail(err error) error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if w.err == nil {
		w.err = err
	}
	return w.err
}

func (w *Writer) sticky() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// Write appends p to the blob.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, ErrWriterClosed
	}
	if err := w.sticky(); err != nil {
		return 0, err
	}
	if w.limit > 0 && w.size+int64(len(p)) > w.limit {
		return 0, w.fail(fmt.Errorf("%w: over %d bytes", ErrTooLarge, w.limit))
	}
	if !w.sniffed && len(p) > 0 {
		w.sniffed = true
		if compressedMagic(p) {
			w.rawOnly = true
		}
	}
	w.h.Write(p)
	n := 0
	fs := w.s.opts.FrameSize
	for n < len(p) {
		if len(w.cur) == fs {
			// More bytes follow, so the pending frame is not the last.
			w.dispatch(w.cur, false)
			w.cur = buffers.get(fs)
		}
		c := copy(w.cur[len(w.cur):fs], p[n:])
		w.cur = w.cur[:len(w.cur)+c]
		n += c
	}
	w.size += int64(n)
	if err := w.sticky(); err != nil {
		return n, err
	}
	return n, nil
}

// ReadFrom appends everything r yields. It reads straight into the
// pending frame's buffer, so each byte is copied once on its way in.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.closed {
		return 0, ErrWriterClosed
	}
	fs := w.s.opts.FrameSize
	var total int64
	for {
		if err := w.sticky(); err != nil {
			return total, err
		}
		buf := w.cur
		full := len(buf) == fs
		if full {
			// Only once more bytes arrive is the pending frame known not
			// to be the last: read them into the next frame's buffer.
			buf = buffers.get(fs)
		}
		n, rerr := r.Read(buf[len(buf):fs])
		if n > 0 {
			fresh := buf[len(buf) : len(buf)+n]
			if w.limit > 0 && w.size+int64(n) > w.limit {
				if full {
					buffers.put(buf)
				}
				return total, w.fail(fmt.Errorf("%w: over %d bytes", ErrTooLarge, w.limit))
			}
			if !w.sniffed {
				w.sniffed = true
				w.rawOnly = w.rawOnly || compressedMagic(fresh)
			}
			w.h.Write(fresh)
			if full {
				w.dispatch(w.cur, false)
			}
			w.cur = buf[:len(buf)+n]
			w.size += int64(n)
			total += int64(n)
		} else if full {
			buffers.put(buf)
		}
		if rerr == io.EOF {
			return total, w.sticky()
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// dispatch queues frame data as frame w.nextFrame. The queue bounds how
// many frames are in flight, so memory stays flat.
func (w *Writer) dispatch(data []byte, last bool) {
	j := &frameJob{n: w.nextFrame, last: last, data: data, done: make(chan struct{})}
	w.nextFrame++
	w.s.frames <- struct{}{} // released by the flusher once the frame is written
	w.queue <- j
	w.s.pool.submit(func() {
		j.out, j.err = w.encodeFrame(j.n, j.last, j.data)
		close(j.done)
	})
}

// encodeFrame returns frame n as stored: its 8-byte head, then the
// payload sealed (or plain with a CRC-32C).
func (w *Writer) encodeFrame(n uint64, last bool, data []byte) ([]byte, error) {
	codec, payload := codecRaw, data
	var scratch []byte
	if !w.rawOnly && len(data) > 0 {
		miss := w.misses.Load()
		if miss < 4 || n%16 == 0 {
			scratch = encoder(w.s.opts.Level).EncodeAll(data, buffers.get(len(data)))
			if len(scratch) < len(data)-len(data)/8 {
				codec, payload = codecZstd, scratch
				w.misses.Store(0)
			} else {
				w.misses.Add(1)
			}
		}
	}
	out := buffers.get(frameHdrSize + len(payload) + crypt.Overhead)[:frameHdrSize]
	var err error
	if w.sealer != nil {
		out, err = w.sealer.Seal(out, payload, n, last, codec)
	} else {
		out = append(out, payload...)
		out = binary.BigEndian.AppendUint32(out, plainCheck(&w.fileID, n, last, codec, payload))
	}
	if scratch != nil {
		buffers.put(scratch)
	}
	if err != nil {
		buffers.put(out)
		return nil, err
	}
	var flags byte
	if last {
		flags = frameFlagLast
	}
	frameHdr{length: uint32(len(out) - frameHdrSize), codec: codec, flags: flags}.put(out)
	return out, nil
}

// flusher writes encoded frames in order.
func (w *Writer) flusher() {
	defer close(w.flushDone)
	for j := range w.queue {
		if j.barrier != nil {
			close(j.barrier)
			continue
		}
		<-j.done
		<-w.s.frames
		buffers.put(j.data)
		if j.err != nil {
			w.fail(j.err)
		}
		if j.out == nil {
			continue
		}
		if w.sticky() == nil {
			if _, err := w.f.WriteAt(j.out, w.off); err != nil {
				w.fail(wrapIOErr(fmt.Errorf("blob: upload %s: %w", w.id, err)))
			} else {
				hdr, _ := getFrameHdr(j.out)
				w.table = append(w.table, hdr)
				w.off += int64(len(j.out))
				w.written.Store(w.off)
				if w.off-w.flushedTo >= writebackEvery && !w.s.opts.NoSync {
					// Start writeback now, so that Commit's fsync finds
					// little left to write.
					startWriteback(w.f, w.flushedTo, w.off-w.flushedTo)
					w.flushedTo = w.off
				}
			}
		}
		buffers.put(j.out)
	}
}

// drain waits until every dispatched frame is written.
func (w *Writer) drain() error {
	b := make(chan struct{})
	w.queue <- &frameJob{barrier: b}
	<-b
	return w.sticky()
}

func (w *Writer) stop() {
	if w.queue != nil {
		close(w.queue)
		<-w.flushDone
		w.queue = nil
	}
}

// Checkpoint makes every byte written so far durable and returns the state
// from which ResumeWriter continues. The pending partial frame is written
// after the complete ones (sealed as not last) and rewritten when it fills.
func (w *Writer) Checkpoint(ctx context.Context) (WriterState, error) {
	if w.closed {
		return WriterState{}, ErrWriterClosed
	}
	if err := w.drain(); err != nil {
		return WriterState{}, err
	}
	var tailLen int64
	slot := w.slot
	if len(w.cur) > 0 {
		// The partial frame goes to the slot the last recorded state does
		// not use: writing it at w.off, where the next complete frame will
		// go, would lose the checkpoint as soon as that frame is written.
		out, err := w.encodeFrame(w.nextFrame, false, w.cur)
		if err != nil {
			return WriterState{}, w.fail(err)
		}
		slot = 1 - w.slot
		err = w.s.writeTail(tailPath(w.path, slot), out, !w.s.opts.NoSync)
		tailLen = int64(len(out))
		buffers.put(out)
		if err != nil {
			return WriterState{}, w.fail(wrapIOErr(fmt.Errorf("blob: upload %s: %w", w.id, err)))
		}
	}
	if err := truncate(w.f, w.off); err != nil {
		return WriterState{}, w.fail(wrapIOErr(fmt.Errorf("blob: upload %s: %w", w.id, err)))
	}
	if err := w.sync(); err != nil {
		return WriterState{}, w.fail(wrapIOErr(fmt.Errorf("blob: upload %s: %w", w.id, err)))
	}
	hs, err := w.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return WriterState{}, fmt.Errorf("blob: hash state: %w", err)
	}
	w.slot = slot
	return WriterState{
		FileID: w.fileID, Size: w.size, Frames: uint32(len(w.table)), End: w.off,
		TailLen: tailLen, TailSlot: slot, Algorithm: w.alg, Hash: hs, Sealed: w.sealer != nil,
	}, nil
}

// tailPath is the file of tail slot slot of the upload whose file is part.
func tailPath(part string, slot uint8) string {
	return strings.TrimSuffix(part, ".part") + ".tail" + strconv.Itoa(int(slot&1))
}

// sync makes the upload file durable, unless the store is NoSync.
func (w *Writer) sync() error {
	if w.s.opts.NoSync {
		return nil
	}
	return w.f.Sync()
}

// writeTail replaces the content of tail file p with frame, synced when
// sync is set.
func (s *Store) writeTail(p string, frame []byte, sync bool) error {
	f, err := s.createFile(p, false)
	if err != nil {
		return err
	}
	_, err = f.Write(frame)
	if sync {
		if serr := f.Sync(); err == nil {
			err = serr
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		s.syncDir(filepath.Dir(p))
	}
	return err
}

// removeTails deletes both tail slots of the upload whose file is part.
func (s *Store) removeTails(part string) {
	for slot := range uint8(2) {
		_ = s.fs.Remove(tailPath(part, slot))
	}
}

// ResumeWriter reopens upload id at the state its last Checkpoint returned.
// Bytes written after that checkpoint are discarded.
func (s *Store) ResumeWriter(ctx context.Context, id string, st WriterState, o WriterOptions) (*Writer, error) {
	p, err := s.uploadPath(id)
	if err != nil {
		return nil, err
	}
	if o.Algorithm == "" {
		o.Algorithm = st.Algorithm
	}
	if o.Algorithm != st.Algorithm {
		return nil, fmt.Errorf("%w: algorithm %s, state has %s", ErrBadState, o.Algorithm, st.Algorithm)
	}
	w, err := s.newWriter(id, p, o)
	if err != nil {
		return nil, err
	}
	w.fileID = st.FileID
	if st.Sealed != (o.DataKey != nil) {
		return nil, fmt.Errorf("%w: sealed=%v without matching key", ErrBadState, st.Sealed)
	}
	if err := w.initSealer(o.DataKey); err != nil {
		return nil, err
	}
	f, err := s.openExisting(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: upload %s has no file", ErrBadState, id)
		}
		return nil, fmt.Errorf("blob: upload %s: %w", id, err)
	}
	w.f = f
	if err := w.restore(st); err != nil {
		f.Close()
		return nil, fmt.Errorf("blob: upload %s: %w", id, err)
	}
	w.start()
	return w, nil
}

func (w *Writer) restore(st WriterState) error {
	fsize := int64(w.s.opts.FrameSize)
	hb := make([]byte, headerSize)
	if _, err := w.f.ReadAt(hb, 0); err != nil {
		return fmt.Errorf("%w: header: %v", ErrBadState, err)
	}
	h, err := decodeHeader(hb)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadState, err)
	}
	if err := checkHeader(hb, w.sealer); err != nil {
		return fmt.Errorf("%w: %w", ErrBadState, err)
	}
	// A committed header is accepted: Commit writes it before the rename,
	// so a crash between the two leaves a .part file whose commit never
	// happened; the frames up to st.End are intact and the next Commit
	// writes the header again.
	if h.fileID != st.FileID || int64(h.frameSize) != fsize || h.sealed() != st.Sealed {
		return fmt.Errorf("%w: header does not match state", ErrBadState)
	}
	if st.Size < int64(st.Frames)*fsize || st.Size-int64(st.Frames)*fsize > fsize || (st.Size > int64(st.Frames)*fsize) != (st.TailLen > 0) {
		return fmt.Errorf("%w: size %d with %d frames", ErrBadState, st.Size, st.Frames)
	}
	maxFrame := frameHdrSize + maxStoredPayload(fsize)
	if st.TailLen < 0 || st.TailLen > maxFrame || st.End < headerSize || st.End > headerSize+int64(st.Frames)*maxFrame {
		return fmt.Errorf("%w: tail of %d bytes, frames ending at %d", ErrBadState, st.TailLen, st.End)
	}
	// Rebuild the table of complete frames from their heads.
	off := int64(headerSize)
	var fh [frameHdrSize]byte
	for i := uint32(0); i < st.Frames; i++ {
		if _, err := w.f.ReadAt(fh[:], off); err != nil {
			return fmt.Errorf("%w: frame %d head: %v", ErrBadState, i, err)
		}
		hdr, err := getFrameHdr(fh[:])
		if err != nil || hdr.flags != 0 || int64(hdr.length) > maxStoredPayload(fsize) {
			return fmt.Errorf("%w: frame %d head", ErrBadState, i)
		}
		w.table = append(w.table, hdr)
		off += frameHdrSize + int64(hdr.length)
	}
	if off != st.End {
		return fmt.Errorf("%w: frames end at %d, state says %d", ErrBadState, off, st.End)
	}
	w.off = off
	w.written.Store(off)
	w.nextFrame = uint64(st.Frames)
	w.slot = st.TailSlot & 1
	if st.TailLen > 0 {
		buf := make([]byte, st.TailLen)
		tf, err := w.s.fs.Open(tailPath(w.path, w.slot))
		if err != nil {
			return fmt.Errorf("%w: tail frame: %v", ErrBadState, err)
		}
		_, err = tf.ReadAt(buf, 0)
		tf.Close()
		if err != nil {
			return fmt.Errorf("%w: tail frame: %v", ErrBadState, err)
		}
		hdr, err := getFrameHdr(buf)
		if err != nil || int64(hdr.length)+frameHdrSize != st.TailLen {
			return fmt.Errorf("%w: tail frame head", ErrBadState)
		}
		data := w.cur[:st.Size-int64(st.Frames)*fsize]
		if err := decodePayload(w.sealer, &w.fileID, uint64(st.Frames), false, hdr.codec, buf[frameHdrSize:], data); err != nil {
			return fmt.Errorf("%w: tail frame: %w", ErrBadState, err)
		}
		w.cur = data
	}
	if err := w.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.Hash); err != nil {
		return fmt.Errorf("%w: hash state: %v", ErrBadState, err)
	}
	w.size = st.Size
	w.sniffed = st.Size > 0
	if w.sniffed {
		head := w.cur
		if st.Frames > 0 {
			head = nil // first frame is on disk; sniff was done, compression decided per frame
		}
		w.rawOnly = w.rawOnly || compressedMagic(head)
	}
	return truncate(w.f, off)
}

// Commit finishes the blob: it encodes the last frame, checks the size
// (when size >= 0) and the digest, writes the frame table and the final
// header, fsyncs and renames the file into place. On error the writer is
// still open: Cancel it (or resume writing after ErrNoSpace is resolved
// and Checkpoint); a failed fsync fails the writer for good. The caller
// must make sure no other Commit of the same digest runs at the same time.
func (w *Writer) Commit(ctx context.Context, expected digest.Digest, size int64) (Info, error) {
	if w.closed {
		return Info{}, ErrWriterClosed
	}
	if err := checkDigest(expected); err != nil {
		return Info{}, err
	}
	if size >= 0 && size != w.size {
		return Info{}, fmt.Errorf("%w: wrote %d bytes, expected %d", ErrSizeMismatch, w.size, size)
	}
	if err := w.sticky(); err != nil {
		return Info{}, err
	}
	var got digest.Digest
	if expected.Algorithm() == w.alg {
		got = digest.NewDigest(w.alg, w.h)
		if got != expected {
			return Info{}, fmt.Errorf("%w: content is %s, expected %s", ErrDigestMismatch, got, expected)
		}
	}
	// The last frame is encoded synchronously; the writer stays usable
	// (the pending frame kept) until the file is in place.
	if err := w.drain(); err != nil {
		return Info{}, err
	}
	out, err := w.encodeFrame(w.nextFrame, true, w.cur)
	if err != nil {
		return Info{}, w.fail(err)
	}
	defer buffers.put(out)
	lastHdr, _ := getFrameHdr(out)
	table := append(w.table[:len(w.table):len(w.table)], lastHdr)
	if got == "" {
		// Another algorithm than the one hashed while writing: hash the
		// frames once more (rare: sha512 pushed through a sha256 session).
		d, err := w.rehash(expected.Algorithm())
		if err != nil {
			return Info{}, err
		}
		if d != expected {
			return Info{}, fmt.Errorf("%w: content is %s, expected %s", ErrDigestMismatch, d, expected)
		}
	}
	tableOff := w.off + int64(len(out))
	tb := make([]byte, 0, len(table)*tableEntrySize)
	for _, t := range table {
		tb = append(tb, make([]byte, tableEntrySize)...)
		t.put(tb[len(tb)-tableEntrySize:])
	}
	ab, _ := algByte(expected.Algorithm())
	raw, _ := hex.DecodeString(expected.Encoded())
	hdr := header{
		flags: flagCommitted, frameSize: uint32(w.s.opts.FrameSize), fileID: w.fileID,
		size: uint64(w.size), frames: uint32(len(table)), alg: ab, digest: raw, tableOff: uint64(tableOff),
	}
	if w.sealer != nil {
		hdr.flags |= flagSealed
	}
	ioErr := func(err error) error {
		return wrapIOErr(fmt.Errorf("blob: upload %s: %w", w.id, err))
	}
	if _, err := w.f.WriteAt(out, w.off); err != nil {
		return Info{}, ioErr(err)
	}
	if _, err := w.f.WriteAt(tb, tableOff); err != nil {
		return Info{}, ioErr(err)
	}
	if err := truncate(w.f, tableOff+int64(len(tb))); err != nil {
		return Info{}, ioErr(err)
	}
	if _, err := w.f.WriteAt(hdr.encode(w.sealer), 0); err != nil {
		return Info{}, ioErr(err)
	}
	if err := w.sync(); err != nil {
		// Sticky, unlike the writes above (rewritten whole by the next
		// Commit): after a failed fsync the kernel may have dropped the
		// dirty pages of frames written long before, and a second fsync
		// would succeed without them. Cancel, and push again.
		return Info{}, w.fail(ioErr(err))
	}
	final, _ := w.s.Path(expected)
	if err := w.s.ensureDir(filepath.Dir(final)); err != nil {
		return Info{}, err
	}
	if err := w.s.fs.Rename(w.path, final); err != nil {
		return Info{}, ioErr(err)
	}
	w.s.syncDir(filepath.Dir(final))
	w.s.removeTails(w.path)
	w.stop()
	w.f.Close()
	w.closed = true
	buffers.put(w.cur)
	w.cur = nil
	return Info{Digest: expected, Size: w.size, StoredSize: tableOff + int64(len(tb)), Sealed: w.sealer != nil, FileID: w.fileID}, nil
}

// rehash computes the digest of the frames written so far plus the
// pending one with algorithm alg.
func (w *Writer) rehash(alg digest.Algorithm) (digest.Digest, error) {
	h := alg.Hash()
	off := int64(headerSize)
	data := make([]byte, w.s.opts.FrameSize) // every frame but the pending one is full
	for i, t := range w.table {
		stored := make([]byte, t.length)
		if _, err := w.f.ReadAt(stored, off+frameHdrSize); err != nil {
			return "", fmt.Errorf("blob: upload %s: rereading frame %d: %w", w.id, i, err)
		}
		if err := decodePayload(w.sealer, &w.fileID, uint64(i), false, t.codec, stored, data); err != nil {
			return "", fmt.Errorf("blob: upload %s: %w", w.id, err)
		}
		h.Write(data)
		off += frameHdrSize + int64(t.length)
	}
	h.Write(w.cur)
	return digest.NewDigest(alg, h), nil
}

// Cancel abandons the upload and removes its file.
func (w *Writer) Cancel() error {
	if w.closed {
		return nil
	}
	w.stop()
	w.closed = true
	w.f.Close()
	buffers.put(w.cur)
	w.cur = nil
	w.s.removeTails(w.path)
	if err := w.s.fs.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: upload %s: %w", w.id, err)
	}
	return nil
}

// Close releases the writer without removing its file; what the last
// Checkpoint made durable can be resumed.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.stop()
	w.closed = true
	buffers.put(w.cur)
	w.cur = nil
	return w.f.Close()
}

// Written is how many bytes of the upload file the writer has written:
// the header and the complete frames. Bytes past the header below it are
// final (no later write changes them, until a resume truncates the file
// to a checkpoint), so another goroutine may read and send them while
// the upload goes on. Safe for concurrent use.
func (w *Writer) Written() int64 { return w.written.Load() }

// Digest is the digest of the bytes written so far, in the writer's algorithm.
func (w *Writer) Digest() digest.Digest { return digest.NewDigest(w.alg, w.h) }

// Algorithm is the digest algorithm the writer computes as bytes arrive.
func (w *Writer) Algorithm() digest.Algorithm { return w.alg }

// Verify checks, without committing, that the bytes written so far have
// digest expected and, when size >= 0, that length.
func (w *Writer) Verify(expected digest.Digest, size int64) error {
	if err := checkDigest(expected); err != nil {
		return err
	}
	if size >= 0 && size != w.size {
		return fmt.Errorf("%w: wrote %d bytes, expected %d", ErrSizeMismatch, w.size, size)
	}
	if err := w.sticky(); err != nil {
		return err
	}
	got := w.Digest()
	if expected.Algorithm() != w.alg {
		if err := w.drain(); err != nil {
			return err
		}
		var err error
		if got, err = w.rehash(expected.Algorithm()); err != nil {
			return err
		}
	}
	if got != expected {
		return fmt.Errorf("%w: content is %s, expected %s", ErrDigestMismatch, got, expected)
	}
	return nil
}
