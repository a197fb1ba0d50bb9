//go:build !linux

package blob

import "os"

// fileIdentity names one opened file. Without Linux's inode and change
// time at hand, every open is its own file: readers of one blob do not
// share decoded frames, which costs decoding, never correctness.
type fileIdentity struct {
	open uint64
}

// identify is a fresh identity for every open.
func identify(os.FileInfo) fileIdentity { return fileIdentity{open: nextOpen()} }
