//go:build !linux

package vfsutil

import "os"

// syncData is fsync where fdatasync is not at hand.
func syncData(f *os.File) error { return f.Sync() }
