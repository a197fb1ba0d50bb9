//go:build !linux

package blob

import (
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

const writebackEvery = 8 << 20

// startWriteback does nothing where sync_file_range does not exist.
func startWriteback(f vfs.File, off, n int64) {}

// willNeed does nothing where posix_fadvise does not exist.
func willNeed(f syscall.Conn, off, n int64) {}
