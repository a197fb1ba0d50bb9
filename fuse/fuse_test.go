package fuse

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/enginetest"
	"github.com/berthstore/berth/internal/testenv"
)

// fileInfo is what the tree comparison checks of one path.
type fileInfo struct {
	Type   string
	Mode   fs.FileMode
	UID    uint32
	GID    uint32
	Size   int64
	Link   string
	SHA256 string
	Nlink  uint64
	MTime  int64
}

// scanTree describes every path under root; hard links are reported as
// groups of paths sharing an inode.
func scanTree(t *testing.T, root string) (map[string]fileInfo, [][]string) {
	t.Helper()
	out := map[string]fileInfo{}
	inos := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		var st syscall.Stat_t
		require.NoError(t, syscall.Lstat(p, &st))
		fi := fileInfo{Mode: fs.FileMode(st.Mode & 0o7777), UID: st.Uid, GID: st.Gid}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			// Directory times are not compared: tar -x cannot restore them
			// when a directory's entries are not contiguous in the stream
			// (mutate.Extract emits the upper layers first).
			fi.Type = "dir"
		case syscall.S_IFLNK:
			fi.Type = "symlink"
			fi.Link, err = os.Readlink(p)
			require.NoError(t, err)
			fi.Mode = 0
		case syscall.S_IFREG:
			fi.Type, fi.Size, fi.Nlink, fi.MTime = "file", st.Size, uint64(st.Nlink), st.Mtim.Sec
			f, err := os.Open(p)
			require.NoError(t, err)
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			require.NoError(t, err, p)
			fi.SHA256 = hex.EncodeToString(h.Sum(nil))
			if st.Nlink > 1 {
				inos[st.Ino] = append(inos[st.Ino], rel)
			}
		case syscall.S_IFIFO:
			fi.Type = "fifo"
		default:
			fi.Type = "other"
		}
		out[rel] = fi
		return nil
	})
	require.NoError(t, err)
	var groups [][]string
	for _, g := range inos {
		groups = append(groups, g)
	}
	return out, groups
}

func randomBytes(t testing.TB, n int) string {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return string(b)
}

