package vfsutil

import (
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// wrapper is a file system that wraps another, as internal/faultfs does
// (which this leaf package cannot import).
type wrapper struct{ vfs.FS }

func (w wrapper) Unwrap() vfs.FS { return w.FS }

// TestCreateOpen: on the operating system's file system and on another,
// Create makes a file of mode 0600 (O_EXCL refusing an existing one,
// without it replacing it), and OpenExisting never creates one.
func TestCreateOpen(t *testing.T) {
	for name, fsys := range map[string]vfs.FS{"default": vfs.Default, "wrapped": wrapper{vfs.Default}} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			_, err := OpenExisting(fsys, p)
			require.ErrorIs(t, err, fs.ErrNotExist)
			_, err = fsys.Stat(p)
			require.ErrorIs(t, err, fs.ErrNotExist, "OpenExisting created the file")

			f, err := Create(fsys, p, true)
			require.NoError(t, err)
			_, err = f.Write([]byte("hello"))
			require.NoError(t, err)
			require.NoError(t, Truncate(f, 2))
			require.NoError(t, f.SyncData())
			require.NoError(t, f.Close())
			fi, err := fsys.Stat(p)
			require.NoError(t, err)
			require.EqualValues(t, 2, fi.Size())
			if name == "default" {
				require.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
			}
			_, err = Create(fsys, p, true)
			require.ErrorIs(t, err, fs.ErrExist)

			f, err = OpenExisting(fsys, p)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			f, err = Create(fsys, p, false)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			fi, err = fsys.Stat(p)
			require.NoError(t, err)
			require.Zero(t, fi.Size(), "replaced")
			require.True(t, OSBacked(fsys))
		})
	}
	mem := vfs.NewMem()
	require.False(t, OSBacked(mem))
	f, err := Create(mem, "/f", true)
	require.NoError(t, err)
	require.ErrorIs(t, Truncate(f, 0), ErrCannotTruncate)
}
