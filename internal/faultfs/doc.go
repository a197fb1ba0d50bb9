// Package faultfs is a file system for tests of what happens when the disk
// fills up or fails: a pebble vfs.FS wrapper with a byte quota (a write
// past it fails with ENOSPC, as a full disk's does, and GetDiskUsage
// reports the quota) and injectable I/O errors. It replaces a small tmpfs
// mounted by root: the tests that use it run as any user, in memory or in
// a temporary directory.
//
// Usage is counted from the bytes written through the wrapper (a file's
// size is its largest written offset, or what Truncate set); removing,
// renaming over or recreating a file frees them. Hard links count once.
//
// Inject fails chosen kinds of operations (writes, syncs, reads) on the
// files under a path with a chosen error, such as EIO, or ENOSPC for one
// volume among several. docs/crash-safety.md lists the tests that use it.
package faultfs
