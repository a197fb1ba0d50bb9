//go:build !linux

package blob

import "os"

const writebackEvery = 8 << 20

// startWriteback does nothing where sync_file_range does not exist.
func startWriteback(f *os.File, off, n int64) {}

// willNeed does nothing where posix_fadvise does not exist.
func willNeed(f *os.File, off, n int64) {}
