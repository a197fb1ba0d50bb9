package blob_test

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/blobtest"
)

// TestRestoreUpload: an upload rebuilt from an image (header, frame
// heads, the bytes from an offset on, the tail) in another store resumes
// and commits the same blob; images that do not match their state are
// refused with ErrBadState and leave no file behind.
func TestRestoreUpload(t *testing.T) {
	ctx := context.Background()
	opts := blob.Options{FrameSize: 64 << 10}
	src, err := blob.Open(t.TempDir(), &opts)
	require.NoError(t, err)
	defer src.Close()
	data := blobtest.RandomBytes(10*(64<<10) + 999)
	w, err := src.NewWriter(ctx, "up", blob.WriterOptions{})
	require.NoError(t, err)
	_, err = w.Write(data[:7*(64<<10)+5])
	require.NoError(t, err)
	st, err := w.Checkpoint(ctx)
	require.NoError(t, err)
	heads := w.AppendFrameHeads(nil)
	f, err := src.UploadFile("up")
	require.NoError(t, err)
	file, err := io.ReadAll(f)
	f.Close()
	require.NoError(t, err)
	tail, err := src.UploadTail("up", st)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	from := st.End - 1000
	good := func() blob.UploadImage {
		return blob.UploadImage{Header: file[:blob.HeaderSize], Table: heads, From: from, Pending: file[from:st.End], Tail: tail}
	}

	for _, c := range []struct {
		name  string
		spoil func(im *blob.UploadImage, st *blob.WriterState)
	}{
		{"from-past-end", func(im *blob.UploadImage, st *blob.WriterState) { im.From = st.End + 1 }},
		{"pending-short", func(im *blob.UploadImage, st *blob.WriterState) { im.Pending = im.Pending[1:] }},
		{"no-header", func(im *blob.UploadImage, st *blob.WriterState) { im.Header = nil }},
		{"heads-missing", func(im *blob.UploadImage, st *blob.WriterState) { im.Table = im.Table[8:] }},
		{"head-garbage", func(im *blob.UploadImage, st *blob.WriterState) {
			im.Table = append([]byte{}, im.Table...)
			im.Table[5] = 0xff
		}},
		{"heads-too-long", func(im *blob.UploadImage, st *blob.WriterState) {
			im.Table = append([]byte{}, im.Table...)
			im.Table[0]++
		}},
		{"tail-short", func(im *blob.UploadImage, st *blob.WriterState) { im.Tail = im.Tail[1:] }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst, err := blob.Open(t.TempDir(), &opts)
			require.NoError(t, err)
			defer dst.Close()
			im, s := good(), st
			c.spoil(&im, &s)
			require.ErrorIs(t, dst.RestoreUpload("up", s, im), blob.ErrBadState)
			ids, err := dst.Uploads(ctx)
			require.NoError(t, err)
			require.Empty(t, ids, "nothing left behind")
		})
	}

	dst, err := blob.Open(t.TempDir(), &opts)
	require.NoError(t, err)
	defer dst.Close()
	require.NoError(t, dst.RestoreUpload("up", st, good()))
	w, err = dst.ResumeWriter(ctx, "up", st, blob.WriterOptions{})
	require.NoError(t, err)
	_, err = w.Write(data[7*(64<<10)+5:])
	require.NoError(t, err)
	d := digest.FromBytes(data)
	_, err = w.Commit(ctx, d, int64(len(data)))
	require.NoError(t, err)
	// The same upload finished where it started: the rebuilt one's file
	// is the same bytes but for the holes before From (what the parts in
	// a bucket hold; never read from the rebuilt file).
	ws, err := src.ResumeWriter(ctx, "up", st, blob.WriterOptions{})
	require.NoError(t, err)
	_, err = ws.Write(data[7*(64<<10)+5:])
	require.NoError(t, err)
	_, err = ws.Commit(ctx, d, int64(len(data)))
	require.NoError(t, err)
	read := func(s *blob.Store) []byte {
		p, err := s.Path(d)
		require.NoError(t, err)
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return b
	}
	whole, rebuilt := read(src), read(dst)
	require.Equal(t, len(whole), len(rebuilt))
	require.Equal(t, whole[:blob.HeaderSize], rebuilt[:blob.HeaderSize], "the final header")
	require.Equal(t, whole[from:], rebuilt[from:], "the frames past From and the table")
}
