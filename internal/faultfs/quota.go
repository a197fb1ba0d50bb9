package faultfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FS is a vfs.FS with a byte quota and injectable write errors. It is safe
// for concurrent use.
type FS struct {
	vfs.FS

	mu    sync.Mutex
	limit int64
	used  int64
	sizes map[string]int64 // bytes counted per path
	fault fault            // the injected error, if any
}

// Op is a set of kinds of file operations that an injected error fails.
type Op uint8

// The kinds of operations Inject can fail.
const (
	// OpWrite: creating or opening a file for writing, Write, WriteAt,
	// and Truncate.
	OpWrite Op = 1 << iota
	// OpSync: Sync, SyncData and SyncTo.
	OpSync
	// OpRead: opening a file for reading, Read and ReadAt.
	OpRead
)

// fault is an injected error: err for the operations ops on the files
// whose path begins with prefix.
type fault struct {
	ops    Op
	prefix string
	err    error
}

var _ vfs.FS = (*FS)(nil)

// New wraps base with a quota of limit bytes.
func New(base vfs.FS, limit int64) *FS {
	return &FS{FS: base, limit: limit, sizes: map[string]int64{}}
}

// NewMem is New over an empty in-memory file system.
func NewMem(limit int64) *FS { return New(vfs.NewMem(), limit) }

// SetLimit changes the quota (freeing space, or filling it).
func (q *FS) SetLimit(limit int64) {
	q.mu.Lock()
	q.limit = limit
	q.mu.Unlock()
}

// Take counts n more bytes as used, as a file of n bytes written by
// someone else would, and returns the function that frees them.
func (q *FS) Take(n int64) (release func()) {
	q.mu.Lock()
	q.used += n
	q.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			q.mu.Lock()
			q.used -= n
			q.mu.Unlock()
		})
	}
}

// Used is the number of bytes counted.
func (q *FS) Used() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.used
}

// FailWrites makes every later write, sync and file creation fail with err
// (such as syscall.EIO) until it is called with nil: Inject(OpWrite|OpSync,
// "", err).
func (q *FS) FailWrites(err error) { q.Inject(OpWrite|OpSync, "", err) }

// Inject makes the later operations ops on files whose path begins with
// prefix ("" for every file) fail with err (such as syscall.EIO), as a
// failing disk's do, until Inject is called again (err nil: no failures).
// Files already open are affected too. Space is never counted for a
// failed write.
func (q *FS) Inject(ops Op, prefix string, err error) {
	q.mu.Lock()
	q.fault = fault{ops: ops, prefix: prefix, err: err}
	q.mu.Unlock()
}

// injected is the error operation kind on file name fails with, or nil;
// q.mu is held.
func (q *FS) injectedLocked(kind Op, op, name string) error {
	f := q.fault
	if f.err == nil || f.ops&kind == 0 || !strings.HasPrefix(name, f.prefix) {
		return nil
	}
	return &os.PathError{Op: op, Path: name, Err: f.err}
}

func (q *FS) injected(kind Op, op, name string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.injectedLocked(kind, op, name)
}

// grow counts file name growing to end bytes; past the quota it is ENOSPC
// and nothing is counted.
func (q *FS) grow(name string, end int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.injectedLocked(OpWrite, "write", name); err != nil {
		return err
	}
	have := q.sizes[name]
	if end <= have {
		return nil
	}
	if q.used+end-have > q.limit {
		return &os.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
	}
	q.used += end - have
	q.sizes[name] = end
	return nil
}

func (q *FS) forget(name string) {
	q.mu.Lock()
	q.used -= q.sizes[name]
	delete(q.sizes, name)
	q.mu.Unlock()
}

func (q *FS) move(from, to string) {
	q.mu.Lock()
	q.used -= q.sizes[to]
	delete(q.sizes, to)
	if n, ok := q.sizes[from]; ok {
		q.sizes[to] = n
		delete(q.sizes, from)
	}
	q.mu.Unlock()
}

// Create implements vfs.FS; a new file replaces the old one's bytes.
func (q *FS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if err := q.injected(OpWrite, "create", name); err != nil {
		return nil, err
	}
	f, err := q.FS.Create(name, c)
	if err != nil {
		return nil, err
	}
	q.forget(name)
	return &file{File: f, q: q, name: name}, nil
}

