//go:build linux

package audit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/testenv"
)

// mountTmpfs mounts a tmpfs of size (such as "1m") for the test.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	testenv.NeedRoot(t, "mounting a small tmpfs to fill")
	testenv.NeedTool(t, "mount")
	dir := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(dir, 0o700))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, "a tmpfs mount (mount -t tmpfs): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestDiskFull: on a full disk an append fails with ErrWrite (wrapping
// ENOSPC), keeps no part of its record, the log says it is unhealthy and
// every acknowledged record still reads; once space is freed, appends
// succeed again and the log is healthy.
func TestDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, "1m")
	dir := filepath.Join(mnt, "audit")
	var logged lockedBuffer
	l, err := Open(dir, &Options{SegmentBytes: 64 << 10, MaxBytes: 64 << 20, Logger: slogTo(&logged)})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })

	// Leave about 20 KiB free.
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(mnt, &st))
	free := int64(st.Bavail) * st.Bsize
	ballast := filepath.Join(mnt, "ballast")
	require.NoError(t, os.WriteFile(ballast, make([]byte, free-20<<10), 0o600))

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
	require.NoError(t, os.Remove(ballast))
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
	l, err = Open(dir, &Options{SegmentBytes: 64 << 10, MaxBytes: 64 << 20, Logger: slogTo(&logged)})
	require.NoError(t, err)
	require.Zero(t, l.Status().DroppedAtOpen)
	checkAll(acked)
}
