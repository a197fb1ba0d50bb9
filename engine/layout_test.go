package engine

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testLayout is a layout built with go-containerregistry: an image tagged
// v1 and latest, a two-image index tagged multi, and an untagged image.
type testLayout struct {
	dir      string
	img      v1.Image
	idx      v1.ImageIndex
	untagged v1.Image
}

// testSHA256 is the digest of no bytes.
const testSHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func buildTestLayout(t *testing.T) *testLayout {
	t.Helper()
	tl := &testLayout{dir: t.TempDir()}
	p, err := layout.Write(tl.dir, empty.Index)
	require.NoError(t, err)
	tl.img, err = random.Image(2048, 2)
	require.NoError(t, err)
	tl.idx, err = random.Index(512, 1, 2)
	require.NoError(t, err)
	tl.untagged, err = random.Image(256, 1)
	require.NoError(t, err)
	require.NoError(t, p.AppendImage(tl.img, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: "v1"})))
	require.NoError(t, p.AppendImage(tl.img, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: "docker.io/library/test:latest"})))
	require.NoError(t, p.AppendIndex(tl.idx, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: "multi"})))
	require.NoError(t, p.AppendImage(tl.untagged))
	return tl
}

func mustDigest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) digest.Digest {
	t.Helper()
	h, err := d.Digest()
	require.NoError(t, err)
	return digest.Digest(h.String())
}

func TestLayoutPlan(t *testing.T) {
	tl := buildTestLayout(t)
	root, err := os.OpenRoot(tl.dir)
	require.NoError(t, err)
	defer root.Close()
	plan, err := planLayoutImport(context.Background(), root)
	require.NoError(t, err)

	imgD, idxD, untD := mustDigest(t, tl.img), mustDigest(t, tl.idx), mustDigest(t, tl.untagged)
	var refs []string
	for _, im := range plan.images {
		refs = append(refs, im.Reference)
	}
	assert.Equal(t, []string{"v1", "latest", "multi", untD.String()}, refs)

	// Children come before the index that lists them.
	pos := map[digest.Digest]int{}
	for i, m := range plan.manifests {
		pos[m.Digest] = i
	}
	require.Len(t, plan.manifests, 5) // img, 2 children, index, untagged
	im, err := tl.idx.IndexManifest()
	require.NoError(t, err)
	for _, c := range im.Manifests {
		assert.Less(t, pos[digest.Digest(c.Digest.String())], pos[idxD])
	}
	assert.ElementsMatch(t, []string{"v1", "latest"}, plan.manifests[pos[imgD]].tags)
	assert.Equal(t, []string{"multi"}, plan.manifests[pos[idxD]].tags)
	assert.Empty(t, plan.manifests[pos[untD]].tags)
	// 3 configs + 2 layers for img, 2 configs + 2 layers for idx, 1+1 untagged.
	assert.Len(t, plan.blobs, 3+2+2+2)
}

