package index

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Disk-full protection has two layers (see docs/keys.md, "Disk full"):
//
//  1. Commit checks the free space first and refuses with ErrNoSpace when a
//     commit would eat into Options.MinFreeBytes; pebble is not touched.
//  2. A ballast file (Options.BallastSize) sits in the store directory. pebble
//     runs on vfs.OnDiskFull: when any pebble write (WAL, sstable, MANIFEST)
//     still hits ENOSPC, for example because a flush or compaction consumed
//     the reserve between the check and the WAL write, the ballast is
//     deleted and the write retried once, so pebble does not see the error.
//     While the ballast is gone, commits are refused with ErrNoSpace until
//     the file system again has room for the reserve and a new ballast.
//
// Only when both are exhausted does pebble see ENOSPC; it treats a failed WAL
// write as fatal (see pebbleLogger.Fatalf) and the DB needs a reopen.

// ballastName is the ballast file's name in the store directory; pebble
// ignores files whose names it does not know.
const ballastName = "BERTH-BALLAST"

func (db *DB) ballastPath() string { return db.base.PathJoin(db.dir, ballastName) }

// ballastSize returns the ballast size for a file system of total bytes.
func (db *DB) ballastSize(total uint64) int64 {
	if db.opts.BallastSize != 0 {
		return max(db.opts.BallastSize, 0)
	}
	return min(int64(16<<20), int64(total/16))
}

// onDiskFull runs inside pebble's vfs.OnDiskFull when a write hit ENOSPC:
// it deletes the ballast so that the write's retry succeeds.
func (db *DB) onDiskFull() {
	db.ballastGone.Store(true)
	err := db.base.Remove(db.ballastPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		db.log.Error("disk full: cannot delete ballast", "err", err)
		return
	}
	db.log.Warn("disk full: ballast released, commits refused until space is freed", "dir", db.dir)
}

// ensureBallast creates (or completes) the ballast when the file system has
// room for it on top of the reserve. It reports whether the ballast is in
// place.
func (db *DB) ensureBallast() bool {
	if db.opts.InMemory {
		return true
	}
	du, err := db.fs.GetDiskUsage(db.dir)
	if err != nil {
		return true // unknown: do not block commits on it
	}
	size := db.ballastSize(du.TotalBytes)
	if size == 0 {
		return true
	}
	var have int64
	if fi, err := db.base.Stat(db.ballastPath()); err == nil {
		have = fi.Size()
	}
	if have >= size {
		return true
	}
	if int64(du.AvailBytes)-(size-have) < db.minFree(du.TotalBytes) {
		return false
	}
	if err := writeBallast(db.base, db.ballastPath(), have, size); err != nil {
		db.log.Warn("cannot create ballast", "err", err)
		_ = db.base.Remove(db.ballastPath())
		return false
	}
	db.log.Debug("ballast in place", "bytes", size)
	return true
}

// writeBallast extends the file at path from have to size bytes of zeros,
// written (not sparse) and synced, so that the blocks are really allocated.
func writeBallast(fsys vfs.FS, path string, have, size int64) error {
	f, err := fsys.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("ballast: %w", err)
	}
	buf := make([]byte, min(size-have, 1<<20))
	for off := have; off < size; {
		n := min(int64(len(buf)), size-off)
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			_ = f.Close()
			return fmt.Errorf("ballast: %w", err)
		}
		off += n
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("ballast: %w", err)
	}
	return f.Close()
}

// checkOpenSpace refuses to open a store whose write-ahead logs could not be
// flushed: on Open pebble replays the WALs into memtables and flushes them
// before returning, and when that flush hits ENOSPC it retries forever, so
// Open would hang. The check is conservative (every *.log file counts, also
// recycled ones).
func (db *DB) checkOpenSpace() error {
	names, err := db.fs.List(db.dir)
	if err != nil {
		return nil // new store, or unreadable: pebble reports it
	}
	var wal int64
	for _, name := range names {
		if filepath.Ext(name) != ".log" {
			continue
		}
		if fi, err := db.fs.Stat(db.fs.PathJoin(db.dir, name)); err == nil && fi.Mode().IsRegular() {
			wal += fi.Size()
		}
	}
	if wal == 0 {
		return nil
	}
	du, err := db.fs.GetDiskUsage(db.dir)
	if err != nil {
		return nil
	}
	if need := wal + wal/8 + 1<<20; int64(du.AvailBytes) < need {
		return fmt.Errorf("index: open %s: %d bytes of WAL to flush, %d bytes free: %w",
			db.dir, wal, du.AvailBytes, ErrNoSpace)
	}
	return nil
}
