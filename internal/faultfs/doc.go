// Package faultfs is a file system for tests of what happens when the disk
// fills up or fails: a pebble vfs.FS wrapper with a byte quota (a write
// past it fails with ENOSPC, as a full disk's does, and GetDiskUsage
// reports the quota) and injectable I/O errors. It replaces a small tmpfs
// mounted by root: the tests that use it run as any user, in memory or in
// a temporary directory.
//
// Usage is counted from the bytes written through the wrapper (a file's
// size is its largest written offset); removing or truncating-by-recreate
// frees them. Hard links count once.
package faultfs
