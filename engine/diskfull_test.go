//go:build linux

package engine

// Disk full: on a small tmpfs a write that runs out of
// space fails with ErrStorageFull, leaves no partial blob and no index
// entry, every earlier blob and manifest still reads, and writes succeed
// again once space is freed; the same holds when pebble (the index) is the
// one that runs out. See docs/crash-safety.md.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/index"
	"github.com/berthstore/berth/internal/testenv"
)

// mountSmallTmpfs mounts a tmpfs of size (e.g. "24m") for the test and
// unmounts it at cleanup. Mounting needs root and a kernel that lets this
// process mount (testenv: a skip on a developer's machine, a failure under
// CI).
func mountSmallTmpfs(t *testing.T, size string) string {
	t.Helper()
	testenv.NeedRoot(t, "disk-full tests mount a small tmpfs")
	dir := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(dir, 0o700))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, "mounting a tmpfs (CAP_SYS_ADMIN; a container started with --privileged or --cap-add SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// freeBytes is the space available on the file system holding dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(dir, &st))
	return int64(st.Bavail) * st.Bsize
}

// fillTo writes a ballast file in dir so that about free bytes remain.
func fillTo(t *testing.T, dir, name string, free int64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	n := freeBytes(t, dir) - free
	require.Positive(t, n, "not enough room for the ballast")
	require.NoError(t, os.WriteFile(p, make([]byte, n), 0o600))
	return p
}

// diskFullImage is an image pushed before the disk filled up.
type diskFullImage struct {
	repo, tag string
	digest    digest.Digest
	payload   []byte
	layers    [][]byte
}

// checkImages reads every image back: manifest by tag and every layer.
func checkImages(t *testing.T, e *Engine, imgs []diskFullImage) {
	t.Helper()
	ctx := context.Background()
	for _, img := range imgs {
		m, err := e.GetManifest(ctx, img.repo, img.tag)
		require.NoError(t, err, "%s:%s", img.repo, img.tag)
		require.Equal(t, img.digest, m.Digest)
		require.Equal(t, img.payload, m.Payload)
		for _, l := range img.layers {
			checkBlob(t, e, img.repo, l)
		}
	}
}

// checkBlob reads blob data back from repo.
func checkBlob(t *testing.T, e *Engine, repo string, data []byte) {
	t.Helper()
	r, err := e.OpenBlob(context.Background(), repo, digest.FromBytes(data))
	require.NoError(t, err)
	defer r.Close()
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "blob %s reads back different bytes", digest.FromBytes(data))
}

// requireNoTrace checks that nothing of blob d and of any upload remains:
// no blob file, no temporary file, no blob record, no upload record.
func requireNoTrace(t *testing.T, e *Engine, d digest.Digest) {
	t.Helper()
	p, err := e.blobs.Path(d)
	require.NoError(t, err)
	assert.NoFileExists(t, p, "blob file of the refused push")
	ents, err := os.ReadDir(filepath.Join(e.Dir(), "uploads"))
	require.NoError(t, err)
	var names []string
	for _, de := range ents {
		names = append(names, de.Name())
	}
	assert.Empty(t, names, "upload files left behind")
	_, err = e.db.Blob(d)
	assert.ErrorIs(t, err, index.ErrNotFound, "blob record of the refused push")
	var ups []string
	require.NoError(t, e.db.ListUploads(func(u *index.Upload) error { ups = append(ups, u.ID); return nil }))
	assert.Empty(t, ups, "upload records left behind")
}

// pushChunked pushes data through an upload session in 1 MiB chunks with
// a Checkpoint after each, cancelling the session on error.
func pushChunked(ctx context.Context, e *Engine, repo string, data []byte) (Descriptor, error) {
	u, err := e.BeginUpload(ctx, repo)
	if err != nil {
		return Descriptor{}, err
	}
	for off := 0; off < len(data); off += 1 << 20 {
		_, err := u.Write(data[off:min(off+1<<20, len(data))])
		if err == nil {
			err = u.Checkpoint(ctx)
		}
		if err != nil {
			return Descriptor{}, errors.Join(err, u.Cancel(ctx))
		}
	}
	return u.Commit(ctx, digest.FromBytes(data), int64(len(data)))
}

