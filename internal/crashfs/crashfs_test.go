package crashfs_test

import (
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/crashfs"
)

// read is the content of name in fs.
func read(t *testing.T, fs vfs.FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(name)
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	return b
}

// syncDir syncs directory dir of fs.
func syncDir(t *testing.T, fs vfs.FS, dir string) {
	t.Helper()
	d, err := fs.OpenDir(dir)
	require.NoError(t, err)
	require.NoError(t, d.Sync())
	require.NoError(t, d.Close())
}

// truncate is f's Truncate, which vfs.File does not declare.
func truncate(f vfs.File, size int64) error {
	return f.(interface{ Truncate(int64) error }).Truncate(size)
}

// TestCrashKeepsWhatWasSynced: after a power cut a file holds what its
// last sync saw, a truncation included, and a name exists only if its
// directory was synced after it was made.
func TestCrashKeepsWhatWasSynced(t *testing.T) {
	fs := crashfs.New()
	require.NoError(t, fs.MkdirAll("/data/store", 0o700))
	syncDir(t, fs, "/")
	syncDir(t, fs, "/data")
	f, err := fs.Create("/data/store/a", vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	_, err = f.Write([]byte("hello, world"))
	require.NoError(t, err)
	require.NoError(t, f.Sync())

	lost := fs.CrashClone(crashfs.CrashCloneCfg{})
	_, err = lost.Stat("/data/store/a")
	require.ErrorIs(t, err, os.ErrNotExist, "a synced file whose directory was not synced is lost")

	syncDir(t, fs, "/data/store")
	require.Equal(t, []byte("hello, world"), read(t, fs.CrashClone(crashfs.CrashCloneCfg{}), "/data/store/a"))

	// A truncation is durable once synced, like a write.
	require.NoError(t, truncate(f, 5))
	_, err = f.Write([]byte("!")) // at the file's position: past the cut, zeros between
	require.NoError(t, err)
	require.Equal(t, []byte("hello, world"), read(t, fs.CrashClone(crashfs.CrashCloneCfg{}), "/data/store/a"),
		"not synced yet")
	require.NoError(t, f.Sync())
	want := append([]byte("hello"), make([]byte, 7)...)
	want = append(want, '!')
	require.Equal(t, want, read(t, fs.CrashClone(crashfs.CrashCloneCfg{}), "/data/store/a"))
	require.NoError(t, truncate(f, 20), "extends with zeros")
	st, err := f.Stat()
	require.NoError(t, err)
	require.Equal(t, int64(20), st.Size())
	require.Error(t, truncate(f, -1))
	require.NoError(t, f.Close())

	// A file opened for reading does not truncate.
	r, err := fs.Open("/data/store/a")
	require.NoError(t, err)
	require.Error(t, truncate(r, 0))
	require.NoError(t, r.Close())

	// Everything, with every unsynced block and name kept.
	all := fs.CrashClone(crashfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(1, 1))})
	require.Len(t, read(t, all, "/data/store/a"), 20)
}