func TestLayoutPlanRejects(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, tl *testLayout)
		wantErr error
	}{
		{"no oci-layout", func(t *testing.T, tl *testLayout) {
			require.NoError(t, os.Remove(filepath.Join(tl.dir, "oci-layout")))
		}, ErrInvalidArgument},
		{"layout version", func(t *testing.T, tl *testLayout) {
			writeTestFile(t, tl.dir, "oci-layout", `{"imageLayoutVersion":"2.0.0"}`)
		}, ErrUnsupported},
		{"index.json not json", func(t *testing.T, tl *testLayout) {
			writeTestFile(t, tl.dir, "index.json", `{`)
		}, ErrManifestInvalid},
		{"index.json is a manifest", func(t *testing.T, tl *testLayout) {
			m, err := tl.untagged.RawManifest()
			require.NoError(t, err)
			writeTestFile(t, tl.dir, "index.json", string(m))
		}, ErrManifestInvalid},
		{"manifest missing", func(t *testing.T, tl *testLayout) {
			removeBlob(t, tl.dir, mustDigest(t, tl.untagged))
		}, ErrManifestBlobUnknown},
		{"manifest altered", func(t *testing.T, tl *testLayout) {
			d := mustDigest(t, tl.untagged)
			b, err := os.ReadFile(blobFile(tl.dir, d))
			require.NoError(t, err)
			b[len(b)-2] = ' '
			writeTestFile(t, tl.dir, layoutBlobPath(d), string(b))
		}, ErrDigestInvalid},
		{"layer missing", func(t *testing.T, tl *testLayout) {
			ls, err := tl.img.Layers()
			require.NoError(t, err)
			removeBlob(t, tl.dir, mustDigest(t, ls[1]))
		}, ErrManifestBlobUnknown},
		{"layer wrong size", func(t *testing.T, tl *testLayout) {
			ls, err := tl.img.Layers()
			require.NoError(t, err)
			writeTestFile(t, tl.dir, layoutBlobPath(mustDigest(t, ls[0])), "short")
		}, ErrSizeInvalid},
		{"layer is a symlink out of the layout", func(t *testing.T, tl *testLayout) {
			ls, err := tl.img.Layers()
			require.NoError(t, err)
			f := blobFile(tl.dir, mustDigest(t, ls[0]))
			require.NoError(t, os.Remove(f))
			require.NoError(t, os.Symlink("/etc/passwd", f))
		}, ErrInvalidArgument},
		{"layer is a directory", func(t *testing.T, tl *testLayout) {
			ls, err := tl.img.Layers()
			require.NoError(t, err)
			f := blobFile(tl.dir, mustDigest(t, ls[0]))
			require.NoError(t, os.Remove(f))
			require.NoError(t, os.Mkdir(f, 0o755))
		}, ErrInvalidArgument},
		{"entry with traversal digest", func(t *testing.T, tl *testLayout) {
			writeTestFile(t, tl.dir, "index.json", `{"schemaVersion":2,"manifests":[{"mediaType":"`+
				ocispec.MediaTypeImageManifest+`","digest":"sha256:../../../../etc/passwd","size":1}]}`)
		}, ErrManifestInvalid},
		{"entry not a manifest", func(t *testing.T, tl *testLayout) {
			writeTestFile(t, tl.dir, "index.json", `{"schemaVersion":2,"manifests":[{"mediaType":"application/octet-stream","digest":"`+
				testSHA256+`","size":0}]}`)
		}, ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := buildTestLayout(t)
			tt.corrupt(t, tl)
			root, err := os.OpenRoot(tl.dir)
			require.NoError(t, err)
			defer root.Close()
			plan, err := planLayoutImport(context.Background(), root)
			require.ErrorIs(t, err, tt.wantErr)
			assert.Nil(t, plan)
		})
	}
}

func writeTestFile(t *testing.T, dir, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), []byte(content), 0o644))
}

func blobFile(dir string, d digest.Digest) string {
	return filepath.Join(dir, filepath.FromSlash(layoutBlobPath(d)))
}

func removeBlob(t *testing.T, dir string, d digest.Digest) {
	t.Helper()
	require.NoError(t, os.Remove(blobFile(dir, d)))
}

func TestLayoutRefNameTag(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"latest", "latest"},
		{"v1.2.3", "v1.2.3"},
		{"docker.io/library/alpine:3.20", "3.20"},
		{"localhost:5000/app:dev", "dev"},
		{"localhost:5000/app", ""},
		{"alpine@" + testSHA256, ""},
		{"app:bad tag", ""},
		{"-bad", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, tagFromRefName(tt.in))
		})
	}
}

// TestLayoutImportExport needs the engine's storage core: it imports a
// layout, reads everything back, exports it and validates the result with
// go-containerregistry.
func TestLayoutImportExport(t *testing.T) {
	ctx := context.Background()
	tl := buildTestLayout(t)
	e, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Close()) }()
	const repo = "layout/test"
	_, err = e.CreateRepository(ctx, repo, RepositorySettings{})
	require.NoError(t, err)

	imported, err := e.ImportLayout(ctx, tl.dir, repo)
	require.NoError(t, err)
	imgD, idxD, untD := mustDigest(t, tl.img), mustDigest(t, tl.idx), mustDigest(t, tl.untagged)
	got := map[string]digest.Digest{}
	for _, im := range imported {
		got[im.Reference] = im.Digest
	}
	assert.Equal(t, map[string]digest.Digest{"v1": imgD, "latest": imgD, "multi": idxD, untD.String(): untD}, got)

	tags, err := e.ListTags(ctx, repo, "", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"latest", "multi", "v1"}, tags)

	// Every manifest and blob reads back as it was.
	for _, img := range []v1.Image{tl.img, tl.untagged} {
		checkImageStored(t, e, repo, img)
	}
	im, err := tl.idx.IndexManifest()
	require.NoError(t, err)
	for _, c := range im.Manifests {
		child, err := tl.idx.Image(c.Digest)
		require.NoError(t, err)
		checkImageStored(t, e, repo, child)
	}
	m, err := e.GetManifest(ctx, repo, "multi")
	require.NoError(t, err)
	raw, err := tl.idx.RawManifest()
	require.NoError(t, err)
	assert.Equal(t, raw, m.Payload)

	// Importing again changes nothing.
	again, err := e.ImportLayout(ctx, tl.dir, repo)
	require.NoError(t, err)
	assert.Equal(t, imported, again)

	// Export all tags, then one image by digest.
	out := t.TempDir()
	require.NoError(t, e.ExportLayout(ctx, repo, nil, out))
	idx, err := layout.ImageIndexFromPath(out)
	require.NoError(t, err)
	checkIndexReadable(t, idx)
	om, err := idx.IndexManifest()
	require.NoError(t, err)
	names := map[string]string{}
	for _, d := range om.Manifests {
		names[d.Annotations[ocispec.AnnotationRefName]] = d.Digest.String()
	}
	assert.Equal(t, map[string]string{"latest": imgD.String(), "multi": idxD.String(), "v1": imgD.String()}, names)
	exported, err := idx.Image(v1.Hash{Algorithm: "sha256", Hex: imgD.Encoded()})
	require.NoError(t, err)
	checkImageReadable(t, exported)

	byDigest := t.TempDir()
	require.NoError(t, e.ExportLayout(ctx, repo, []string{untD.String()}, byDigest))
	idx2, err := layout.ImageIndexFromPath(byDigest)
	require.NoError(t, err)
	checkIndexReadable(t, idx2)
	om2, err := idx2.IndexManifest()
	require.NoError(t, err)
	require.Len(t, om2.Manifests, 1)
	assert.Equal(t, untD.String(), om2.Manifests[0].Digest.String())
	assert.Empty(t, om2.Manifests[0].Annotations)

	// The exported layout imports into another repository unchanged.
	_, err = e.CreateRepository(ctx, "layout/copy", RepositorySettings{})
	require.NoError(t, err)
	reimported, err := e.ImportLayout(ctx, out, "layout/copy")
	require.NoError(t, err)
	assert.Len(t, reimported, 3)

	var lay ocispec.ImageLayout
	b, err := os.ReadFile(filepath.Join(out, "oci-layout"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &lay))
	assert.Equal(t, "1.0.0", lay.Version)
}

