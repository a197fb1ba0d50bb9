// Package crashfs is an in-memory vfs.FS that can lose power: CrashClone
// returns the file system as a machine would find it after a power cut at
// that moment, holding what was synced (file data by Sync or SyncData,
// directory entries by a Sync of their directory) and, if asked, a random
// part of what was not.
//
// It is pebble's crashable MemFS (vfs.NewCrashableMem) with one addition:
// files truncate, which the blob store and the audit log need and
// pebble's vfs.File lacks. The power-loss tests of the engine run the
// index, the blob files and the audit log on it (docs/crash-safety.md).
package crashfs
