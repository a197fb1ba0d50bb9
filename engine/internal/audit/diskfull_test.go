package audit

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/faultfs"
)

// smallDisk is a file system of size bytes over a temporary directory
// (internal/faultfs: writes past it fail with ENOSPC, no root, no tmpfs),
// and a directory in it.
func smallDisk(t *testing.T, size int64) (*faultfs.FS, string) {
	t.Helper()
	return faultfs.New(vfs.Default, size), filepath.Join(t.TempDir(), "audit")
}

// TestDiskFull: on a full disk an append fails with ErrWrite (wrapping
// ENOSPC), keeps no part of its record, the log says it is unhealthy and
// every acknowledged record still reads; once space is freed, appends
// succeed again and the log is healthy.
func TestDiskFull(t *testing.T) {
	disk, dir := smallDisk(t, 1<<20)
	var logged lockedBuffer
	l, err := Open(dir, &Options{SegmentBytes: 64 << 10, MaxBytes: 64 << 20, Logger: slogTo(&logged), FS: disk})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })

	// Leave about 20 KiB free.
	release := disk.Take(1<<20 - disk.Used() - 20<<10)

	var acked []string
	var failure error
	for i := 0; i < 1000 && failure == nil; i++ {
		r := sample(i, "app")
		r.EventID = NewEventID()
		if err := l.Append(r, i%3 == 0); err != nil {
			failure = err
			break
		}
		acked = append(acked, r.EventID)
	}
	require.Error(t, failure, "the disk never filled")
	require.ErrorIs(t, failure, ErrWrite)
	require.ErrorIs(t, failure, syscall.ENOSPC)
	require.NotEmpty(t, acked)

	status := l.Status()
	require.False(t, status.Healthy)
	require.ErrorIs(t, status.LastError, syscall.ENOSPC)
	require.False(t, status.LastErrorTime.IsZero())
	require.Contains(t, logged.String(), "cannot write")
	// Still full: a second append fails as well, durable or not.
	require.ErrorIs(t, l.Append(sample(0, "app"), false), ErrWrite)
	require.ErrorIs(t, l.Append(sample(0, "app"), true), ErrWrite)

	// Every acknowledged record reads, and no line is damaged.
	checkAll := func(want []string) {
		t.Helper()
		got := map[string]bool{}
		require.NoError(t, l.Records(context.Background(), Query{}, func(r Record) error {
			got[r.EventID] = true
			return nil
		}))
		require.Len(t, got, len(want))
		for _, id := range want {
			require.True(t, got[id], "acknowledged record %s lost", id)
		}
		require.NotContains(t, logged.String(), "not records")
	}
	checkAll(acked)

	// Space again: the next append succeeds and the log is healthy.
	release()
	r := sample(5000, "app")
	r.EventID = NewEventID()
	require.NoError(t, l.Append(r, true))
	acked = append(acked, r.EventID)
	require.True(t, l.Status().Healthy)
	require.Contains(t, logged.String(), "writes again")
	checkAll(acked)

	// And after a reopen, nothing was cut at open: the failed writes left
	// no torn line.
	require.NoError(t, l.Close())
	l, err = Open(dir, &Options{SegmentBytes: 64 << 10, MaxBytes: 64 << 20, Logger: slogTo(&logged), FS: disk})
	require.NoError(t, err)
	require.Zero(t, l.Status().DroppedAtOpen)
	checkAll(acked)
}

// TestIOError fails the log's disk with EIO, on writes and then on
// syncs: the append fails with ErrWrite wrapping EIO, the log is
// unhealthy and every acknowledged record reads (a record whose write
// failed is not there; one whose sync failed may be: it was written, but
// not acknowledged); once the disk works, appends go to a new segment, the log is
// healthy, and a reopen finds every acknowledged record and no torn line.
func TestIOError(t *testing.T) {
	disk, dir := smallDisk(t, 64<<20)
	var logged lockedBuffer
	opts := &Options{SegmentBytes: 64 << 10, MaxBytes: 64 << 20, Logger: slogTo(&logged), FS: disk}
	l, err := Open(dir, opts)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	var acked []string
	maybe := map[string]bool{} // written, not acknowledged: the sync failed
	var last string
	appendOne := func(i int, durable bool) error {
		r := sample(i, "app")
		r.EventID = NewEventID()
		last = r.EventID
		err := l.Append(r, durable)
		if err == nil {
			acked = append(acked, r.EventID)
		}
		return err
	}
	checkAll := func() {
		t.Helper()
		got := map[string]bool{}
		require.NoError(t, l.Records(context.Background(), Query{}, func(r Record) error {
			got[r.EventID] = true
			return nil
		}))
		for _, id := range acked {
			require.True(t, got[id], "acknowledged record %s lost", id)
			delete(got, id)
		}
		for id := range got {
			require.True(t, maybe[id], "record %s was never appended, or its write failed", id)
		}
		require.NotContains(t, logged.String(), "not records")
	}
	for i := range 10 {
		require.NoError(t, appendOne(i, i%2 == 0))
	}

	for _, ops := range []faultfs.Op{faultfs.OpWrite, faultfs.OpSync} {
		disk.Inject(ops, dir, syscall.EIO)
		err := appendOne(100, true)
		require.ErrorIs(t, err, ErrWrite)
		require.ErrorIs(t, err, syscall.EIO)
		require.False(t, l.Status().Healthy)
		if ops == faultfs.OpSync {
			maybe[last] = true
		}
		disk.Inject(0, "", nil)
		checkAll()
		require.NoError(t, appendOne(200, true), "appends succeed once the disk works")
		require.True(t, l.Status().Healthy)
		checkAll()
	}
	require.Contains(t, logged.String(), "cannot write")
	require.Contains(t, logged.String(), "writes again")

	require.NoError(t, l.Close())
	l, err = Open(dir, opts)
	require.NoError(t, err)
	require.Zero(t, l.Status().DroppedAtOpen)
	checkAll()
}
