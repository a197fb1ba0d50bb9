package engine

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/index"
)

// blobState is what a mount may change of a blob: its record's wraps
// and the repositories linked to it.
func blobState(t *testing.T, e *Engine, d digest.Digest, repos ...string) (wraps []string, linked []string) {
	t.Helper()
	rec, err := e.db.Blob(d)
	require.NoError(t, err)
	for _, w := range rec.Wraps {
		wraps = append(wraps, w.KeyID)
	}
	for _, r := range repos {
		ok, err := e.db.Linked(r, d)
		require.NoError(t, err)
		if ok {
			linked = append(linked, r)
		}
	}
	return wraps, linked
}

// TestMountWithoutSourceLinksNothingNew: a mount without a source
// repository "mounts" only a blob the target holds already; a blob any
// other repository holds is ErrBlobUnknown, exactly as a digest the
// store does not hold, and neither its links nor its wraps change (no
// wrap under the caller's key: crypto-shredding of the owner's key still
// shreds it).
func TestMountWithoutSourceLinksNothingNew(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, &Options{CreateOnPush: true, Logger: quietOptions().Logger})
	for _, k := range []string{"victim-key", "mallory-key"} {
		_, err := e.CreateKey(ctx, k)
		require.NoError(t, err)
	}
	kmsRepo(t, e, "victim/secret", "victim-key")
	kmsRepo(t, e, "mallory/app", "mallory-key")
	secret := rnd(5000)
	d, err := e.PutBlob(ctx, "victim/secret", bytes.NewReader(secret), "")
	require.NoError(t, err)
	mine, err := e.PutBlob(ctx, "mallory/app", bytes.NewReader(rnd(100)), "")
	require.NoError(t, err)
	wraps, linked := blobState(t, e, d.Digest, "victim/secret", "mallory/app")

	_, err = e.MountBlob(ctx, "mallory/app", "", d.Digest)
	require.ErrorIs(t, err, ErrBlobUnknown)
	_, err = e.MountBlob(ctx, "mallory/app", "", digest.FromString("not in the store"))
	require.ErrorIs(t, err, ErrBlobUnknown, "the same answer as for a digest the store does not hold")
	_, err = e.MountBlob(ctx, "mallory/new", "", d.Digest)
	require.ErrorIs(t, err, ErrBlobUnknown)
	gotWraps, gotLinked := blobState(t, e, d.Digest, "victim/secret", "mallory/app", "mallory/new")
	assert.Equal(t, wraps, gotWraps, "no wrap under the caller's key")
	assert.Equal(t, linked, gotLinked, "no link into the caller's repository")
	_, err = e.Repository(ctx, "mallory/new")
	require.ErrorIs(t, err, ErrNameUnknown, "a refused mount creates no repository")
	_, err = readRepoBlob(e, "mallory/app", d.Digest)
	require.ErrorIs(t, err, ErrBlobUnknown)

	// What the target holds "mounts" (nothing changes).
	got, err := e.MountBlob(ctx, "mallory/app", "", mine.Digest)
	require.NoError(t, err)
	assert.Equal(t, mine, got)

	// Destroying the owner's key shreds the blob: the refused mount left
	// it no other way in.
	require.NoError(t, e.DestroyKey(ctx, "victim-key"))
	_, err = e.db.Blob(d.Digest)
	require.ErrorIs(t, err, index.ErrNotFound, "shredded and removed")
}

