package fuse

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/engine/enginetest"
	"github.com/berthstore/berth/internal/testenv"
)

// rawTar writes headers as given (tar.Writer refuses none of these names).
func rawTar(t *testing.T, hs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hs {
		h.Format = tar.FormatPAX
		require.NoError(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			_, err := tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// TestHostileLayers: traversal, escaping links, absolute paths,
// duplicates, huge names, a tar bomb and truncated archives neither crash
// the mount nor expose anything outside it.
func TestHostileLayers(t *testing.T) {
	testenv.NeedFUSE(t)
	e := enginetest.Open(t, nil)
	reg := func(name string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 3}
	}
	traversal := rawTar(t,
		&tar.Header{Name: "ok", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3},
		reg("../escape"), reg("a/../../escape2"), reg("/abs/file"), reg("./../escape3"),
		&tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: "../../../../../etc/passwd"},
		&tar.Header{Name: "d/evil2", Typeflag: tar.TypeSymlink, Linkname: "../../etc"},
		&tar.Header{Name: "abs", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		&tar.Header{Name: "hl", Typeflag: tar.TypeLink, Linkname: "../outside"},
		&tar.Header{Name: "hl2", Typeflag: tar.TypeLink, Linkname: "missing"},
		&tar.Header{Name: "ok", Typeflag: tar.TypeReg, Mode: 0o600, Size: 5}, // duplicate: refused
		reg(strings.Repeat("n", 300)),       // component > NAME_MAX
		reg(strings.Repeat("d/", 3000)+"f"), // > PATH_MAX
		&tar.Header{Name: "dev", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
	)
	good := imageOf(t, layerOf(t, makeTar(t, file("fine", 0o644, "fine")), "gzip"))
	push(t, e, "hostile", "good", good)
	push(t, e, "hostile", "traversal", imageOf(t, layerOf(t, traversal, "gzip")))
	push(t, e, "hostile", "traversal-raw", imageOf(t, layerOf(t, traversal, "none")))

	full := makeTar(t, file("a", 0o644, strings.Repeat("a", 10000)), file("b", 0o644, "b"))
	var gz bytes.Buffer
	rc, err := layerOf(t, full, "gzip").Compressed()
	require.NoError(t, err)
	_, err = gz.ReadFrom(rc)
	require.NoError(t, err)
	pushRawLayer(t, e, "hostile", "truncated-gzip", gz.Bytes()[:gz.Len()/2])
	pushRawLayer(t, e, "hostile", "truncated-tar", full[:700])
	pushRawLayer(t, e, "hostile", "garbage", bytes.Repeat([]byte{0xde, 0xad}, 3000))

	var bomb []tarEntry
	for i := 0; i < 3000; i++ {
		bomb = append(bomb, file(fmt.Sprintf("f%05d", i), 0o644, ""))
	}
	push(t, e, "hostile", "bomb", imageOf(t, layerOf(t, makeTar(t, bomb...), "gzip")))

	mnt := mountStore(t, e, &Options{Layer: engine.LayerOptions{MaxEntries: 1000}})
	tags := filepath.Join(mnt, "hostile", "@tags")

	for _, tag := range []string{"traversal", "traversal-raw"} {
		t.Run(tag, func(t *testing.T) {
			root := filepath.Join(tags, tag, "rootfs")
			ents, err := os.ReadDir(root)
			require.NoError(t, err)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			assert.Equal(t, []string{"abs", "dev", "ok"}, names)
			b, err := os.ReadFile(filepath.Join(root, "ok"))
			require.NoError(t, err)
			assert.Equal(t, "xxx", string(b), "the first of duplicate entries is kept")
			target, err := os.Readlink(filepath.Join(root, "abs"))
			require.NoError(t, err)
			assert.Equal(t, "etc/passwd", target, "absolute targets stay inside the image")
			_, err = os.Stat(filepath.Join(root, "abs"))
			assert.ErrorIs(t, err, fs.ErrNotExist, "the link resolves inside the image, where there is no etc/passwd")
			_, err = os.Open(filepath.Join(root, "dev"))
			assert.Error(t, err, "devices are shown, never opened")
			var st syscall.Stat_t
			require.NoError(t, syscall.Lstat(filepath.Join(root, "dev"), &st))
			assert.Equal(t, uint32(syscall.S_IFCHR), st.Mode&syscall.S_IFMT)
		})
	}
	for _, tag := range []string{"truncated-gzip", "truncated-tar", "garbage", "bomb"} {
		t.Run(tag, func(t *testing.T) {
			_, err := os.ReadDir(filepath.Join(tags, tag, "rootfs"))
			assert.ErrorIs(t, err, syscall.EIO)
			// The image's other entries and the mount stay usable.
			_, err = os.Stat(filepath.Join(tags, tag, "manifest.json"))
			assert.NoError(t, err)
		})
	}
	b, err := os.ReadFile(filepath.Join(tags, "good", "rootfs", "fine"))
	require.NoError(t, err)
	assert.Equal(t, "fine", string(b))

	// The bomb is refused with a clear error by the engine too.
	_, err = e.LayerTOC(context.Background(), "hostile", layerDigest(t, e, "hostile", "bomb"), &engine.LayerOptions{MaxEntries: 1000})
	assert.ErrorIs(t, err, engine.ErrLayerRefused)
	assert.ErrorContains(t, err, "more than 1000 entries")
}

// pushRawLayer pushes an image whose one layer is the given bytes.
func pushRawLayer(t *testing.T, e *engine.Engine, repo, tag string, layer []byte) {
	t.Helper()
	img, err := mutate.AppendLayers(imageOf(t), static.NewLayer(layer, types.OCILayer))
	require.NoError(t, err)
	push(t, e, repo, tag, img)
}

// layerDigest returns the first layer digest of repo:tag.
func layerDigest(t *testing.T, e *engine.Engine, repo, tag string) digest.Digest {
	t.Helper()
	m, err := e.GetManifest(context.Background(), repo, tag)
	require.NoError(t, err)
	var raw struct {
		Layers []struct{ Digest digest.Digest } `json:"layers"`
	}
	require.NoError(t, json.Unmarshal(m.Payload, &raw))
	require.NotEmpty(t, raw.Layers)
	return raw.Layers[0].Digest
}
