package faultfs

import (
	"errors"
	"io"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// bases are the file systems faultfs is used over: in memory, and the
// operating system's in a temporary directory.
func bases(t *testing.T) map[string]func() (vfs.FS, string) {
	return map[string]func() (vfs.FS, string){
		"mem": func() (vfs.FS, string) { return vfs.NewMem(), "/" },
		"os":  func() (vfs.FS, string) { return vfs.Default, t.TempDir() },
	}
}

func writeFile(t *testing.T, q *FS, name string, n int) error {
	t.Helper()
	f, err := q.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(make([]byte, n))
	return err
}

// TestQuota: writes count until the quota, past it they fail with ENOSPC
// and count nothing; removing, renaming over, and recreating a file free
// its bytes; SetLimit and Take move the quota; GetDiskUsage reports it.
func TestQuota(t *testing.T) {
	for name, base := range bases(t) {
		t.Run(name, func(t *testing.T) {
			fs, dir := base()
			q := New(fs, 100)
			a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
			require.NoError(t, writeFile(t, q, a, 60))
			require.EqualValues(t, 60, q.Used())
			err := writeFile(t, q, b, 50)
			require.ErrorIs(t, err, syscall.ENOSPC)
			require.EqualValues(t, 60, q.Used(), "a failed write counts nothing")
			du, err := q.GetDiskUsage(dir)
			require.NoError(t, err)
			require.Equal(t, vfs.DiskUsage{AvailBytes: 40, TotalBytes: 100, UsedBytes: 60}, du)

			require.NoError(t, writeFile(t, q, b, 40))
			require.NoError(t, q.Rename(b, a))
			require.EqualValues(t, 40, q.Used(), "renaming over a file frees its bytes")
			require.NoError(t, writeFile(t, q, a, 10))
			require.EqualValues(t, 10, q.Used(), "a new file replaces the old one's bytes")
			require.NoError(t, q.Remove(a))
			require.Zero(t, q.Used())

			release := q.Take(95)
			require.ErrorIs(t, writeFile(t, q, a, 10), syscall.ENOSPC)
			release()
			release() // once only
			require.NoError(t, writeFile(t, q, a, 10))
			q.SetLimit(5)
			require.ErrorIs(t, writeFile(t, q, b, 1), syscall.ENOSPC)
		})
	}
}

// TestTruncate: a cut frees the bytes past it, an extension counts them
// (ENOSPC past the quota); over a file system whose files cannot be
// truncated it is ErrCannotTruncate.
func TestTruncate(t *testing.T) {
	q := New(vfs.Default, 100)
	p := filepath.Join(t.TempDir(), "f")
	f, err := q.Create(p, vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Write(make([]byte, 50))
	require.NoError(t, err)
	tr := f.(interface{ Truncate(int64) error })
	require.NoError(t, tr.Truncate(20))
	require.EqualValues(t, 20, q.Used())
	require.NoError(t, tr.Truncate(90))
	require.EqualValues(t, 90, q.Used())
	require.ErrorIs(t, tr.Truncate(101), syscall.ENOSPC)
	fi, err := f.Stat()
	require.NoError(t, err)
	require.EqualValues(t, 90, fi.Size())

	m := NewMem(100)
	mf, err := m.Create("/f", vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	require.ErrorIs(t, mf.(interface{ Truncate(int64) error }).Truncate(0), ErrCannotTruncate)
}

// TestInject: an injected error fails the operations it names on the
// files under its prefix, and nothing else, also on files already open,
// until it is cleared; FailWrites is writes and syncs everywhere.
func TestInject(t *testing.T) {
	eio := syscall.EIO
	for name, base := range bases(t) {
		t.Run(name, func(t *testing.T) {
			fs, dir := base()
			q := New(fs, 1<<20)
			in := filepath.Join(dir, "in")
			require.NoError(t, q.MkdirAll(in, 0o700))
			inFile, outFile := filepath.Join(in, "f"), filepath.Join(dir, "outf")
			require.NoError(t, writeFile(t, q, inFile, 10))
			open, err := q.OpenReadWrite(inFile, vfs.WriteCategoryUnspecified)
			require.NoError(t, err)
			defer open.Close()

			for _, tc := range []struct {
				ops  Op
				what string
				do   func() error
			}{
				{OpWrite, "create", func() error { return writeFile(t, q, filepath.Join(in, "new"), 1) }},
				{OpWrite, "write to an open file", func() error { _, err := open.WriteAt([]byte("x"), 0); return err }},
				{OpSync, "sync", open.Sync},
				{OpSync, "sync data", open.SyncData},
				{OpRead, "open", func() error { _, err := q.Open(inFile); return err }},
				{OpRead, "read an open file", func() error { _, err := open.ReadAt(make([]byte, 1), 0); return err }},
			} {
				q.Inject(tc.ops, in, eio)
				err := tc.do()
				require.ErrorIs(t, err, eio, tc.what)
				var pe interface{ Unwrap() error }
				require.True(t, errors.As(err, &pe), "%s: a *PathError naming the file", tc.what)
				require.NoError(t, writeFile(t, q, outFile, 1), "%s: files outside the prefix work", tc.what)
				q.Inject(tc.ops^(OpWrite|OpSync|OpRead), in, eio)
				require.NoError(t, tc.do(), "%s: other operations work", tc.what)
				q.Inject(0, "", nil)
				require.NoError(t, tc.do(), "%s: cleared", tc.what)
			}

			q.FailWrites(eio)
			require.ErrorIs(t, writeFile(t, q, outFile, 1), eio)
			require.ErrorIs(t, open.Sync(), eio)
			r, err := q.Open(inFile)
			require.NoError(t, err, "reads go on")
			_, err = io.ReadAll(r)
			require.NoError(t, err)
			r.Close()
			q.FailWrites(nil)
			require.NoError(t, writeFile(t, q, outFile, 1))
		})
	}
}
