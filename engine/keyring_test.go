package engine

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// treeState lists every file and directory under dir with its size,
// mode and modification time: what Open must not change when it refuses.
func treeState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		out[p] = st.Mode().String() + " " + st.ModTime().Format(time.RFC3339Nano) + " " + strconv.FormatInt(st.Size(), 10)
		return nil
	}))
	return out
}

// newStoreWithBlob makes a store in dir with one encrypted blob and
// closes it; it returns the blob's bytes.
func newStoreWithBlob(t *testing.T, dir string, o Options) []byte {
	t.Helper()
	o.CreateOnPush, o.Logger = true, quietOptions().Logger
	e, err := Open(dir, &o)
	require.NoError(t, err)
	data := rnd(2000)
	_, err = e.PutBlob(context.Background(), "team/app", bytes.NewReader(data), "")
	require.NoError(t, err)
	require.NoError(t, e.Close())
	return data
}

// TestMissingKeyringRefused: an existing store whose keyring file is
// gone is refused with ErrKeyringMissing, and nothing is written (no new
// keyring, nothing else); a new store gets its keyring; restoring the
// keyring opens the store with its blobs readable.
func TestMissingKeyringRefused(t *testing.T) {
	dir := t.TempDir()
	data := newStoreWithBlob(t, dir, Options{})
	keyring := filepath.Join(dir, "keyring.json")
	saved, err := os.ReadFile(keyring)
	require.NoError(t, err)
	require.NoError(t, os.Remove(keyring))
	before := treeState(t, dir)

	_, err = Open(dir, &Options{Logger: quietOptions().Logger})
	require.ErrorIs(t, err, ErrKeyringMissing)
	assert.Contains(t, err.Error(), keyring)
	assert.Equal(t, before, treeState(t, dir), "nothing written")
	_, err = os.Stat(keyring)
	require.ErrorIs(t, err, fs.ErrNotExist)

	require.NoError(t, os.WriteFile(keyring, saved, 0o600))
	e, err := Open(dir, &Options{Logger: quietOptions().Logger})
	require.NoError(t, err)
	defer e.Close()
	got, err := readRepoBlob(e, "team/app", digest.FromBytes(data))
	require.NoError(t, err)
	assert.Equal(t, data, got)
}

// TestKeyringThroughSymlink: a keyring linked from another directory (a
// volume of its own) is created, rotated and changed there: each write
// replaces the target beside it, the link stays a link, and the store's
// directory gets no keyring file of its own.
func TestKeyringThroughSymlink(t *testing.T) {
	ctx := context.Background()
	dir, keyDir := t.TempDir(), t.TempDir()
	target := filepath.Join(keyDir, "keyring.json")
	link := filepath.Join(dir, "keyring.json")
	require.NoError(t, os.Symlink(target, link)) // dangling until the store is made

	data := newStoreWithBlob(t, dir, Options{})
	requireLink(t, link, target)
	first, err := os.ReadFile(target)
	require.NoError(t, err)

	e, err := Open(dir, &Options{Logger: quietOptions().Logger})
	require.NoError(t, err)
	_, err = e.RotateKey(ctx, "berth-default")
	require.NoError(t, err)
	_, err = e.CreateKey(ctx, "team-key")
	require.NoError(t, err)
	require.NoError(t, e.WaitRewraps(ctx))
	require.NoError(t, e.Close())

	requireLink(t, link, target)
	rotated, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.NotEqual(t, first, rotated, "written beside the target")
	assert.Contains(t, string(rotated), "team-key")
	st, err := os.Stat(target)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	for _, d := range []string{dir, keyDir} {
		entries, err := os.ReadDir(d)
		require.NoError(t, err)
		for _, en := range entries {
			assert.False(t, strings.HasPrefix(en.Name(), ".keyring-"), "no temporary file left in %s", d)
		}
	}

	// Opened again through the link, or by KeyringPath itself.
	for _, o := range []*Options{{Logger: quietOptions().Logger}, {Logger: quietOptions().Logger, KeyringPath: target}} {
		e, err := Open(dir, o)
		require.NoError(t, err)
		got, err := readRepoBlob(e, "team/app", digest.FromBytes(data))
		require.NoError(t, err)
		assert.Equal(t, data, got)
		require.NoError(t, e.Close())
	}
}

func requireLink(t *testing.T, link, target string) {
	t.Helper()
	st, err := os.Lstat(link)
	require.NoError(t, err)
	require.True(t, st.Mode()&fs.ModeSymlink != 0, "%s is still a symlink", link)
	got, err := os.Readlink(link)
	require.NoError(t, err)
	require.Equal(t, target, got)
}

// TestKeyringDirectoryMissing: a keyring path whose directory does not
// exist (its volume not mounted) is refused with ErrKeyringMissing, for
// an existing store and a new one alike, and the directory is not made.
func TestKeyringDirectoryMissing(t *testing.T) {
	volume := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.Mkdir(volume, 0o700))
	keyring := filepath.Join(volume, "keyring.json")
	dir := t.TempDir()
	newStoreWithBlob(t, dir, Options{KeyringPath: keyring})
	require.NoError(t, os.Rename(volume, volume+".unmounted"))
	before := treeState(t, dir)

	_, err := Open(dir, &Options{Logger: quietOptions().Logger, KeyringPath: keyring})
	require.ErrorIs(t, err, ErrKeyringMissing)
	assert.Contains(t, err.Error(), "is its volume mounted?")
	assert.Equal(t, before, treeState(t, dir), "nothing written")
	_, err = os.Stat(volume)
	require.ErrorIs(t, err, fs.ErrNotExist, "the keyring's directory is not made")

	_, err = Open(t.TempDir(), &Options{Logger: quietOptions().Logger, KeyringPath: keyring})
	require.ErrorIs(t, err, ErrKeyringMissing, "a new store too")

	require.NoError(t, os.Rename(volume+".unmounted", volume))
	e, err := Open(dir, &Options{Logger: quietOptions().Logger, KeyringPath: keyring})
	require.NoError(t, err)
	require.NoError(t, e.Close())
	_, err = Open(dir, &Options{Logger: quietOptions().Logger})
	require.ErrorIs(t, err, ErrKeyringMissing, "the default path holds no keyring of this store")
}
