// Package vfsutil is what Berth's local stores (the blob file store, the
// audit log) need of a pebble vfs.FS beyond its interface: files created
// with mode 0600 and O_EXCL, a file opened for writing only if it exists,
// truncation, and whether a file system is the operating system's.
//
// On the operating system's file system (vfs.Default, or a wrapper of it
// such as internal/faultfs, which forwards to it) these keep the exact
// semantics of os.OpenFile; on another FS they come as close as its
// interface allows (an existence check before Create). The tests that
// fill or fail a disk run on internal/faultfs; production runs on
// vfs.Default.
package vfsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Create creates file name for reading and writing with mode 0600. With
// excl an existing file fails with fs.ErrExist; without, it is replaced.
//
// vfs.FS.Create replaces an existing file and creates with mode 0666 less
// the umask, so on vfs.Default the file is opened with os.OpenFile
// instead (O_EXCL, or O_TRUNC); on another FS an existing file is found
// with Stat first (callers use unique names, so the window between the
// two is never contended).
func Create(fsys vfs.FS, name string, excl bool) (vfs.File, error) {
	if fsys == vfs.Default {
		flags := os.O_RDWR | os.O_CREATE | syscall.O_CLOEXEC
		if excl {
			flags |= os.O_EXCL
		} else {
			flags |= os.O_TRUNC
		}
		f, err := os.OpenFile(name, flags, 0o600)
		if err != nil {
			return nil, err
		}
		return File{f}, nil
	}
	if excl {
		if _, err := fsys.Stat(name); err == nil {
			return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrExist}
		}
	}
	return fsys.Create(name, vfs.WriteCategoryUnspecified)
}

// OpenExisting opens existing file name for reading and writing; a
// missing file is fs.ErrNotExist and is not created (vfs.FS.OpenReadWrite
// would create it).
func OpenExisting(fsys vfs.FS, name string) (vfs.File, error) {
	if fsys == vfs.Default {
		f, err := os.OpenFile(name, os.O_RDWR|syscall.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		return File{f}, nil
	}
	if _, err := fsys.Stat(name); err != nil {
		return nil, err
	}
	return fsys.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
}

// ErrCannotTruncate: the file system's files have no Truncate method
// (pebble's vfs.MemFS is one such: use internal/faultfs over vfs.Default
// in a temporary directory instead).
var ErrCannotTruncate = fmt.Errorf("vfsutil: the file system cannot truncate files: %w", errors.ErrUnsupported)

// Truncate sets f's length to size. vfs.File has no Truncate; the
// operating system's files (and faultfs's) have one.
func Truncate(f vfs.File, size int64) error {
	t, ok := f.(interface{ Truncate(size int64) error })
	if !ok {
		return ErrCannotTruncate
	}
	return t.Truncate(size)
}

// OSBacked reports whether fsys is the operating system's file system or
// wraps it (through Unwrap): its names are the operating system's paths.
func OSBacked(fsys vfs.FS) bool {
	for f := fsys; f != nil; f = f.Unwrap() {
		if f == vfs.Default {
			return true
		}
	}
	return false
}

// File is an *os.File as a vfs.File (what Create and OpenExisting return
// on vfs.Default). Its Truncate, Fd and SyscallConn are the os.File's.
type File struct{ *os.File }

var _ vfs.File = File{}

// Preallocate implements vfs.File; it does nothing.
func (f File) Preallocate(off, n int64) error { return nil }

// Prefetch implements vfs.File; it does nothing.
func (f File) Prefetch(off, n int64) error { return nil }

// SyncData implements vfs.File: fdatasync(2) on Linux.
func (f File) SyncData() error { return syncData(f.File) }

// SyncTo implements vfs.File: a full fsync(2).
func (f File) SyncTo(length int64) (bool, error) { return true, f.File.Sync() }

// Stat implements vfs.File.
func (f File) Stat() (vfs.FileInfo, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return nil, err
	}
	return fileInfo{fi}, nil
}

// fileInfo is an os.FileInfo as a vfs.FileInfo; the device is not known.
type fileInfo struct{ os.FileInfo }

func (fileInfo) DeviceID() vfs.DeviceID { return vfs.DeviceID{} }

// MkdirAll makes directory dir and its missing parents, as os.MkdirAll
// does, and syncs the parent of each directory it made, top down: a new
// directory's name is an entry of its parent, which a crash of the
// machine loses unless the parent is synced (fsync(2) of a file does not
// make its directory's entry, or the directories above, durable). A
// directory that already existed costs a Stat and nothing else.
func MkdirAll(fsys vfs.FS, dir string, perm os.FileMode) error {
	var made []string
	for d := dir; ; {
		if _, err := fsys.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		made = append(made, d)
		parent := fsys.PathDir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if len(made) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(dir, perm); err != nil {
		return err
	}
	for i := len(made) - 1; i >= 0; i-- {
		if err := SyncDir(fsys, fsys.PathDir(made[i])); err != nil {
			return err
		}
	}
	return nil
}

// SyncDir syncs directory dir, so that the names in it survive a crash
// of the machine.
func SyncDir(fsys vfs.FS, dir string) error {
	d, err := fsys.OpenDir(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