// TestMountFromSource: a mount from a source repository reads the blob
// through the source's key only: it mounts (a wrap under the target's
// key, a link) when the source holds it and its key reads it; it fails
// with ErrBlobUnknown, changing nothing, when the source does not hold
// it, does not exist, or its key is disabled or destroyed.
func TestMountFromSource(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, &Options{CreateOnPush: true, Logger: quietOptions().Logger})
	for _, k := range []string{"src-key", "dst-key", "other-key"} {
		_, err := e.CreateKey(ctx, k)
		require.NoError(t, err)
	}
	kmsRepo(t, e, "src/app", "src-key")
	kmsRepo(t, e, "dst/app", "dst-key")
	kmsRepo(t, e, "other/app", "other-key")
	data := rnd(3000)
	d, err := e.PutBlob(ctx, "src/app", bytes.NewReader(data), "")
	require.NoError(t, err)
	elsewhere, err := e.PutBlob(ctx, "other/app", bytes.NewReader(rnd(300)), "")
	require.NoError(t, err)

	_, err = e.MountBlob(ctx, "dst/app", "src/app", elsewhere.Digest)
	require.ErrorIs(t, err, ErrBlobUnknown, "the source does not hold it")
	_, err = e.MountBlob(ctx, "dst/app", "no/such", d.Digest)
	require.ErrorIs(t, err, ErrBlobUnknown, "no such source")
	_, err = e.MountBlob(ctx, "dst/app", "Bad Name", d.Digest)
	require.ErrorIs(t, err, ErrBlobUnknown, "an invalid source holds nothing")

	require.NoError(t, e.DisableKey(ctx, "src-key"))
	_, err = e.MountBlob(ctx, "dst/app", "src/app", d.Digest)
	require.ErrorIs(t, err, ErrBlobUnknown, "the source's key is disabled")
	wraps, linked := blobState(t, e, d.Digest, "dst/app")
	assert.Equal(t, []string{"src-key"}, wraps)
	assert.Empty(t, linked)
	require.NoError(t, e.EnableKey(ctx, "src-key"))

	got, err := e.MountBlob(ctx, "dst/app", "src/app", d.Digest)
	require.NoError(t, err)
	assert.Equal(t, d, got)
	wraps, linked = blobState(t, e, d.Digest, "dst/app")
	assert.Equal(t, []string{"src-key", "dst-key"}, wraps)
	assert.Equal(t, []string{"dst/app"}, linked)
	b, err := readRepoBlob(e, "dst/app", d.Digest)
	require.NoError(t, err)
	assert.Equal(t, data, b)

	// Once the source's key is destroyed, the blob lives on in dst/app
	// (its own wrap), but nothing mounts from the source any more.
	require.NoError(t, e.DestroyKey(ctx, "src-key"))
	kmsRepo(t, e, "third/app", "other-key")
	_, err = e.MountBlob(ctx, "third/app", "src/app", d.Digest)
	require.ErrorIs(t, err, ErrBlobUnknown)
	_, linked = blobState(t, e, d.Digest, "third/app")
	assert.Empty(t, linked)
}

// linkedTo lists the repositories that link d (LinkedRepositories).
func linkedTo(t *testing.T, e *Engine, d digest.Digest) []string {
	t.Helper()
	var out []string
	require.NoError(t, e.LinkedRepositories(context.Background(), d, func(repo string) error {
		out = append(out, repo)
		return nil
	}))
	return out
}

// TestLinkedRepositories: the repositories that link a blob, in name
// order, follow every way a link is made or removed: push, mount,
// unlink, repository deletion, gc.
func TestLinkedRepositories(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, &Options{CreateOnPush: true, Logger: quietOptions().Logger})
	d, err := e.PutBlob(ctx, "src/app", bytes.NewReader(rnd(500)), "")
	require.NoError(t, err)
	for _, r := range []string{"z/app", "b/app", "c/app"} {
		_, err := e.MountBlob(ctx, r, "src/app", d.Digest)
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"b/app", "c/app", "src/app", "z/app"}, linkedTo(t, e, d.Digest))
	n := 0
	require.NoError(t, e.LinkedRepositories(ctx, d.Digest, func(string) error { n++; return io.EOF }))
	assert.Equal(t, 1, n, "io.EOF stops early")

	require.NoError(t, e.DeleteBlob(ctx, "c/app", d.Digest))
	require.NoError(t, e.DeleteRepository(ctx, "z/app", true))
	assert.Equal(t, []string{"b/app", "src/app"}, linkedTo(t, e, d.Digest))
	assert.Empty(t, linkedTo(t, e, digest.FromString("absent")))
	require.ErrorIs(t, e.LinkedRepositories(ctx, "sha256:nothex", func(string) error { return nil }), ErrDigestInvalid)

	_, err = e.CollectGarbage(ctx, noGrace)
	require.NoError(t, err)
	assert.Empty(t, linkedTo(t, e, d.Digest), "swept with its links")
}

// TestLinkIndexMigration: a store whose index is at schema version 2 (its
// links without the reverse link index) opens with the index built: the
// repositories of each blob list, and fsck is clean.
func TestLinkIndexMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(dir, quietOptions())
	require.NoError(t, err)
	_, _ = pushImage(t, e, "a/app", "v1", rnd(700))
	layer, err := e.PutBlob(ctx, "a/app", bytes.NewReader(rnd(300)), "")
	require.NoError(t, err)
	_, err = e.MountBlob(ctx, "b/app", "a/app", layer.Digest)
	require.NoError(t, err)
	require.NoError(t, e.Close())

	pdb, err := pebble.Open(filepath.Join(dir, "index"), &pebble.Options{Logger: quietPebble{}})
	require.NoError(t, err)
	require.NoError(t, pdb.DeleteRange([]byte{'L'}, []byte{'L' + 1}, pebble.Sync))
	require.NoError(t, pdb.Set([]byte{'v'}, []byte{1, 2}, pebble.Sync)) // version 2
	require.NoError(t, pdb.Close())

	e, err = Open(dir, quietOptions())
	require.NoError(t, err)
	defer e.Close()
	assert.Equal(t, []string{"a/app", "b/app"}, linkedTo(t, e, layer.Digest))
	r, err := e.Fsck(ctx, FsckOptions{})
	require.NoError(t, err)
	assert.True(t, r.Clean(), "%v", r.Corrupt)
	assert.Equal(t, 4, r.Links)
}
