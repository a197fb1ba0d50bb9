package fuse

import (
	"archive/tar"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/logtest"
	"github.com/berthstore/berth/internal/testenv"
)

// TestSymlinksCannotLeaveTheMount mounts an image whose links aim at a
// real file of the host, outside the mount, in every way a layer can: by
// an absolute path; by a relative path that climbs out (refused when
// indexed); through a chain of links whose ".." passes the image root
// (each text harmless on its own); through a directory that a later layer
// replaces with a link; through a hard link to a symlink placed higher up.
// The image holds a decoy at the secret's path. Walked with the real
// find -L and archived with the real tar, the mount shows the decoy or
// nothing: no path resolves outside the image, no read returns the
// secret; tar -c succeeds and lists the links with their shown texts, and
// every link's size is the length of that text.
func TestSymlinksCannotLeaveTheMount(t *testing.T) {
	testenv.NeedFUSE(t)
	findPath := testenv.NeedTool(t, "find")
	tarPath := testenv.NeedTool(t, "tar")

	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret")
	secretText := "host secret " + hex.EncodeToString([]byte(randomBytes(t, 16)))
	require.NoError(t, os.WriteFile(secret, []byte(secretText), 0o644))
	secretInfo, err := os.Stat(secret)
	require.NoError(t, err)
	secretRel := strings.TrimPrefix(secret, "/") // the secret's path, inside the image

	mnt := t.TempDir()
	root := filepath.Join(mnt, "links", "@tags", "v1", "rootfs")
	// hostDepth ".." climb from the image root to the host's root; a
	// link in a directory that deep may climb that far with a text that
	// stays inside lexically.
	hostDepth := strings.Count(root, "/")
	deep := "deep" + strings.Repeat("/d", hostDepth)
	up := strings.TrimSuffix(strings.Repeat("../", hostDepth+1), "/") // deep's depth: to the image root
	naive, err := filepath.Rel(filepath.Join(root, "a"), secret)
	require.NoError(t, err)

	var l1 []tarEntry
	for p := deep; p != "."; p = filepath.Dir(p) {
		l1 = append([]tarEntry{dir(p, 0o755)}, l1...)
	}
	for p := filepath.Dir(secretRel); p != "."; p = filepath.Dir(p) {
		l1 = append(l1, dir(p, 0o755))
	}
	l1 = append(l1,
		file(secretRel, 0o644, "decoy inside the image"),
		dir("a", 0o755), dir("a/b", 0o755), dir(deep+"/h", 0o755),
		// Absolute texts.
		symlink("abs-secret", secret),
		symlink("abs-secret-dir", secretDir),
		symlink("abs-passwd", "/etc/passwd"),
		// A relative text that climbs out: refused by the indexer.
		symlink("a/naive", naive),
		// Chains: each text stays inside lexically.
		symlink("a/b/up", "../.."),
		symlink("a/b/x", "up/../../v1/manifest.json"),
		symlink(deep+"/up", up),
		symlink(deep+"/chained", "up/../"+up+"/"+secretRel),
		// Through a directory a later layer replaces with a link.
		symlink(deep+"/via-h", "h/../"+up+"/"+secretRel),
		// A hard link, at the top, to a symlink that climbs as deep as
		// its own directory is.
		symlink(deep+"/climb", up+"/"+secretRel),
		hardlink("hl-top", deep+"/climb"),
		// A link a later layer turns into a directory, and one it whites out.
		symlink("m", "."),
		symlink("via-m", "m/f"),
		symlink("w", "deep"),
		symlink("via-w", "w/d"),
		// Loops: hidden.
		symlink("self", "self"), symlink("loop-a", "loop-b"), symlink("loop-b", "loop-a"),
	)
	l2 := makeTar(t,
		symlink(deep+"/h", up),
		dir("m", 0o755), file("m/f", 0o644, "a directory in layer 2"),
		file(".wh.w", 0o644, ""),
	)
	img := imageOf(t, layerOf(t, makeTar(t, l1...), "gzip"), layerOf(t, l2, "none"))
	e := openStore(t)
	push(t, e, "links", "v1", img)
	rec := logtest.NewRecorder()
	mountStoreAt(t, e, mnt, &Options{Logger: slog.New(rec)})

	// What each link shows, read with os.Readlink, and its size.
	wantLinks := map[string]string{
		"abs-secret":      secretRel,
		"abs-secret-dir":  strings.TrimPrefix(secretDir, "/"),
		"abs-passwd":      "etc/passwd",
		"a/b/up":          "../..",
		"a/b/x":           "../../v1/manifest.json",
		deep + "/up":      up,
		deep + "/chained": up + "/" + secretRel,
		deep + "/h":       up,
		deep + "/via-h":   up + "/" + secretRel,
		deep + "/climb":   up + "/" + secretRel,
		"hl-top":          secretRel,
		"via-m":           "m/f",
		"via-w":           "w/d",
	}
	for p, want := range wantLinks {
		got, err := os.Readlink(filepath.Join(root, p))
		require.NoError(t, err, p)
		assert.Equal(t, want, got, p)
	}
	gotLinks := map[string]string{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		target, err := os.Readlink(p)
		require.NoError(t, err)
		st, err := os.Lstat(p)
		require.NoError(t, err)
		assert.Equal(t, int64(len(target)), st.Size(), "%s: Lstat size is the length of %q", p, target)
		rel, _ := filepath.Rel(root, p)
		gotLinks[rel] = target
		return nil
	}))
	assert.Equal(t, wantLinks, gotLinks, "every link shown, and no other")
	for _, hidden := range []string{"self", "loop-a", "loop-b", "a/naive"} {
		_, err := os.Lstat(filepath.Join(root, hidden))
		assert.ErrorIs(t, err, fs.ErrNotExist, hidden)
	}
	assert.Regexp(t, `symlink hidden: it cannot be resolved inside the image .*path="loop-a" target="loop-b" reason="symlink loop"`, rec.String())

	// Following them: the decoy, the layer-2 directory, or nothing.
	for p, want := range map[string]string{
		"abs-secret": "decoy inside the image", "hl-top": "decoy inside the image",
		deep + "/chained": "decoy inside the image", deep + "/via-h": "decoy inside the image",
		deep + "/climb": "decoy inside the image", "via-m": "a directory in layer 2",
	} {
		b, err := os.ReadFile(filepath.Join(root, p))
		require.NoError(t, err, p)
		assert.Equal(t, want, string(b), p)
	}
	for _, p := range []string{"abs-passwd", "a/b/x", "via-w"} {
		_, err := os.ReadFile(filepath.Join(root, p))
		assert.ErrorIs(t, err, fs.ErrNotExist, p)
	}

	// find -L walks the whole mount, following every link.
	cmd := exec.Command(findPath, "-L", mnt)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		// find exits 1 when it meets a directory loop (a link to an
		// ancestor, such as a/b/up): it says so and does not descend.
		for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			require.Contains(t, line, "File system loop detected", "find -L: %s", stderr.String())
		}
	} else {
		require.NoError(t, err, stderr.String())
	}
	paths := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("find -L %s: %d paths, exit %v, %d directory loops reported", mnt, len(paths), err,
		strings.Count(stderr.String(), "File system loop detected"))
	require.Greater(t, len(paths), 2*len(wantLinks), "find -L lists the image")
	seen := map[string]bool{}
	for _, p := range paths {
		require.True(t, p == mnt || strings.HasPrefix(p, mnt+"/"), "find -L reported %s", p)
		seen[p] = true
		if real, err := filepath.EvalSymlinks(p); err == nil {
			require.True(t, real == mnt || strings.HasPrefix(real, mnt+"/"), "%s resolves to %s, outside the mount", p, real)
		}
		st, err := os.Stat(p)
		if err != nil {
			continue // a dangling link, listed as itself
		}
		require.False(t, os.SameFile(st, secretInfo), "%s is the host's secret", p)
		if st.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			require.NoError(t, err, p)
			require.NotContains(t, string(b), secretText, p)
		}
	}
	require.True(t, seen[filepath.Join(root, deep, "chained")], "find -L lists the links it follows")
	same, err := exec.Command(findPath, "-L", mnt, "-samefile", secret).Output()
	if !errors.As(err, &exit) {
		require.NoError(t, err)
	}
	assert.Empty(t, string(same), "find -L -samefile: no path of the mount is the host's secret")

	// tar -c archives the mount (links as links) and exits 0.
	cmd = exec.Command(tarPath, "-c", "-f", "-", "-C", mnt, ".")
	stderr.Reset()
	cmd.Stderr = &stderr
	archive, err := cmd.Output()
	require.NoError(t, err, "tar -c: %s", stderr.String())
	tr := tar.NewReader(bytes.NewReader(archive))
	prefix := "./links/@tags/v1/rootfs/"
	archived := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		require.NotContains(t, string(body), secretText, h.Name)
		if rel, ok := strings.CutPrefix(h.Name, prefix); ok {
			switch h.Typeflag {
			case tar.TypeSymlink:
				archived[rel] = h.Linkname
			case tar.TypeLink: // tar's own hard link to a name archived before
				archived[rel] = "hardlink:" + h.Linkname
			}
		}
	}
	t.Logf("tar -c -C %s .: %d bytes, the image's links: %v", mnt, len(archive), archived)
	for p, want := range wantLinks {
		got := archived[p]
		if strings.HasPrefix(got, "hardlink:") {
			continue // the same inode as a link listed under another name
		}
		assert.Equal(t, want, got, "tar lists %s", p)
	}
	var st syscall.Stat_t
	require.NoError(t, syscall.Lstat(filepath.Join(root, "hl-top"), &st))
	assert.Equal(t, uint64(1), uint64(st.Nlink), "hl-top resolves elsewhere than the link it was made from: an inode of its own")
}