// TestImageTreeMatchesReference: the whole tree of a
// multi-layer image (gzip, uncompressed and zstd layers, whiteouts, an
// opaque directory, symlinks, hard links, a fifo) seen through the mount
// equals the image unpacked by go-containerregistry's mutate.Extract
// (crane export's code) piped to tar -x.
func TestImageTreeMatchesReference(t *testing.T) {
	testenv.NeedFUSE(t)
	tarPath := testenv.NeedTool(t, "tar")
	big := randomBytes(t, 3<<20+12345)
	owned := tarEntry{name: "home/user/secret", typ: tar.TypeReg, mode: 0o600, uid: 1000, gid: 1001, body: []byte("mine")}
	fifo := tarEntry{name: "run/fifo", typ: tar.TypeFifo, mode: 0o644}
	l1 := makeTar(t,
		dir("etc", 0o755), file("etc/remove-me", 0o644, "gone"), file("etc/keep", 0o640, "kept"),
		dir("usr", 0o755), dir("usr/bin", 0o755), dir("usr/lib", 0o755),
		file("usr/bin/tool", 0o755, "#!/bin/sh\necho tool\n"), hardlink("usr/bin/tool-hl", "usr/bin/tool"),
		file("usr/bin/suid", 0o4755, "suid"), file("usr/lib/big.bin", 0o644, big),
		symlink("lib", "usr/lib"),
		dir("var", 0o755), dir("var/cache", 0o700), file("var/cache/a", 0o644, "a"), dir("var/cache/sub", 0o755),
		file("var/cache/sub/b", 0o644, "b"),
		dir("opaque", 0o755), file("opaque/old1", 0o644, "old1"), dir("opaque/olddir", 0o755), file("opaque/olddir/x", 0o644, "x"),
		dir("home", 0o755), dir("home/user", 0o750), owned,
	)
	l2 := makeTar(t,
		dir("etc", 0o755), file("etc/.wh.remove-me", 0o644, ""), file("etc/new", 0o600, "new in layer 2"),
		symlink("etc/abs", "/usr/bin/tool"),
		dir("var", 0o755), file("var/.wh.cache", 0o644, ""),
		dir("opaque", 0o711), file("opaque/.wh..wh..opq", 0o644, ""), file("opaque/fresh", 0o644, "fresh"),
		dir("usr", 0o755), dir("usr/bin", 0o755), file("usr/bin/tool2", 0o755, "tool2"),
		hardlink("usr/bin/tool2-a", "usr/bin/tool2"), hardlink("usr/bin/tool2-b", "usr/bin/tool2"),
		dir("run", 0o755), fifo,
	)
	l3 := makeTar(t,
		dir("etc", 0o755), file("etc/new", 0o644, "replaced in layer 3"), symlink("etc/keep", "new"),
		dir("usr", 0o755), dir("usr/lib", 0o755), file("usr/lib/zstd-file", 0o644, strings.Repeat("zstd ", 5000)),
	)
	img := imageOf(t, layerOf(t, l1, "gzip"), layerOf(t, l2, "none"), layerOf(t, l3, "zstd"))

	e := enginetest.Open(t, nil)
	d := push(t, e, "team/app", "v1", img)
	mnt := mountStore(t, e, nil)

	// Reference: mutate.Extract | tar -x.
	ref := t.TempDir()
	cmd := exec.Command(tarPath, "-x", "-p", "--numeric-owner", "-f", "-", "-C", ref)
	rc := mutate.Extract(img)
	defer rc.Close()
	cmd.Stdin = rc
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))

	want, wantLinks := scanTree(t, ref)
	// The view rewrites absolute symlinks relative to the link, so that
	// following one never leaves the image.
	require.Equal(t, "/usr/bin/tool", want["etc/abs"].Link)
	w := want["etc/abs"]
	w.Link = "../usr/bin/tool"
	want["etc/abs"] = w

	for _, root := range []string{
		filepath.Join(mnt, "team", "app", "@tags", "v1", "rootfs"),
		filepath.Join(mnt, "team", "app", "@digests", string(d), "rootfs"),
	} {
		got, gotLinks := scanTree(t, root)
		assert.Equal(t, want, got, root)
		assert.ElementsMatch(t, normLinks(wantLinks), normLinks(gotLinks), root)
	}

	// Spot checks the comparison relies on.
	tags := filepath.Join(mnt, "team", "app", "@tags", "v1")
	_, err = os.Stat(filepath.Join(tags, "rootfs", "etc", "remove-me"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
	ents, err := os.ReadDir(filepath.Join(tags, "rootfs", "opaque"))
	require.NoError(t, err)
	assert.Len(t, ents, 1)
	b, err := os.ReadFile(filepath.Join(tags, "rootfs", "etc", "abs"))
	require.NoError(t, err)
	assert.Equal(t, "#!/bin/sh\necho tool\n", string(b))

	var st0 syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Join(tags, "rootfs", "etc"), &st0))
	assert.Equal(t, testTime.Unix(), st0.Mtim.Sec)

	// manifest.json and config.json are the stored bytes.
	raw, err := img.RawManifest()
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(tags, "manifest.json"))
	require.NoError(t, err)
	assert.Equal(t, raw, got)
	var cfg ocispec.Image
	got, err = os.ReadFile(filepath.Join(tags, "config.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(got, &cfg))
	assert.Len(t, cfg.RootFS.DiffIDs, 3)

	// Read-only: writes fail with EROFS; the fifo is shown, not opened.
	_, err = os.OpenFile(filepath.Join(tags, "rootfs", "etc", "new"), os.O_WRONLY, 0)
	assert.ErrorIs(t, err, syscall.EROFS)
	err = os.WriteFile(filepath.Join(tags, "rootfs", "newfile"), []byte("x"), 0o644)
	assert.ErrorIs(t, err, syscall.EROFS)
	assert.ErrorIs(t, os.Mkdir(filepath.Join(mnt, "x"), 0o755), syscall.EROFS)

	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(mnt, &st))
	assert.NotZero(t, st.Blocks)
	assert.Zero(t, st.Bavail)
}