// TestDiskFullBlob fills a 24 MiB tmpfs: a blob push that runs out of
// space fails with ErrStorageFull and leaves nothing; once the ballast is
// removed the same push succeeds.
func TestDiskFullBlob(t *testing.T) {
	ctx := context.Background()
	mnt := mountSmallTmpfs(t, "24m")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := Open(filepath.Join(mnt, "store"), &Options{CreateOnPush: true, FrameSize: 64 << 10, Logger: quiet})
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Close()) }()

	var imgs []diskFullImage
	for i := range 3 {
		img := diskFullImage{repo: "full/app", tag: fmt.Sprintf("v%d", i), layers: [][]byte{rnd(200 << 10), rnd(10)}}
		img.digest, img.payload = pushImage(t, e, img.repo, img.tag, img.layers...)
		imgs = append(imgs, img)
	}

	for _, tc := range []struct {
		name string
		// free is the room left by the ballast; size the blob pushed.
		free, size int64
		push       func(ctx context.Context, e *Engine, repo string, data []byte) (Descriptor, error)
	}{
		{"monolithic, blob bigger than the free space", 7 << 20, 10 << 20,
			func(ctx context.Context, e *Engine, repo string, data []byte) (Descriptor, error) {
				return e.PutBlob(ctx, repo, bytes.NewReader(data), digest.FromBytes(data))
			}},
		{"chunked, blob bigger than the free space", 7 << 20, 10 << 20, pushChunked},
		{"blob fits but eats the index's reserve", 10 << 20, 5 << 20,
			func(ctx context.Context, e *Engine, repo string, data []byte) (Descriptor, error) {
				return e.PutBlob(ctx, repo, bytes.NewReader(data), digest.FromBytes(data))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ballast := fillTo(t, mnt, "ballast", tc.free)
			defer os.Remove(ballast)
			data := rnd(int(tc.size))
			d := digest.FromBytes(data)
			_, err := tc.push(ctx, e, "full/app", data)
			require.ErrorIs(t, err, ErrStorageFull)
			t.Logf("refused: %v", err)
			requireNoTrace(t, e, d)
			checkImages(t, e, imgs)

			require.NoError(t, os.Remove(ballast))
			desc, err := tc.push(ctx, e, "full/app", data)
			require.NoError(t, err, "the push succeeds once space is freed")
			require.Equal(t, d, desc.Digest)
			checkBlob(t, e, "full/app", data)
			require.NoError(t, e.DeleteBlob(ctx, "full/app", d))
			// DeleteBlob only unlinks; drop the bytes so the next case has room.
			require.NoError(t, e.blobs.Delete(ctx, d))
			b := e.db.NewBatch()
			require.NoError(t, b.DeleteBlob(d))
			require.NoError(t, b.Commit(true))
			b.Close()
		})
	}
	checkImages(t, e, imgs)
}

// TestDiskFullIndex fills the tmpfs nearly completely and then makes only
// metadata writes (manifests with many tags, repositories) until one fails:
// it fails with ErrStorageFull, everything earlier still reads, and writes
// succeed again once space is freed.
func TestDiskFullIndex(t *testing.T) {
	ctx := context.Background()
	mnt := mountSmallTmpfs(t, "24m")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := filepath.Join(mnt, "store")
	opts := &Options{CreateOnPush: true, FrameSize: 64 << 10, Logger: quiet}
	e, err := Open(dir, opts)
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Close()) }()

	img := diskFullImage{repo: "meta/app", tag: "base", layers: [][]byte{rnd(100 << 10)}}
	img.digest, img.payload = pushImage(t, e, img.repo, img.tag, img.layers...)
	imgs := []diskFullImage{img}

	// The index keeps a free-space reserve (a quarter of this file system,
	// 6 MiB); leave more than that so that some writes succeed.
	ballast := fillTo(t, mnt, "ballast", 10<<20)
	var failure error
	for i := 0; i < 10000 && failure == nil; i++ {
		if i%4 == 3 {
			name := fmt.Sprintf("meta/repo-%04d", i)
			if _, err := e.CreateRepository(ctx, name, RepositorySettings{}); err != nil {
				failure = err
			}
			continue
		}
		payload := diskFullManifest(t, img, i)
		tags := make([]string, 32)
		for j := range tags {
			tags[j] = fmt.Sprintf("m%04d-t%02d", i, j)
		}
		res, err := e.PutManifest(ctx, img.repo, tags[0], ocispec.MediaTypeImageManifest, payload, tags[1:]...)
		if err != nil {
			failure = err
			continue
		}
		imgs = append(imgs, diskFullImage{repo: img.repo, tag: tags[len(tags)-1], digest: res.Digest, payload: payload})
	}
	require.Error(t, failure, "the file system never filled up")
	require.ErrorIs(t, failure, ErrStorageFull)
	t.Logf("%d manifests committed before: %v", len(imgs)-1, failure)
	require.Greater(t, len(imgs), 1, "some metadata writes succeed before the disk is full")
	checkImages(t, e, imgs)

	require.NoError(t, os.Remove(ballast))
	if errors.Is(e.db.Failed(), index.ErrFailed) {
		// pebble saw ENOSPC itself and stopped: a reopen recovers.
		t.Log("index failed; reopening the store")
		require.NoError(t, e.Close())
		e, err = Open(dir, opts)
		require.NoError(t, err)
	}
	_, err = e.CreateRepository(ctx, "meta/after", RepositorySettings{})
	require.NoError(t, err, "writes succeed again once space is freed")
	more := diskFullManifest(t, img, -1)
	_, err = e.PutManifest(ctx, img.repo, "after", ocispec.MediaTypeImageManifest, more)
	require.NoError(t, err)
	checkImages(t, e, imgs)
}

// diskFullManifest is a distinct image manifest of about 64 KiB (its
// annotation) over img's config and layers.
func diskFullManifest(t *testing.T, img diskFullImage, i int) []byte {
	t.Helper()
	var m ocispec.Manifest
	require.NoError(t, json.Unmarshal(img.payload, &m))
	m.Annotations = map[string]string{"org.example.i": fmt.Sprint(i), "org.example.pad": strings.Repeat(fmt.Sprintf("%x", rnd(16)), 2048)}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}
