package blob

import (
	"context"
	_ "crypto/sha256" // register the hashes go-digest verifies
	_ "crypto/sha512"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/internal/vfsutil"
)

// Options configure a Store. Zero values take the defaults noted.
type Options struct {
	// FrameSize is the logical bytes per frame of new blobs. Default 1 MiB;
	// between MinFrameSize and MaxFrameSize.
	FrameSize int
	// DisableCompression stores every frame raw. Default false: zstd
	// where it pays.
	DisableCompression bool
	// Level is the zstd level of new frames. Default LevelFastest.
	Level Level
	// Encoders is the number of goroutines that compress and seal frames,
	// shared by all writers. Default GOMAXPROCS.
	Encoders int
	// InFlight bounds the frames one writer has queued for encoding and
	// writing (memory per writer ≈ 2 × InFlight × FrameSize). Default 4.
	InFlight int
	// SharedFrames is the number of decoded frames kept for sequential
	// readers to share (concurrent pulls of one blob decode each frame
	// once). Default 16; negative disables sharing.
	SharedFrames int
	// StoreInFlight bounds the frames all writers of the store have
	// queued together, so memory stays flat however many uploads run at
	// once (writers wait for a slot). Default 4 × Encoders.
	StoreInFlight int
	// NoSync: the store's files need not survive a crash of the machine
	// (a spool whose bytes are made durable elsewhere, as the object
	// store backend's): writers neither fsync nor start writeback early,
	// so a file removed soon after it is written may never reach the
	// disk. Default false: every commit and checkpoint is durable.
	NoSync bool
	// FS is the file system the store's files are on: every file it
	// creates, writes, syncs, renames, lists, reads and removes goes
	// through it (files.go). Default vfs.Default, the operating system's.
	// Tests give internal/faultfs to fill the disk or fail it.
	FS vfs.FS
}

func (o *Options) ensureDefaults() {
	if o.FrameSize == 0 {
		o.FrameSize = 1 << 20
	}
	if o.Encoders <= 0 {
		o.Encoders = runtime.GOMAXPROCS(0)
	}
	if o.InFlight <= 0 {
		o.InFlight = 4
	}
	if o.StoreInFlight <= 0 {
		o.StoreInFlight = 4 * o.Encoders
	}
	if o.SharedFrames == 0 {
		o.SharedFrames = 16
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
}

func (o *Options) validate() error {
	if o.FrameSize < MinFrameSize || o.FrameSize > MaxFrameSize {
		return fmt.Errorf("blob: frame size %d outside [%d, %d]", o.FrameSize, MinFrameSize, MaxFrameSize)
	}
	if o.Level < LevelFastest || o.Level > LevelBest {
		return fmt.Errorf("blob: compression level %d outside [%d, %d]", o.Level, LevelFastest, LevelBest)
	}
	return nil
}

// Store is a directory of blob files:
//
//	<dir>/blobs/<alg>/<first two hex>/<hex>   committed blobs
//	<dir>/uploads/<id>.part                   writers in progress (complete frames)
//	<dir>/uploads/<id>.tail0, <id>.tail1      their checkpointed partial frame (see WriterState.TailSlot)
//
// It is safe for concurrent use. Writers to the same digest must be
// serialised by the caller around Commit (the engine holds a lock per digest).
type Store struct {
	dir    string
	opts   Options
	fs     vfs.FS
	pool   *encoderPool
	frames chan struct{} // one token per frame queued by any writer
	shared *frameCache   // decoded frames shared by sequential readers; nil: off

	mu   sync.Mutex
	dirs map[string]bool // fan-out directories known to exist
}

// Open opens the store in dir, creating its directories if needed.
func Open(dir string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.ensureDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	for _, d := range []string{"blobs", "uploads"} {
		if err := vfsutil.MkdirAll(o.FS, filepath.Join(dir, d), 0o700); err != nil {
			return nil, wrapIOErr(fmt.Errorf("blob: %w", err))
		}
	}
	s := &Store{dir: dir, opts: o, fs: o.FS, pool: newEncoderPool(o.Encoders), frames: make(chan struct{}, o.StoreInFlight), dirs: map[string]bool{}}
	if o.SharedFrames > 0 {
		s.shared = newFrameCache(o.SharedFrames)
	}
	return s, nil
}

// Close stops the store's encoders. Writers must be finished first.
func (s *Store) Close() error {
	s.pool.close()
	return nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// FrameSize is the frame size of new blobs.
func (s *Store) FrameSize() int { return s.opts.FrameSize }

// Path is the file that holds blob d (whether or not it exists).
func (s *Store) Path(d digest.Digest) (string, error) {
	if err := checkDigest(d); err != nil {
		return "", err
	}
	hex := d.Encoded()
	return filepath.Join(s.dir, "blobs", string(d.Algorithm()), hex[:2], hex), nil
}

// CheckDigest refuses, with ErrUnsupportedDigest, a digest that no
// backend can name a blob by.
func CheckDigest(d digest.Digest) error { return checkDigest(d) }

// checkDigest refuses a digest this store cannot name a file by. Validate
// comes first: Algorithm panics on a string with no separator.
func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrUnsupportedDigest, d, err)
	}
	_, err := algByte(d.Algorithm())
	return err
}