func normLinks(gs [][]string) []string {
	var out []string
	for _, g := range gs {
		s := append([]string(nil), g...)
		sortStrings(s)
		out = append(out, strings.Join(s, ","))
	}
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestLayout checks the reserved names and the repository path mapping.
func TestLayout(t *testing.T) {
	testenv.NeedFUSE(t)
	e := enginetest.Open(t, nil)
	img := imageOf(t, layerOf(t, makeTar(t, file("hello", 0o644, "hi")), "gzip"))
	push(t, e, "a", "t1", img)
	push(t, e, "a/b", "t2", img)
	push(t, e, "a-b/c", "t3", img)
	mnt := mountStore(t, e, nil)

	tests := []struct {
		dir  string
		want []string
	}{
		{"", []string{"a", "a-b"}},
		{"a", []string{"@digests", "@tags", "b"}},
		{"a/b", []string{"@digests", "@tags"}},
		{"a-b", []string{"c"}},
		{"a/@tags", []string{"t1"}},
		{"a/@tags/t1", []string{"config.json", "manifest.json", "rootfs"}},
		{"a-b/c/@tags/t3/rootfs", []string{"hello"}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			ents, err := os.ReadDir(filepath.Join(mnt, tt.dir))
			require.NoError(t, err)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			assert.Equal(t, tt.want, names)
		})
	}
	for _, missing := range []string{"nope", "a/nope", "a-b/@tags", "a/@tags/nope", "a/@digests/sha256:00"} {
		_, err := os.Stat(filepath.Join(mnt, missing))
		assert.ErrorIs(t, err, fs.ErrNotExist, missing)
	}
}

// TestLiveView: a tag pushed while mounted appears within a second; a
// deleted one disappears within a second.
func TestLiveView(t *testing.T) {
	testenv.NeedFUSE(t)
	e := enginetest.Open(t, nil)
	img := imageOf(t, layerOf(t, makeTar(t, file("f", 0o644, "v1")), "gzip"))
	push(t, e, "live/repo", "old", img)
	mnt := mountStore(t, e, nil)
	tags := filepath.Join(mnt, "live", "repo", "@tags")

	// Look the new tag up before it exists (a negative entry), then push.
	_, err := os.Stat(filepath.Join(tags, "new"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = os.Stat(filepath.Join(mnt, "other"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	t0 := time.Now()
	push(t, e, "live/repo", "new", img)
	push(t, e, "other", "x", img)
	require.Eventually(t, func() bool {
		_, err1 := os.Stat(filepath.Join(tags, "new", "rootfs", "f"))
		_, err2 := os.Stat(filepath.Join(mnt, "other", "@tags", "x"))
		return err1 == nil && err2 == nil
	}, time.Second, 20*time.Millisecond)
	t.Logf("push visible after %v", time.Since(t0))

	require.NoError(t, e.DeleteTag(context.Background(), "live/repo", "new"))
	t0 = time.Now()
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(tags, "new"))
		ents, _ := os.ReadDir(tags)
		return errors.Is(err, fs.ErrNotExist) && len(ents) == 1
	}, time.Second, 20*time.Millisecond)
	t.Logf("delete visible after %v", time.Since(t0))
}

// TestMultiPlatform shows one root per platform of an index.
func TestMultiPlatform(t *testing.T) {
	testenv.NeedFUSE(t)
	e := enginetest.Open(t, nil)
	amd := imageOf(t, layerOf(t, makeTar(t, file("arch", 0o644, "amd64")), "gzip"))
	arm := imageOf(t, layerOf(t, makeTar(t, file("arch", 0o644, "arm64")), "none"))
	da := push(t, e, "multi", string(mustDigest(t, amd)), amd)
	dr := push(t, e, "multi", string(mustDigest(t, arm)), arm)
	idx := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d,"platform":{"os":"linux","architecture":"amd64"}},
{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}`,
		da, mustSize(t, amd), dr, mustSize(t, arm))
	_, err := e.PutManifest(context.Background(), "multi", "latest", "application/vnd.oci.image.index.v1+json", []byte(idx))
	require.NoError(t, err)
	mnt := mountStore(t, e, nil)

	pl := filepath.Join(mnt, "multi", "@tags", "latest", "@platforms")
	ents, err := os.ReadDir(pl)
	require.NoError(t, err)
	require.Len(t, ents, 2)
	for name, want := range map[string]string{"linux-amd64": "amd64", "linux-arm64-v8": "arm64"} {
		b, err := os.ReadFile(filepath.Join(pl, name, "rootfs", "arch"))
		require.NoError(t, err, name)
		assert.Equal(t, want, string(b))
	}
	_, err = os.Stat(filepath.Join(mnt, "multi", "@tags", "latest", "rootfs"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func mustDigest(t *testing.T, img interface{ Digest() (v1.Hash, error) }) digest.Digest {
	d, err := img.Digest()
	require.NoError(t, err)
	return digest.Digest(d.String())
}

func mustSize(t *testing.T, img interface{ Size() (int64, error) }) int64 {
	n, err := img.Size()
	require.NoError(t, err)
	return n
}
