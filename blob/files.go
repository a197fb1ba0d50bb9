package blob

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// The store's file system: every file operation of a Store goes through
// Options.FS (pebble's vfs.FS, the seam the index uses too), so that tests
// run the store on internal/faultfs (a full disk, a failing one) without
// root or a tmpfs. What vfs.FS lacks is handled here:
//
//   - Creating a file that must not exist (an upload's file: O_EXCL) and
//     with mode 0600: vfs.FS.Create removes an existing file and creates
//     with 0666 less the umask. On the operating system's file system
//     (vfs.Default) the store opens such files itself with os.OpenFile,
//     exactly as before; on any other FS it checks with Stat that the
//     name is free, then creates (callers use unique upload ids, so the
//     window between the two is never contended).
//   - Opening a file for writing that must exist (a resumed upload):
//     vfs.FS.OpenReadWrite creates a missing file, so the store checks
//     with Stat first on a FS other than vfs.Default.
//   - Truncating: vfs.File has no Truncate. The operating system's files
//     (and faultfs's over them) have one, found by a type assertion; a FS
//     whose files cannot be truncated fails the writes that need it with
//     errors.ErrUnsupported (pebble's in-memory vfs.MemFS is one: run the
//     store on faultfs over vfs.Default in a temporary directory).
//   - Kernel hints (sync_file_range after every 8 MiB written, fadvise
//     WILLNEED ahead of a sequential reader) are given through the file's
//     descriptor when it has one (File.Fd, syscall.Conn) and skipped
//     otherwise: they are hints, never needed for correctness.

// createFile creates file p for reading and writing, mode 0600. With
// excl, an existing file fails with fs.ErrExist; without, it is replaced.
func (s *Store) createFile(p string, excl bool) (vfs.File, error) {
	if s.osFS {
		flags := os.O_RDWR | os.O_CREATE | syscall.O_CLOEXEC
		if excl {
			flags |= os.O_EXCL
		} else {
			flags |= os.O_TRUNC
		}
		f, err := os.OpenFile(p, flags, 0o600)
		if err != nil {
			return nil, err
		}
		return osFile{f}, nil
	}
	if excl {
		if _, err := s.fs.Stat(p); err == nil {
			return nil, &fs.PathError{Op: "create", Path: p, Err: fs.ErrExist}
		}
	}
	return s.fs.Create(p, vfs.WriteCategoryUnspecified)
}

// openExisting opens existing file p for reading and writing; a missing
// file is fs.ErrNotExist (never created).
func (s *Store) openExisting(p string) (vfs.File, error) {
	if s.osFS {
		f, err := os.OpenFile(p, os.O_RDWR|syscall.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		return osFile{f}, nil
	}
	if _, err := s.fs.Stat(p); err != nil {
		return nil, err
	}
	return s.fs.OpenReadWrite(p, vfs.WriteCategoryUnspecified)
}

// syncDir fsyncs directory dir, so that the names in it survive a crash
// of the machine. A failure is not reported: the callers have already
// synced the file itself, and a directory that cannot be opened is not
// one that a rename just wrote to.
func (s *Store) syncDir(dir string) {
	if d, err := s.fs.OpenDir(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// truncater is a file that can be cut or extended to a length: the
// operating system's files, and faultfs's.
type truncater interface{ Truncate(size int64) error }

// truncate sets f's length to size.
func truncate(f vfs.File, size int64) error {
	t, ok := f.(truncater)
	if !ok {
		return fmt.Errorf("blob: the file system cannot truncate files: %w", errors.ErrUnsupported)
	}
	return t.Truncate(size)
}

// osFile is an *os.File as a vfs.File: the files the store opens itself
// on the operating system's file system (see createFile).
type osFile struct{ *os.File }

var _ vfs.File = osFile{}

func (f osFile) Preallocate(off, n int64) error    { return nil }
func (f osFile) Prefetch(off, n int64) error       { return nil }
func (f osFile) SyncData() error                   { return f.File.Sync() }
func (f osFile) SyncTo(length int64) (bool, error) { return true, f.File.Sync() }
func (f osFile) Stat() (vfs.FileInfo, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return nil, err
	}
	return osFileInfo{fi}, nil
}

// osFileInfo is an os.FileInfo as a vfs.FileInfo; the store never asks
// for the device.
type osFileInfo struct{ os.FileInfo }

func (osFileInfo) DeviceID() vfs.DeviceID { return vfs.DeviceID{} }