func (s *Store) uploadPath(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, "/\\\x00") || id == "." || id == ".." {
		return "", fmt.Errorf("%w: upload id %q", ErrBadState, id)
	}
	return filepath.Join(s.dir, "uploads", id+".part"), nil
}

func (s *Store) ensureDir(d string) error {
	s.mu.Lock()
	ok := s.dirs[d]
	s.mu.Unlock()
	if ok {
		return nil
	}
	// Synced up to the first directory that existed: the blob renamed
	// into d is durable only if d's name, and its parent's, are.
	if err := vfsutil.MkdirAll(s.fs, d, 0o700); err != nil {
		return wrapIOErr(fmt.Errorf("blob: %w", err))
	}
	s.mu.Lock()
	s.dirs[d] = true
	s.mu.Unlock()
	return nil
}

// Info describes a stored blob.
type Info struct {
	Digest digest.Digest
	// Size is the logical (pushed) length.
	Size int64
	// StoredSize is the file's length on disk.
	StoredSize int64
	// Sealed tells whether the frames are encrypted.
	Sealed bool
	// FileID is the file's random identifier (bound into every frame).
	FileID [16]byte
	// ModTime is when the stored blob was last written (its commit). A
	// collector spares blobs younger than its grace period by it.
	ModTime time.Time
}

// Stat describes blob d from its file's header. The header is checked
// structurally only (its fields, and the file's length against its
// table); its MAC is checked when the blob is opened with its key. A
// file whose header is damaged is ErrCorrupt, with the Info's Digest,
// StoredSize and ModTime still set (a collector can age it).
func (s *Store) Stat(ctx context.Context, d digest.Digest) (Info, error) {
	p, err := s.Path(d)
	if err != nil {
		return Info{}, err
	}
	f, err := s.fs.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Info{}, fmt.Errorf("%w: %s", ErrNotFound, d)
		}
		return Info{}, fmt.Errorf("blob %s: %w", d, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, fmt.Errorf("blob %s: %w", d, err)
	}
	b := make([]byte, headerSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		return Info{Digest: d, StoredSize: st.Size(), ModTime: st.ModTime()}, fmt.Errorf("%w: %s: reading header: %v", ErrCorrupt, d, err)
	}
	return InfoFromHeader(d, b, st.Size(), st.ModTime())
}

// HeaderSize is the length of a stored blob's header: what InfoFromHeader
// needs.
const HeaderSize = headerSize

