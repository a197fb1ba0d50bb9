package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGenDeterministic(t *testing.T) {
	tests := []struct {
		name string
		make func(g *Gen) ([]*Image, error)
	}{
		{"big", func(g *Gen) ([]*Image, error) {
			im, err := g.BigImage(2)
			return []*Image{im}, err
		}},
		{"small", func(g *Gen) ([]*Image, error) { return g.SmallImages("", 8, 64) }},
		{"dedupe", func(g *Gen) ([]*Image, error) { return g.DedupeImages(6, 64) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := tc.make(NewGen(7))
			require.NoError(t, err)
			b, err := tc.make(NewGen(7))
			require.NoError(t, err)
			c, err := tc.make(NewGen(8))
			require.NoError(t, err)
			require.Len(t, b, len(a))
			for i := range a {
				assert.Equal(t, a[i].Top.Digest, b[i].Top.Digest, "same seed, same manifest")
				assert.NotEqual(t, a[i].Top.Digest, c[i].Top.Digest, "other seed, other manifest")
				for j := range a[i].Blobs {
					assert.Equal(t, a[i].Blobs[j].Digest, b[i].Blobs[j].Digest)
				}
			}
		})
	}
}

func TestGenImagesAreValid(t *testing.T) {
	ims, err := NewGen(1).SmallImages("", 8, 64)
	require.NoError(t, err)
	for _, im := range ims {
		blobs := map[digest.Digest]*Blob{}
		for _, b := range append(append([]*Blob{}, im.Blobs...), im.ReferrerBlobs...) {
			require.Equal(t, digest.FromBytes(b.Data), b.Digest)
			blobs[b.Digest] = b
		}
		manifests := append([]*Manifest{}, im.Children...)
		if im.Top.MediaType == ocispec.MediaTypeImageManifest {
			manifests = append(manifests, im.Top)
		}
		manifests = append(manifests, im.Referrers...)
		for _, m := range manifests {
			require.Equal(t, digest.FromBytes(m.Data), m.Digest)
			var om ocispec.Manifest
			require.NoError(t, json.Unmarshal(m.Data, &om))
			for _, d := range append([]ocispec.Descriptor{om.Config}, om.Layers...) {
				b, ok := blobs[d.Digest]
				require.True(t, ok, "manifest names a blob the image carries")
				require.Equal(t, int64(len(b.Data)), d.Size)
			}
		}
	}
	// The sharing the workloads rely on.
	assert.Equal(t, ims[0].Blobs[1].Digest, ims[5].Blobs[1].Digest, "base layer shared by all")
	assert.Equal(t, ims[0].Blobs[2].Digest, ims[3].Blobs[2].Digest, "group layer shared by four")
	assert.NotEqual(t, ims[0].Blobs[2].Digest, ims[4].Blobs[2].Digest)
	assert.Equal(t, ocispec.MediaTypeImageIndex, ims[7].Top.MediaType)
	assert.Len(t, ims[3].Referrers, 1)
}

func TestGenLayerContents(t *testing.T) {
	g := NewGen(3)
	tests := []struct {
		c    Compression
		open func([]byte) (io.Reader, error)
	}{
		{Gzip, func(b []byte) (io.Reader, error) { return gzip.NewReader(bytes.NewReader(b)) }},
		{Zstd, func(b []byte) (io.Reader, error) { return zstd.NewReader(bytes.NewReader(b)) }},
		{Plain, func(b []byte) (io.Reader, error) { return bytes.NewReader(b), nil }},
	}
	for _, tc := range tests {
		t.Run(tc.c.String(), func(t *testing.T) {
			l, err := g.Layer(LayerSpec{Name: "x", Size: 256 << 10, Compression: tc.c})
			require.NoError(t, err)
			r, err := tc.open(l.Data)
			require.NoError(t, err)
			raw, err := io.ReadAll(r)
			require.NoError(t, err)
			assert.Equal(t, digest.FromBytes(raw), l.DiffID)
			assert.GreaterOrEqual(t, len(raw), 256<<10)
			tr := tar.NewReader(bytes.NewReader(raw))
			files := 0
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				if h.Typeflag == tar.TypeReg {
					files++
				}
			}
			assert.Greater(t, files, 2)
			if tc.c != Plain {
				assert.Less(t, len(l.Data), len(raw), "text and binaries compress")
			}
		})
	}
}

// Each concurrency level of the push-pull workload pushes a set of its
// own, so that no server holds a set's blobs before its round starts.
func TestSmallImageSetsShareNoBlob(t *testing.T) {
	g := NewGen(1)
	a, err := g.SmallImages("-c1", 8, 64)
	require.NoError(t, err)
	b, err := g.SmallImages("-c8", 8, 64)
	require.NoError(t, err)
	seen := map[digest.Digest]bool{}
	for _, im := range a {
		for _, bl := range append(append([]*Blob{}, im.Blobs...), im.ReferrerBlobs...) {
			seen[bl.Digest] = true
		}
	}
	for _, im := range b {
		for _, bl := range append(append([]*Blob{}, im.Blobs...), im.ReferrerBlobs...) {
			if bl.MediaType == ocispec.MediaTypeEmptyJSON {
				continue // "{}", the empty config of every artifact
			}
			assert.False(t, seen[bl.Digest], "blob %s of set -c8 is in set -c1", bl.Digest)
		}
	}
}