// OpenReadWrite implements vfs.FS.
func (q *FS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	if err := q.injected(OpWrite, "open", name); err != nil {
		return nil, err
	}
	f, err := q.FS.OpenReadWrite(name, c, opts...)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	if _, ok := q.sizes[name]; !ok {
		if fi, err := f.Stat(); err == nil {
			q.sizes[name] = fi.Size()
			q.used += fi.Size()
		}
	}
	q.mu.Unlock()
	return &file{File: f, q: q, name: name}, nil
}

// ReuseForWrite implements vfs.FS.
func (q *FS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if err := q.injected(OpWrite, "reuse", newname); err != nil {
		return nil, err
	}
	f, err := q.FS.ReuseForWrite(oldname, newname, c)
	if err != nil {
		return nil, err
	}
	q.move(oldname, newname)
	return &file{File: f, q: q, name: newname}, nil
}

// Open implements vfs.FS.
func (q *FS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	if err := q.injected(OpRead, "open", name); err != nil {
		return nil, err
	}
	f, err := q.FS.Open(name, opts...)
	if err != nil {
		return nil, err
	}
	return &file{File: f, q: q, name: name}, nil
}

// Remove implements vfs.FS.
func (q *FS) Remove(name string) error {
	if err := q.FS.Remove(name); err != nil {
		return err
	}
	q.forget(name)
	return nil
}

// RemoveAll implements vfs.FS.
func (q *FS) RemoveAll(name string) error {
	if err := q.FS.RemoveAll(name); err != nil {
		return err
	}
	q.mu.Lock()
	prefix := name + string(os.PathSeparator)
	for p, n := range q.sizes {
		if p == name || len(p) > len(prefix) && p[:len(prefix)] == prefix {
			q.used -= n
			delete(q.sizes, p)
		}
	}
	q.mu.Unlock()
	return nil
}

// Rename implements vfs.FS.
func (q *FS) Rename(oldname, newname string) error {
	if err := q.FS.Rename(oldname, newname); err != nil {
		return err
	}
	q.move(oldname, newname)
	return nil
}

// GetDiskUsage implements vfs.FS: the quota, and what is counted.
func (q *FS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	avail := max(q.limit-q.used, 0)
	return vfs.DiskUsage{AvailBytes: uint64(avail), TotalBytes: uint64(q.limit), UsedBytes: uint64(q.used)}, nil
}

// Unwrap implements vfs.FS.
func (q *FS) Unwrap() vfs.FS { return q.FS }

// file counts its writes against its FS's quota.
type file struct {
	vfs.File
	q    *FS
	name string

	mu  sync.Mutex
	off int64 // sequential write position
}

func (f *file) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.q.grow(f.name, f.off+int64(len(p))); err != nil {
		return 0, err
	}
	n, err := f.File.Write(p)
	f.off += int64(n)
	return n, err
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if err := f.q.grow(f.name, off+int64(len(p))); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *file) Read(p []byte) (int, error) {
	if err := f.q.injected(OpRead, "read", f.name); err != nil {
		return 0, err
	}
	return f.File.Read(p)
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if err := f.q.injected(OpRead, "read", f.name); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

// Truncate cuts or extends the file, if the file below can (the
// operating system's files can; vfs.MemFS's cannot: ErrCannotTruncate):
// a cut frees the bytes past size, an extension counts them.
func (f *file) Truncate(size int64) error {
	t, ok := f.File.(interface{ Truncate(int64) error })
	if !ok {
		return &os.PathError{Op: "truncate", Path: f.name, Err: ErrCannotTruncate}
	}
	q := f.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.injectedLocked(OpWrite, "truncate", f.name); err != nil {
		return err
	}
	have := q.sizes[f.name]
	if size > have && q.used+size-have > q.limit {
		return &os.PathError{Op: "truncate", Path: f.name, Err: syscall.ENOSPC}
	}
	if err := t.Truncate(size); err != nil {
		return err
	}
	q.used += size - have
	q.sizes[f.name] = size
	return nil
}

// ErrCannotTruncate: the file below a faultfs file has no Truncate.
var ErrCannotTruncate = errors.New("faultfs: the file system below cannot truncate files")

func (f *file) Preallocate(off, n int64) error { return nil }

func (f *file) Sync() error {
	if err := f.q.injected(OpSync, "sync", f.name); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *file) SyncData() error {
	if err := f.q.injected(OpSync, "sync", f.name); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *file) SyncTo(length int64) (bool, error) {
	if err := f.q.injected(OpSync, "sync", f.name); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}

var _ io.WriterAt = (*file)(nil)

// String names the file system in test logs.
func (q *FS) String() string {
	return fmt.Sprintf("faultfs(%d of %d bytes)", q.Used(), q.limit)
}