func TestLayoutImportCancelled(t *testing.T) {
	tl := buildTestLayout(t)
	e, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Close()) }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = e.ImportLayout(ctx, tl.dir, "layout/test")
	require.ErrorIs(t, err, context.Canceled)
}

// checkImageStored compares an image's manifest, config and layers with
// what the engine holds.
func checkImageStored(t *testing.T, e *Engine, repo string, img v1.Image) {
	t.Helper()
	ctx := context.Background()
	d := mustDigest(t, img)
	m, err := e.GetManifest(ctx, repo, d.String())
	require.NoError(t, err)
	raw, err := img.RawManifest()
	require.NoError(t, err)
	assert.Equal(t, raw, m.Payload)
	cfg, err := img.RawConfigFile()
	require.NoError(t, err)
	cfgName, err := img.ConfigName()
	require.NoError(t, err)
	assert.Equal(t, cfg, readBlob(t, e, repo, digest.Digest(cfgName.String())))
	layers, err := img.Layers()
	require.NoError(t, err)
	for _, l := range layers {
		rc, err := l.Compressed()
		require.NoError(t, err)
		want, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		assert.Equal(t, want, readBlob(t, e, repo, mustDigest(t, l)))
	}
}

func readBlob(t *testing.T, e *Engine, repo string, d digest.Digest) []byte {
	t.Helper()
	r, err := e.OpenBlob(context.Background(), repo, d)
	require.NoError(t, err)
	defer r.Close()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b
}

// checkIndexReadable reads every image of an index (recursively) as
// go-containerregistry sees it, checking every digest.
func checkIndexReadable(t *testing.T, idx v1.ImageIndex) {
	t.Helper()
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	for _, d := range im.Manifests {
		if d.MediaType.IsIndex() {
			child, err := idx.ImageIndex(d.Digest)
			require.NoError(t, err)
			assert.Equal(t, d.Digest, mustHash(t, child))
			checkIndexReadable(t, child)
			continue
		}
		img, err := idx.Image(d.Digest)
		require.NoError(t, err)
		assert.Equal(t, d.Digest, mustHash(t, img))
		checkImageReadable(t, img)
	}
}

// checkImageReadable reads an image's config and layers and checks their
// digests and sizes against its manifest.
func checkImageReadable(t *testing.T, img v1.Image) {
	t.Helper()
	m, err := img.Manifest()
	require.NoError(t, err)
	cfg, err := img.RawConfigFile()
	require.NoError(t, err)
	assert.Equal(t, m.Config.Digest.Hex, digest.FromBytes(cfg).Encoded())
	assert.Equal(t, m.Config.Size, int64(len(cfg)))
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, len(m.Layers))
	for i, l := range layers {
		rc, err := l.Compressed()
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		assert.Equal(t, m.Layers[i].Digest.Hex, digest.FromBytes(b).Encoded())
		assert.Equal(t, m.Layers[i].Size, int64(len(b)))
	}
}

func mustHash(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	require.NoError(t, err)
	return h
}
