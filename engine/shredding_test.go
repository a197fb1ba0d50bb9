package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/index"
)

// gzipLayer is a gzip-compressed tar holding the named files.
func gzipLayer(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// layerRecords reports which records derived from layer's plaintext the
// index holds: its table of contents (c keys), its derived record (x
// key), and the derived blob itself.
func layerRecords(t *testing.T, e *Engine, layer, derived digest.Digest) (toc, derivedRecord, derivedBlob bool) {
	t.Helper()
	_, err := e.db.LayerTOC(layer)
	if !errors.Is(err, index.ErrNotFound) {
		require.NoError(t, err)
		toc = true
	}
	_, err = e.db.LayerDerived(layer)
	if !errors.Is(err, index.ErrNotFound) {
		require.NoError(t, err)
		derivedRecord = true
	}
	_, err = e.db.Blob(derived)
	if !errors.Is(err, index.ErrNotFound) {
		require.NoError(t, err)
		derivedBlob = true
	}
	return toc, derivedRecord, derivedBlob
}

// TestShreddingRemovesLayerTables: destroying a key removes, with the
// blobs only it wraps, every record derived from their plaintext: the
// layer's table of contents (its file list), its derived record and its
// seekable derivative (the uncompressed tar). The image's layer tables
// then fail cleanly (ErrBlobUnknown), as its blobs do, and the links of
// the shredded blobs go with them; what stays is listed in
// docs/crypto.md (manifests, tags).
func TestShreddingRemovesLayerTables(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, &Options{CreateOnPush: true, Logger: quietOptions().Logger})
	_, err := e.CreateKey(ctx, "team-key")
	require.NoError(t, err)
	kmsRepo(t, e, "team/app", "team-key")
	layer := gzipLayer(t, map[string]string{"etc/secret-plan.txt": "launch on friday", "bin/tool": "binary"})
	md, _ := pushImage(t, e, "team/app", "v1", layer)
	ld := digest.FromBytes(layer)
	toc, err := e.LayerTOC(ctx, "team/app", ld, nil)
	require.NoError(t, err)
	require.NotEqual(t, ld, toc.Data, "a gzip layer gets a seekable derivative")
	names := []string{}
	for _, en := range toc.Entries {
		names = append(names, en.Name)
	}
	assert.Contains(t, names, "etc/secret-plan.txt")
	hasTOC, hasDerived, hasDerivedBlob := layerRecords(t, e, ld, toc.Data)
	require.True(t, hasTOC && hasDerived && hasDerivedBlob)

	require.NoError(t, e.DestroyKey(ctx, "team-key"))

	hasTOC, hasDerived, hasDerivedBlob = layerRecords(t, e, ld, toc.Data)
	assert.False(t, hasTOC, "the layer's file list is gone")
	assert.False(t, hasDerived, "its derived record is gone")
	assert.False(t, hasDerivedBlob, "its uncompressed tar is gone")
	_, err = e.db.Blob(ld)
	require.ErrorIs(t, err, index.ErrNotFound)
	_, err = e.LayerTOC(ctx, "team/app", ld, nil)
	require.ErrorIs(t, err, ErrBlobUnknown)
	require.ErrorIs(t, e.PrepareImage(ctx, "team/app", "v1", nil), ErrBlobUnknown)
	_, err = e.OpenLayerData(ctx, "team/app", toc)
	require.ErrorIs(t, err, ErrBlobUnknown)
	// Its links go with it, both keys (no dangling link for fsck).
	ok, err := e.db.Linked("team/app", ld)
	require.NoError(t, err)
	assert.False(t, ok, "the link goes with the shredded blob")
	require.NoError(t, e.db.LinkedRepositories(ld, func(repo string) error {
		t.Errorf("the reverse link index still names %s", repo)
		return nil
	}))
	r, err := e.Fsck(ctx, FsckOptions{})
	require.NoError(t, err)
	for _, f := range r.Corrupt {
		assert.NotContains(t, []string{FsckDanglingLink, FsckUnpairedLink}, f.Kind, "%s", f)
	}
	// What stays: the manifest and its tag (docs/crypto.md).
	m, err := e.GetManifest(ctx, "team/app", "v1")
	require.NoError(t, err)
	assert.Equal(t, md, m.Digest)
}

// TestGCRemovesOrphanLayerRecords: layer tables and derived records whose
// layer the store no longer holds (a shredding by an earlier version, a
// table built while its layer was swept) are removed by a collection,
// counted by a dry run, and those of held layers stay.
func TestGCRemovesOrphanLayerRecords(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, &Options{CreateOnPush: true, Logger: quietOptions().Logger})
	layer := gzipLayer(t, map[string]string{"a.txt": "kept"})
	pushImage(t, e, "team/app", "v1", layer)
	ld := digest.FromBytes(layer)
	toc, err := e.LayerTOC(ctx, "team/app", ld, nil)
	require.NoError(t, err)
	gone, goneDerived := digest.FromString("a shredded layer"), digest.FromString("its tar")
	b := e.db.NewBatch()
	require.NoError(t, b.PutLayerTOC(gone, [][]byte{[]byte("file list")}))
	require.NoError(t, b.PutLayerDerived(gone, goneDerived))
	require.NoError(t, b.Commit(true))
	b.Close()

	r, err := e.CollectGarbage(ctx, GCOptions{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, 1, r.LayerRecords)
	hasTOC, hasDerived, _ := layerRecords(t, e, gone, goneDerived)
	assert.True(t, hasTOC && hasDerived, "a dry run changes nothing")

	r, err = e.CollectGarbage(ctx, GCOptions{})
	require.NoError(t, err)
	assert.Equal(t, 1, r.LayerRecords)
	hasTOC, hasDerived, _ = layerRecords(t, e, gone, goneDerived)
	assert.False(t, hasTOC || hasDerived)
	hasTOC, hasDerived, hasDerivedBlob := layerRecords(t, e, ld, toc.Data)
	assert.True(t, hasTOC && hasDerived && hasDerivedBlob, "a held layer keeps its records")
}