// InfoFromHeader describes blob d from the first HeaderSize bytes of its
// stored form, of length storedSize, written at modTime: Stat's work for
// a backend that reads the header itself. The header is checked
// structurally only; a damaged one is ErrCorrupt, with the Info's Digest,
// StoredSize and ModTime still set.
func InfoFromHeader(d digest.Digest, hb []byte, storedSize int64, modTime time.Time) (Info, error) {
	damaged := Info{Digest: d, StoredSize: storedSize, ModTime: modTime}
	if len(hb) < headerSize {
		return damaged, fmt.Errorf("%w: %s: short header", ErrCorrupt, d)
	}
	h, err := decodeHeader(hb[:headerSize])
	if err == nil {
		err = h.checkLength(storedSize)
	}
	if err != nil {
		return damaged, fmt.Errorf("blob %s: %w", d, err)
	}
	return Info{Digest: d, Size: int64(h.size), StoredSize: storedSize, Sealed: h.sealed(), FileID: h.fileID, ModTime: modTime}, nil
}

// Delete removes blob d's file. Deleting a missing blob is ErrNotFound.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	p, err := s.Path(d)
	if err != nil {
		return err
	}
	if err := s.fs.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrNotFound, d)
		}
		return fmt.Errorf("blob %s: %w", d, err)
	}
	s.syncDir(filepath.Dir(p))
	return nil
}

// Walk calls fn for every committed blob file, in lexical order of
// algorithm and digest. Files whose names are not digests are skipped.
// fn's error stops the walk.
func (s *Store) Walk(ctx context.Context, fn func(d digest.Digest, storedSize int64) error) error {
	root := filepath.Join(s.dir, "blobs")
	algs, err := s.listDir(root, true)
	if err != nil {
		return err
	}
	for _, alg := range algs {
		fans, err := s.listDir(filepath.Join(root, alg), false)
		if err != nil {
			return err
		}
		for _, fan := range fans {
			dir := filepath.Join(root, alg, fan)
			names, err := s.listDir(dir, false)
			if err != nil {
				return err
			}
			for _, name := range names {
				if err := ctx.Err(); err != nil {
					return err
				}
				d := digest.NewDigestFromEncoded(digest.Algorithm(alg), name)
				if checkDigest(d) != nil || fan != name[:2] {
					continue
				}
				info, err := s.fs.Stat(filepath.Join(dir, name))
				if err != nil || !info.Mode().IsRegular() {
					continue // removed meanwhile, or not a blob file
				}
				if err := fn(d, info.Size()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// listDir lists directory dir in lexical order: nothing for a directory
// removed meanwhile or a file that is not a directory, unless it is the
// root (must), whose absence is an error.
func (s *Store) listDir(dir string, must bool) ([]string, error) {
	names, err := s.fs.List(dir)
	if err != nil {
		if !must && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
			return nil, nil
		}
		return nil, fmt.Errorf("blob: %w", err)
	}
	slices.Sort(names)
	return names, nil
}

// Uploads lists the ids of writers whose temporary files exist.
func (s *Store) Uploads(ctx context.Context) ([]string, error) {
	names, err := s.listDir(filepath.Join(s.dir, "uploads"), true)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, name := range names {
		if id, ok := strings.CutSuffix(name, ".part"); ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// UploadModTime is when upload id's temporary file was last written;
// ErrNotFound when it has none.
func (s *Store) UploadModTime(ctx context.Context, id string) (time.Time, error) {
	p, err := s.uploadPath(id)
	if err != nil {
		return time.Time{}, err
	}
	st, err := s.fs.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return time.Time{}, fmt.Errorf("%w: upload %s", ErrNotFound, id)
		}
		return time.Time{}, fmt.Errorf("blob: upload %s: %w", id, err)
	}
	return st.ModTime(), nil
}

// RemoveUpload deletes the temporary files of upload id, if any.
func (s *Store) RemoveUpload(id string) error {
	p, err := s.uploadPath(id)
	if err != nil {
		return err
	}
	s.removeTails(p)
	if err := s.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: %w", err)
	}
	return nil
}

// wrapIOErr marks ENOSPC and EDQUOT as ErrNoSpace, keeping the cause.
func wrapIOErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}
