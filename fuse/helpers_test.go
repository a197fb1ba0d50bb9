package fuse

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/engine/enginetest"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openStore opens a fresh store that creates repositories on push.
func openStore(t testing.TB) *engine.Engine {
	t.Helper()
	return enginetest.Open(t, nil)
}

// mountStore mounts e's view in a temporary directory for the test.
func mountStore(t testing.TB, e *engine.Engine, o *Options) string {
	t.Helper()
	return mountStoreAt(t, e, t.TempDir(), o)
}

// mountStoreAt mounts e's view at dir for the test.
func mountStoreAt(t testing.TB, e *engine.Engine, dir string, o *Options) string {
	t.Helper()
	if o == nil {
		o = &Options{}
	}
	if o.Logger == nil {
		o.Logger = enginetest.QuietLogger()
	}
	s, err := Mount(context.Background(), e, dir, o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Unmount()) })
	return dir
}

// tarEntry is one entry of a test layer.
type tarEntry struct {
	name, link string
	typ        byte
	mode       int64
	uid, gid   int
	body       []byte
	mtime      time.Time
}

var testTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func dir(name string, mode int64) tarEntry { return tarEntry{name: name, typ: tar.TypeDir, mode: mode} }
func file(name string, mode int64, body string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeReg, mode: mode, body: []byte(body)}
}
func symlink(name, target string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlink(name, target string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeLink, link: target, mode: 0o644}
}

// makeTar builds an uncompressed tar of entries.
func makeTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mt := e.mtime
		if mt.IsZero() {
			mt = testTime
		}
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: mt, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		require.NoError(t, tw.WriteHeader(h))
		if e.typ == tar.TypeReg {
			_, err := tw.Write(e.body)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// layerOf wraps a tar as a layer compressed with comp ("gzip", "zstd"
// or "none").
func layerOf(t testing.TB, tarball_ []byte, comp string) v1.Layer {
	t.Helper()
	if comp == "none" {
		return static.NewLayer(tarball_, types.OCIUncompressedLayer)
	}
	opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tarball_)), nil }
	opts := []tarball.LayerOption{tarball.WithMediaType(types.OCILayer)}
	if comp == "zstd" {
		opts = []tarball.LayerOption{tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd)}
	}
	l, err := tarball.LayerFromOpener(opener, opts...)
	require.NoError(t, err)
	return l
}

// imageOf builds an OCI image of layers.
func imageOf(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layers...)
	require.NoError(t, err)
	return img
}

// push stores img in repo under tag; it returns the manifest digest.
func push(t testing.TB, e *engine.Engine, repo, tag string, img v1.Image) digest.Digest {
	t.Helper()
	ctx := context.Background()
	layers, err := img.Layers()
	require.NoError(t, err)
	for _, l := range layers {
		rc, err := l.Compressed()
		require.NoError(t, err)
		d, err := l.Digest()
		require.NoError(t, err)
		_, err = e.PutBlob(ctx, repo, rc, digest.Digest(d.String()))
		rc.Close()
		require.NoError(t, err)
	}
	cfg, err := img.RawConfigFile()
	require.NoError(t, err)
	_, err = e.PutBlob(ctx, repo, bytes.NewReader(cfg), "")
	require.NoError(t, err)
	raw, err := img.RawManifest()
	require.NoError(t, err)
	mt, err := img.MediaType()
	require.NoError(t, err)
	res, err := e.PutManifest(ctx, repo, tag, string(mt), raw)
	require.NoError(t, err)
	return res.Digest
}
