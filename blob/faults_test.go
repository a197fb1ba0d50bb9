package blob_test

// A full disk and a failing one, on internal/faultfs (a byte quota and
// injected errors over a temporary directory: no root, no tmpfs): the
// store fails with a clear error, keeps no half-written blob, and works
// again once the disk does.

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/blobtest"
	"github.com/berthstore/berth/internal/faultfs"
)

// faultStore is a sealed, compressing store on a faultfs of limit bytes
// over a temporary directory.
func faultStore(t *testing.T, limit int64) (*blob.Store, *faultfs.FS, string) {
	t.Helper()
	disk := faultfs.New(vfs.Default, limit)
	dir := t.TempDir()
	s := openStore(t, config{sealed: true, compress: true, fs: disk}, dir)
	return s, disk, dir
}

// requireNoUploadFiles checks that no temporary file of any upload is left.
func requireNoUploadFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "uploads"))
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	require.Empty(t, names, "upload files left behind")
}

// requireReads checks that blob d reads back as data.
func requireReads(t *testing.T, s *blob.Store, d digest.Digest, key, data []byte) {
	t.Helper()
	r, err := s.Open(context.Background(), d, key)
	require.NoError(t, err)
	defer r.Close()
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "blob %s reads back other bytes", d)
}

// write streams data into a new writer and commits it, checkpointing
// every chunk bytes when chunk > 0; on failure it returns the writer
// (still open) and the error.
func write(ctx context.Context, s *blob.Store, id string, key, data []byte, chunk int) (*blob.Writer, error) {
	w, err := s.NewWriter(ctx, id, blob.WriterOptions{DataKey: key})
	if err != nil {
		return nil, err
	}
	step := len(data)
	if chunk > 0 {
		step = chunk
	}
	for off := 0; off < len(data); off += step {
		if _, err := w.Write(data[off:min(off+step, len(data))]); err != nil {
			return w, err
		}
		if chunk > 0 {
			if _, err := w.Checkpoint(ctx); err != nil {
				return w, err
			}
		}
	}
	if _, err := w.Commit(ctx, digest.FromBytes(data), int64(len(data))); err != nil {
		return w, err
	}
	return nil, nil
}

// TestNoSpace fills a 4 MiB disk: a blob that does not fit fails with
// ErrNoSpace (wrapping ENOSPC), streamed or checkpointed; its writer
// cancels and leaves nothing; every earlier blob reads; once space is
// freed the same blob commits.
func TestNoSpace(t *testing.T) {
	ctx := context.Background()
	s, disk, dir := faultStore(t, 4<<20)
	key := keyFor(t, config{sealed: true})
	small := blobtest.RandomBytes(300 << 10)
	ds := blobtest.Put(t, s, "small", key, small)

	for _, chunk := range []int{0, 1 << 20} {
		big := blobtest.RandomBytes(6 << 20)
		d := digest.FromBytes(big)
		w, err := write(ctx, s, "big", key, big, chunk)
		require.ErrorIs(t, err, blob.ErrNoSpace)
		require.ErrorIs(t, err, syscall.ENOSPC)
		t.Logf("chunk %d: refused: %v", chunk, err)
		require.NoError(t, w.Cancel())
		requireNoUploadFiles(t, dir)
		_, err = s.Stat(ctx, d)
		require.ErrorIs(t, err, blob.ErrNotFound, "no half-written blob")
		requireReads(t, s, ds, key, small)

		disk.SetLimit(16 << 20)
		_, err = write(ctx, s, "big", key, big, chunk)
		require.NoError(t, err, "the blob commits once space is freed")
		requireReads(t, s, d, key, big)
		require.NoError(t, s.Delete(ctx, d))
		disk.SetLimit(4 << 20)
	}
}

// TestIOError fails the disk with EIO, as a failing one does: on a write
// in the middle of a blob, on the fsync of its commit, on a checkpoint's
// fsync, and on reads. Each is a clear error that wraps EIO (and is not
// ErrNoSpace); no half-written blob is visible; the store works once the
// disk does.
func TestIOError(t *testing.T) {
	ctx := context.Background()
	s, disk, dir := faultStore(t, 1<<40)
	key := keyFor(t, config{sealed: true})
	old := blobtest.RandomBytes(200 << 10)
	dold := blobtest.Put(t, s, "old", key, old)
	uploads := filepath.Join(dir, "uploads")

	for _, tc := range []struct {
		name  string
		ops   faultfs.Op
		chunk int
	}{
		{"writes fail in the middle of the blob", faultfs.OpWrite, 0},
		{"the commit's fsync fails", faultfs.OpSync, 0},
		{"a checkpoint's fsync fails", faultfs.OpSync, 256 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := blobtest.RandomBytes(1 << 20)
			d := digest.FromBytes(data)
			w, err := s.NewWriter(ctx, "eio", blob.WriterOptions{DataKey: key})
			require.NoError(t, err)
			_, err = w.Write(data[:256<<10])
			require.NoError(t, err)
			if tc.chunk > 0 {
				_, err = w.Checkpoint(ctx)
				require.NoError(t, err)
			}
			disk.Inject(tc.ops, uploads, syscall.EIO)
			_, err = w.Write(data[256<<10:])
			if err == nil && tc.chunk > 0 {
				_, err = w.Checkpoint(ctx)
			}
			if err == nil {
				_, err = w.Commit(ctx, d, int64(len(data)))
			}
			disk.Inject(0, "", nil)
			require.ErrorIs(t, err, syscall.EIO)
			require.NotErrorIs(t, err, blob.ErrNoSpace)
			t.Logf("refused: %v", err)
			_, err = w.Commit(ctx, d, int64(len(data)))
			require.Error(t, err, "a writer that failed stays failed")
			_, err = s.Stat(ctx, d)
			require.ErrorIs(t, err, blob.ErrNotFound, "no half-written blob")
			require.NoError(t, w.Cancel())
			requireNoUploadFiles(t, dir)
			requireReads(t, s, dold, key, old)

			_, err = write(ctx, s, "eio", key, data, tc.chunk)
			require.NoError(t, err, "the store works once the disk does")
			requireReads(t, s, d, key, data)
			require.NoError(t, s.Delete(ctx, d))
		})
	}

	t.Run("reads fail", func(t *testing.T) {
		blobs := filepath.Join(dir, "blobs")
		disk.Inject(faultfs.OpRead, blobs, syscall.EIO)
		_, err := s.Open(ctx, dold, key)
		require.ErrorIs(t, err, syscall.EIO, "opening")
		disk.Inject(0, "", nil)

		r, err := s.Open(ctx, dold, key)
		require.NoError(t, err)
		defer r.Close()
		disk.Inject(faultfs.OpRead, blobs, syscall.EIO)
		buf := make([]byte, 4096)
		_, err = r.ReadAt(buf, 100<<10)
		// A frame that cannot be read is ErrCorrupt (readErr) that
		// wraps the disk's error: no bytes of it are returned.
		require.ErrorIs(t, err, blob.ErrCorrupt, "reading a frame")
		require.ErrorIs(t, err, syscall.EIO, "reading a frame")
		disk.Inject(0, "", nil)
		got := make([]byte, len(old))
		_, err = r.ReadAt(got, 0)
		require.NoError(t, err, "the same reader reads once the disk does")
		require.Equal(t, old, got)
	})
}
