package crypt

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeyringCreatedPrivate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keyring.json")
	_, err := OpenKeyring(p)
	require.NoError(t, err)
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	require.NoError(t, os.Chmod(p, 0o644))
	_, err = OpenKeyring(p)
	require.ErrorIs(t, err, ErrInvalidKey)
}

func TestWrapUnwrap(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "keyring.json")
	k, err := OpenKeyring(p)
	require.NoError(t, err)
	dk, err := NewDataKey()
	require.NoError(t, err)
	w, err := k.Wrap(ctx, DefaultKeyName, dk, []byte("ad"))
	require.NoError(t, err)
	assert.False(t, bytes.Contains(w.Ciphertext, dk))

	// Reopened from disk, the keyring unwraps the same.
	k2, err := OpenKeyring(p)
	require.NoError(t, err)
	got, err := k2.Unwrap(ctx, w, []byte("ad"))
	require.NoError(t, err)
	assert.Equal(t, dk, got)

	_, err = k2.Unwrap(ctx, w, []byte("other ad"))
	require.ErrorIs(t, err, ErrUnauthenticated)
	bad := w
	bad.Ciphertext = bytes.Clone(w.Ciphertext)
	bad.Ciphertext[20] ^= 1
	_, err = k2.Unwrap(ctx, bad, []byte("ad"))
	require.ErrorIs(t, err, ErrUnauthenticated)
	_, err = k2.Unwrap(ctx, WrappedKey{KeyName: "nope", Version: 1, Ciphertext: w.Ciphertext}, []byte("ad"))
	require.ErrorIs(t, err, ErrKeyNotFound)

	// Rotation: the old version still unwraps, new wraps use the new one.
	v, err := k2.RotateKey(ctx, DefaultKeyName)
	require.NoError(t, err)
	assert.Equal(t, uint32(2), v)
	_, err = k2.Unwrap(ctx, w, []byte("ad"))
	require.NoError(t, err)
	w2, err := k2.Wrap(ctx, DefaultKeyName, dk, nil)
	require.NoError(t, err)
	assert.Equal(t, uint32(2), w2.Version)

	require.NoError(t, k2.SetKeyState(ctx, DefaultKeyName, KeyDisabled))
	_, err = k2.Unwrap(ctx, w, []byte("ad"))
	require.ErrorIs(t, err, ErrKeyDisabled)
	require.NoError(t, k2.SetKeyState(ctx, DefaultKeyName, KeyEnabled))
	_, err = k2.Unwrap(ctx, w, []byte("ad"))
	require.NoError(t, err)
	require.NoError(t, k2.SetKeyState(ctx, DefaultKeyName, KeyDestroyed))
	_, err = k2.Unwrap(ctx, w, []byte("ad"))
	require.ErrorIs(t, err, ErrKeyDestroyed)
	b, _ := os.ReadFile(p)
	assert.NotContains(t, string(b), "material")
}

func TestFrameSealer(t *testing.T) {
	dk, _ := NewDataKey()
	var id, id2 [FileIDSize]byte
	id2[0] = 1
	s, err := NewFrameSealer(dk, id)
	require.NoError(t, err)
	sealed, err := s.Seal(nil, []byte("frame data"), 3, false, 0)
	require.NoError(t, err)
	got, err := s.Open(nil, sealed, 3, false, 0)
	require.NoError(t, err)
	assert.Equal(t, "frame data", string(got))
	for name, open := range map[string]func() error{
		"other frame number": func() error { _, err := s.Open(nil, sealed, 4, false, 0); return err },
		"last flag":          func() error { _, err := s.Open(nil, sealed, 3, true, 0); return err },
		"codec":              func() error { _, err := s.Open(nil, sealed, 3, false, 1); return err },
		"other file": func() error {
			s2, _ := NewFrameSealer(dk, id2)
			_, err := s2.Open(nil, sealed, 3, false, 0)
			return err
		},
		"short": func() error { _, err := s.Open(nil, sealed[:10], 3, false, 0); return err },
	} {
		require.ErrorIs(t, open(), ErrUnauthenticated, name)
	}
	mac := s.MAC([]byte("header"))
	require.NoError(t, s.CheckMAC([]byte("header"), mac))
	require.ErrorIs(t, s.CheckMAC([]byte("headers"), mac), ErrUnauthenticated)
	_, err = NewFrameSealer(dk[:5], id)
	require.ErrorIs(t, err, ErrInvalidKey)
}

// TestKeyringThroughSymlink: a keyring path that is a symlink (a keyring
// on another volume) is created and rewritten at the link's target, in
// the target's directory: the link stays a link.
func TestKeyringThroughSymlink(t *testing.T) {
	ctx := context.Background()
	vol := t.TempDir()
	target := filepath.Join(vol, "keyring.json")
	link := filepath.Join(t.TempDir(), "keyring.json")
	require.NoError(t, os.Symlink(target, link))
	got, err := KeyringTarget(link)
	require.NoError(t, err)
	assert.Equal(t, target, got, "a dangling link resolves to its target")

	k, err := OpenKeyring(link)
	require.NoError(t, err)
	require.NoError(t, k.CreateKey(ctx, "second"))
	_, err = k.RotateKey(ctx, "second")
	require.NoError(t, err)
	st, err := os.Lstat(link)
	require.NoError(t, err)
	assert.True(t, st.Mode()&os.ModeSymlink != 0, "still a link")
	b, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Contains(t, string(b), "second")

	// A missing directory is an error, not created.
	missing := filepath.Join(t.TempDir(), "unmounted", "keyring.json")
	_, err = OpenKeyring(missing)
	require.Error(t, err)
	_, err = os.Stat(filepath.Dir(missing))
	require.ErrorIs(t, err, os.ErrNotExist)

	// A loop of links is refused.
	loop := filepath.Join(t.TempDir(), "loop")
	require.NoError(t, os.Symlink(loop, loop))
	_, err = KeyringTarget(loop)
	require.Error(t, err)
}
