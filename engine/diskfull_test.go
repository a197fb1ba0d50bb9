package engine

// Disk full: on a small file system (internal/faultfs: a byte quota over
// a temporary directory, no root, no tmpfs) a write that runs out of
// space fails with ErrStorageFull, leaves no partial blob and no index
// entry, every earlier blob and manifest still reads, and writes succeed
// again once space is freed; the same holds when pebble (the index) is the
// one that runs out. A failing disk (an injected EIO) fails the push with
// a clear error and leaves nothing. See docs/crash-safety.md.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/index"
	"github.com/berthstore/berth/internal/faultfs"
)

// smallDisk is a file system of size bytes over a temporary directory:
// writes past it fail with ENOSPC, as a full disk's do. It returns the
// file system and the store's directory in it.
func smallDisk(t *testing.T, size int64) (*faultfs.FS, string) {
	t.Helper()
	return faultfs.New(vfs.Default, size), filepath.Join(t.TempDir(), "store")
}

// fillTo takes disk's space (as a ballast file would) so that about free
// bytes remain; the function returned frees it.
func fillTo(t *testing.T, disk *faultfs.FS, free int64) (release func()) {
	t.Helper()
	du, err := disk.GetDiskUsage("")
	require.NoError(t, err)
	n := int64(du.AvailBytes) - free
	require.Positive(t, n, "not enough room for the ballast")
	return disk.Take(n)
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

// TestDiskFullBlob fills a 24 MiB disk: a blob push that runs out of
// space fails with ErrStorageFull and leaves nothing; once the ballast is
// removed the same push succeeds.
func TestDiskFullBlob(t *testing.T) {
	ctx := context.Background()
	disk, dir := smallDisk(t, 24<<20)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := Open(dir, &Options{CreateOnPush: true, FrameSize: 64 << 10, Logger: quiet, FS: disk})
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
			release := fillTo(t, disk, tc.free)
			defer release()
			data := rnd(int(tc.size))
			d := digest.FromBytes(data)
			_, err := tc.push(ctx, e, "full/app", data)
			require.ErrorIs(t, err, ErrStorageFull)
			t.Logf("refused: %v", err)
			requireNoTrace(t, e, d)
			checkImages(t, e, imgs)

			release()
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

// TestDiskFullIndex fills the disk nearly completely and then makes only
// metadata writes (manifests with many tags, repositories) until one fails:
// it fails with ErrStorageFull, everything earlier still reads, and writes
// succeed again once space is freed.
func TestDiskFullIndex(t *testing.T) {
	ctx := context.Background()
	disk, dir := smallDisk(t, 24<<20)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := &Options{CreateOnPush: true, FrameSize: 64 << 10, Logger: quiet, FS: disk}
	e, err := Open(dir, opts)
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Close()) }()

	img := diskFullImage{repo: "meta/app", tag: "base", layers: [][]byte{rnd(100 << 10)}}
	img.digest, img.payload = pushImage(t, e, img.repo, img.tag, img.layers...)
	imgs := []diskFullImage{img}

	// The index keeps a free-space reserve (a quarter of this file system,
	// 6 MiB); leave more than that so that some writes succeed.
	release := fillTo(t, disk, 10<<20)
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

	release()
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

// TestIOErrorBlob fails the blob files' disk with EIO, as a failing disk
// does: a push whose writes or whose commit's fsync fail is refused with
// an error that wraps EIO (not ErrStorageFull) and leaves no blob, no
// upload file and no record; a read that fails is an error, never other
// bytes; and once the disk works again the same push and read succeed.
// The index is on the same file system and keeps working throughout.
func TestIOErrorBlob(t *testing.T) {
	ctx := context.Background()
	disk, dir := smallDisk(t, 256<<20)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := Open(dir, &Options{CreateOnPush: true, FrameSize: 64 << 10, Logger: quiet, FS: disk})
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Close()) }()
	img := diskFullImage{repo: "eio/app", tag: "v1", layers: [][]byte{rnd(300 << 10)}}
	img.digest, img.payload = pushImage(t, e, img.repo, img.tag, img.layers...)
	imgs := []diskFullImage{img}
	uploads := filepath.Join(dir, "uploads")

	put := func(ctx context.Context, e *Engine, repo string, data []byte) (Descriptor, error) {
		return e.PutBlob(ctx, repo, bytes.NewReader(data), digest.FromBytes(data))
	}
	for _, tc := range []struct {
		name string
		ops  faultfs.Op
		push func(ctx context.Context, e *Engine, repo string, data []byte) (Descriptor, error)
	}{
		{"monolithic, writes fail", faultfs.OpWrite, put},
		{"monolithic, the commit's fsync fails", faultfs.OpSync, put},
		{"chunked, writes fail", faultfs.OpWrite, pushChunked},
		{"chunked, checkpoint fsyncs fail", faultfs.OpSync, pushChunked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := rnd(3 << 20)
			d := digest.FromBytes(data)
			disk.Inject(tc.ops, uploads, syscall.EIO)
			_, err := tc.push(ctx, e, "eio/app", data)
			disk.Inject(0, "", nil)
			require.ErrorIs(t, err, syscall.EIO)
			require.NotErrorIs(t, err, ErrStorageFull)
			t.Logf("refused: %v", err)
			requireNoTrace(t, e, d)
			checkImages(t, e, imgs)

			desc, err := tc.push(ctx, e, "eio/app", data)
			require.NoError(t, err, "the push succeeds once the disk works")
			require.Equal(t, d, desc.Digest)
			checkBlob(t, e, "eio/app", data)
		})
	}

	// Reads: the blob files fail to read; the error is an error, and the
	// same reads succeed afterwards.
	disk.Inject(faultfs.OpRead, filepath.Join(dir, "blobs"), syscall.EIO)
	r, err := e.OpenBlob(ctx, img.repo, digest.FromBytes(img.layers[0]))
	if err == nil {
		_, err = io.ReadAll(r)
		r.Close()
	}
	require.Error(t, err, "a read of a failing disk")
	t.Logf("read refused: %v", err)
	m, err := e.GetManifest(ctx, img.repo, img.tag)
	require.NoError(t, err, "manifests are in the index: they read on")
	require.Equal(t, img.digest, m.Digest)
	disk.Inject(0, "", nil)
	checkImages(t, e, imgs)
}
