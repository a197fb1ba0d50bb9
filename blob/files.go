package blob

import (
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/berthstore/berth/internal/vfsutil"
)

// The store's file system: every file operation of a Store goes through
// Options.FS (pebble's vfs.FS, the seam the index uses too), so that tests
// run the store on internal/faultfs (a full disk, a failing one) without
// root or a tmpfs. What vfs.FS lacks is handled here:
//
//   - Creating a file that must not exist (an upload's file: O_EXCL) and
//     with mode 0600, opening for writing a file that must exist (a
//     resumed upload), and truncating (vfs.File has no Truncate):
//     internal/vfsutil, which keeps os.OpenFile's exact semantics on
//     vfs.Default. A FS whose files cannot be truncated fails the writes
//     that need it with errors.ErrUnsupported (pebble's in-memory
//     vfs.MemFS is one: run the store on faultfs over vfs.Default in a
//     temporary directory).
//   - Kernel hints (sync_file_range after every 8 MiB written, fadvise
//     WILLNEED ahead of a sequential reader) are given through the file's
//     descriptor when it has one (File.Fd, syscall.Conn) and skipped
//     otherwise: they are hints, never needed for correctness.

// createFile creates file p for reading and writing, mode 0600. With
// excl, an existing file fails with fs.ErrExist; without, it is replaced.
func (s *Store) createFile(p string, excl bool) (vfs.File, error) {
	return vfsutil.Create(s.fs, p, excl)
}

// openExisting opens existing file p for reading and writing; a missing
// file is fs.ErrNotExist (never created).
func (s *Store) openExisting(p string) (vfs.File, error) {
	return vfsutil.OpenExisting(s.fs, p)
}

// syncDir fsyncs directory dir, so that the names in it survive a crash
// of the machine. A failure is not reported: the callers have already
// synced the file itself, and a directory that cannot be opened is not
// one that a rename just wrote to.
func (s *Store) syncDir(dir string) { _ = vfsutil.SyncDir(s.fs, dir) }

// truncate sets f's length to size.
func truncate(f vfs.File, size int64) error { return vfsutil.Truncate(f, size) }
