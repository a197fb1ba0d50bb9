package blob

import (
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"
)

// writebackEvery is how many bytes a writer lets accumulate in the page
// cache before it asks the kernel to start writing them out.
const writebackEvery = 8 << 20

// startWriteback asks the kernel to start writing a file range out,
// without waiting (sync_file_range SYNC_FILE_RANGE_WRITE). It is a hint:
// durability still comes from Commit's fsync. A file without a
// descriptor (not the operating system's) gets no hint.
func startWriteback(f vfs.File, off, n int64) {
	if fd := f.Fd(); fd != vfs.InvalidFd {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	}
}

// willNeed asks the kernel to start reading a file range into the page
// cache, without waiting (posix_fadvise POSIX_FADV_WILLNEED). The kernel
// reads at most the device's read-ahead size per call and drops the
// rest, so the range goes in pieces of willNeedStep. It is safe against
// a concurrent Close of f (it then does nothing).
func willNeed(f syscall.Conn, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		for n > 0 {
			step := min(n, willNeedStep)
			_ = unix.Fadvise(int(fd), off, step, unix.FADV_WILLNEED)
			off, n = off+step, n-step
		}
	})
}

// willNeedStep is the most one posix_fadvise call asks for: below the
// read-ahead size of any usual block device (128 KiB is the smallest
// default; larger pieces are cut there, smaller ones cost more calls).
const willNeedStep = 512 << 10
