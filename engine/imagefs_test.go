package engine

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/scan"
)

// tarEntry is one entry of a test layer.
type tarEntry struct {
	name, body, link string
	typ              byte
	mode             int64
}

// layerTar builds a tar layer, gzipped when gz is set.
func layerTar(t testing.TB, gz bool, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body))}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		require.NoError(t, tw.WriteHeader(h))
		_, err := tw.Write([]byte(e.body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	if zw != nil {
		require.NoError(t, zw.Close())
	}
	return buf.Bytes()
}

const testDpkgStatus = `Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u1

Package: gone
Status: install ok installed
Architecture: amd64
Version: 1.0
`

// TestImageFS: an image of a gzip layer and a plain one, with a file
// whiteout, an opaque directory and symlinks through directories, read
// as one filesystem through the layer tables: fstest.TestFS checks the
// fs.FS contract; whiteouts hide, symlinks resolve inside the image, and
// the inventory sees what the merged tree holds.
func TestImageFS(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	bottom := layerTar(t, true,
		tarEntry{name: "usr/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "usr/lib/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "usr/lib/os-release", body: "ID=debian\nVERSION_ID=\"12\"\n"},
		tarEntry{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "etc/os-release", typ: tar.TypeSymlink, link: "../usr/lib/os-release"},
		tarEntry{name: "lib", typ: tar.TypeSymlink, link: "usr/lib"},
		tarEntry{name: "var/lib/dpkg/status", body: testDpkgStatus},
		tarEntry{name: "old/a", body: "a"},
		tarEntry{name: "old/b", body: "b"},
		tarEntry{name: "gone.txt", body: "gone"},
	)
	top := layerTar(t, false,
		tarEntry{name: ".wh.gone.txt"},
		tarEntry{name: "old/.wh..wh..opq"},
		tarEntry{name: "old/c", body: "c"},
		tarEntry{name: "usr/lib/big", body: string(bytes.Repeat([]byte("0123456789"), 300_000))},
		tarEntry{name: "abs", typ: tar.TypeSymlink, link: "/../../etc/os-release"},
	)
	d, payload := pushImage(t, e, "r", "v1", bottom, top)

	fsys, err := e.ImageFS(ctx, "r", "v1", nil)
	require.NoError(t, err)
	defer fsys.Close()
	require.Equal(t, d, fsys.Digest())

	require.NoError(t, fstest.TestFS(fsys, "etc/os-release", "usr/lib/big", "old/c", "var/lib/dpkg/status"))

	_, err = fs.Stat(fsys, "gone.txt")
	require.ErrorIs(t, err, fs.ErrNotExist, "a whiteout hides the lower file")
	ents, err := fs.ReadDir(fsys, "old")
	require.NoError(t, err)
	require.Len(t, ents, 1, "an opaque directory hides the lower entries")
	require.Equal(t, "c", ents[0].Name())

	for _, p := range []string{"etc/os-release", "lib/os-release", "abs"} {
		b, err := fs.ReadFile(fsys, p)
		require.NoError(t, err, p)
		require.Equal(t, "ID=debian\nVERSION_ID=\"12\"\n", string(b), p)
	}
	fi, err := fsys.Lstat("etc/os-release")
	require.NoError(t, err)
	require.Equal(t, fs.ModeSymlink, fi.Mode().Type())

	f, err := fsys.Open("usr/lib/big")
	require.NoError(t, err)
	ra, ok := f.(io.ReaderAt)
	require.True(t, ok, "files read at offsets")
	buf := make([]byte, 10)
	n, err := ra.ReadAt(buf, 2_999_990)
	require.NoError(t, err)
	require.Equal(t, "0123456789", string(buf[:n]))
	_, err = ra.ReadAt(buf, 2_999_995)
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, f.Close())

	_, err = fsys.Open("../etc/os-release")
	require.ErrorIs(t, err, fs.ErrInvalid)

	inv, err := scan.TakeInventory(ctx, fsys, scan.Options{})
	require.NoError(t, err)
	require.Equal(t, "Debian:12", inv.OS.Ecosystem)
	var names []string
	for _, p := range inv.Packages {
		names = append(names, p.Name)
	}
	require.ElementsMatch(t, []string{"libc6", "gone"}, names)

	// An index has no root filesystem.
	idx := pushIndex(t, e, "r", "multi", map[digest.Digest]int{d: len(payload)})
	_, err = e.ImageFS(ctx, "r", string(idx), nil)
	require.ErrorIs(t, err, ErrNotAnImage)
	_, err = e.ImageFS(ctx, "r", "nope", nil)
	require.ErrorIs(t, err, ErrManifestUnknown)
}
