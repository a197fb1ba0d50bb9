package s3_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/blobtest"
	"github.com/berthstore/berth/blob/s3"
	"github.com/berthstore/berth/internal/miniotest"
)

// bucketKeys lists the keys under prefix of bucket, and the keys of its
// incomplete multipart uploads.
func bucketKeys(t *testing.T, srv *miniotest.Server, bucket, prefix string) (keys, multipart []string) {
	t.Helper()
	c := rawClient(t, srv)
	ctx := context.Background()
	for oi := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		require.NoError(t, oi.Err)
		keys = append(keys, oi.Key)
	}
	for mu := range c.ListIncompleteUploads(ctx, bucket, prefix, true) {
		require.NoError(t, mu.Err)
		multipart = append(multipart, mu.Key)
	}
	return keys, multipart
}

// TestResumeOnAnotherInstance: an upload checkpointed on one Store
// continues on another one with its own spool (another replica) and back,
// chunk sizes around the part size and the frame size, plain and sealed;
// the blob commits bit-exact, reads with the same reader as a blob put in
// one go, and nothing is left under uploads/ afterwards.
func TestResumeOnAnotherInstance(t *testing.T) {
	srv := startMinIO(t)
	const frame = 64 << 10
	for _, c := range []struct {
		name   string
		sealed bool
		chunks []int // bytes per step; the store alternates between steps
		data   func(t *testing.T, n int) []byte
	}{
		{"small-chunks-plain", false, []int{1000, 70 << 10, 3 << 20, 1}, func(t *testing.T, n int) []byte { return blobtest.RandomBytes(n) }},
		{"parts-sealed", true, []int{6 << 20, 2<<20 + 17, 11 << 20, 5 << 20, 300}, func(t *testing.T, n int) []byte { return blobtest.RandomBytes(n) }},
		{"parts-compressible-sealed", true, []int{12 << 20, 9 << 20, 1 << 20}, func(t *testing.T, n int) []byte { return blobtest.SourceTar(t, n) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			bucket := newBucket(t, srv)
			stores := []*s3.Store{
				openStore(t, srv, bucket, t.TempDir(), frame),
				openStore(t, srv, bucket, t.TempDir(), frame),
			}
			defer func() {
				for _, s := range stores {
					s.Close()
				}
			}()
			var key []byte
			if c.sealed {
				key = dataKey(t)
			}
			total := 0
			for _, n := range c.chunks {
				total += n
			}
			data := c.data(t, total)
			w, err := stores[0].NewWriter(ctx, "up-1", blob.WriterOptions{DataKey: key})
			require.NoError(t, err)
			off := 0
			for i, n := range c.chunks {
				_, err = w.Write(data[off : off+n])
				require.NoError(t, err)
				off += n
				st, err := w.Checkpoint(ctx)
				require.NoError(t, err)
				require.Equal(t, int64(off), st.Size)
				if i < len(c.chunks)-1 {
					require.NoError(t, w.Close())
					w, err = stores[(i+1)%2].ResumeWriter(ctx, "up-1", st, blob.WriterOptions{DataKey: key})
					require.NoError(t, err, "resume on store %d", (i+1)%2)
					require.Equal(t, int64(off), w.Size())
				}
			}
			d := digest.FromBytes(data)
			info, err := w.Commit(ctx, d, int64(len(data)))
			require.NoError(t, err)
			assert.Equal(t, int64(len(data)), info.Size)
			for _, s := range stores {
				r, err := s.Open(ctx, d, key)
				require.NoError(t, err)
				got, err := io.ReadAll(r)
				require.NoError(t, err)
				require.NoError(t, r.Close())
				require.True(t, bytes.Equal(data, got), "bit-exact")
				si, err := s.Stat(ctx, d)
				require.NoError(t, err)
				assert.Equal(t, info.StoredSize, si.StoredSize)
			}
			// The same bytes put in one go read the same.
			d2 := blobtest.Put(t, stores[1], "one-go", key, data)
			require.Equal(t, d, d2)
			keys, _ := bucketKeys(t, srv, bucket, "reg/uploads/")
			assert.Empty(t, keys, "no upload objects left")
			_, mp := bucketKeys(t, srv, bucket, "reg/data/up-1")
			assert.Empty(t, mp, "no multipart uploads left")
			// The replica that wrote an earlier step keeps its stale spool
			// file until its gc removes it (no session holds it).
			for _, s := range stores {
				ids, err := s.Uploads(ctx)
				require.NoError(t, err)
				for _, id := range ids {
					require.NoError(t, s.RemoveUpload(id))
				}
			}
		})
	}
}

// TestResumeFromOlderCheckpoint: a replica killed after it sent a
// checkpoint's parts and side object but before the state was recorded
// loses nothing: another replica resumes from the last recorded state
// (its parts and side slot untouched), receives different bytes from
// there, and the blob is those bytes.
func TestResumeFromOlderCheckpoint(t *testing.T) {
	srv := startMinIO(t)
	ctx := context.Background()
	bucket := newBucket(t, srv)
	a := openStore(t, srv, bucket, t.TempDir(), 64<<10)
	defer a.Close()
	b := openStore(t, srv, bucket, t.TempDir(), 64<<10)
	defer b.Close()
	key := dataKey(t)
	first := blobtest.RandomBytes(7 << 20)
	w, err := a.NewWriter(ctx, "up-2", blob.WriterOptions{DataKey: key})
	require.NoError(t, err)
	_, err = w.Write(first)
	require.NoError(t, err)
	recorded, err := w.Checkpoint(ctx)
	require.NoError(t, err)
	// Not acknowledged: sent, then the process dies before recording.
	_, err = w.Write(blobtest.RandomBytes(13 << 20))
	require.NoError(t, err)
	_, err = w.Checkpoint(ctx)
	require.NoError(t, err)
	// (no Close: the process is gone)
	rest := blobtest.RandomBytes(9<<20 + 5)
	w2, err := b.ResumeWriter(ctx, "up-2", recorded, blob.WriterOptions{DataKey: key})
	require.NoError(t, err)
	_, err = w2.Write(rest)
	require.NoError(t, err)
	data := append(append([]byte{}, first...), rest...)
	d := digest.FromBytes(data)
	_, err = w2.Commit(ctx, d, int64(len(data)))
	require.NoError(t, err)
	r, err := a.Open(ctx, d, key)
	require.NoError(t, err)
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	r.Close()
	require.True(t, bytes.Equal(data, got))
	keys, _ := bucketKeys(t, srv, bucket, "reg/uploads/")
	assert.Empty(t, keys)
	_, mp := bucketKeys(t, srv, bucket, "reg/data/up-2")
	assert.Empty(t, mp)
}

// TestCancelAndOrphans: Cancel on another replica removes the parts and
// side objects a first one sent; an upload nobody records is listed by
// Uploads, aged by UploadModTime and removed by RemoveUpload (gc's
// calls) with its multipart upload aborted.
func TestCancelAndOrphans(t *testing.T) {
	srv := startMinIO(t)
	ctx := context.Background()
	bucket := newBucket(t, srv)
	a := openStore(t, srv, bucket, t.TempDir(), 64<<10)
	defer a.Close()
	b := openStore(t, srv, bucket, t.TempDir(), 64<<10)
	defer b.Close()
	w, err := a.NewWriter(ctx, "up-3", blob.WriterOptions{})
	require.NoError(t, err)
	_, err = w.Write(blobtest.RandomBytes(12 << 20))
	require.NoError(t, err)
	st, err := w.Checkpoint(ctx)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	keys, _ := bucketKeys(t, srv, bucket, "reg/uploads/up-3/")
	require.NotEmpty(t, keys)
	_, mp := bucketKeys(t, srv, bucket, "reg/data/up-3")
	require.NotEmpty(t, mp, "a multipart upload holds the parts")
	w2, err := b.ResumeWriter(ctx, "up-3", st, blob.WriterOptions{})
	require.NoError(t, err)
	require.NoError(t, w2.Cancel())
	keys, _ = bucketKeys(t, srv, bucket, "reg/uploads/")
	assert.Empty(t, keys)
	_, mp = bucketKeys(t, srv, bucket, "reg/data/up-3")
	assert.Empty(t, mp)
	_, err = b.ResumeWriter(ctx, "up-3", st, blob.WriterOptions{})
	require.ErrorIs(t, err, blob.ErrBadState, "a cancelled upload does not resume from the bucket")
	require.NoError(t, a.RemoveUpload("up-3"))

	// An orphan: sent, never recorded, its writer gone.
	w, err = a.NewWriter(ctx, "up-4", blob.WriterOptions{})
	require.NoError(t, err)
	_, err = w.Write(blobtest.RandomBytes(11 << 20))
	require.NoError(t, err)
	_, err = w.Checkpoint(ctx)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	ids, err := b.Uploads(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"up-4"}, ids, "another replica sees the orphan in the bucket")
	mt, err := b.UploadModTime(ctx, "up-4")
	require.NoError(t, err)
	assert.False(t, mt.IsZero())
	_, mp = bucketKeys(t, srv, bucket, "reg/data/up-4")
	require.NotEmpty(t, mp)
	require.NoError(t, b.RemoveUpload("up-4"))
	keys, _ = bucketKeys(t, srv, bucket, "reg/uploads/")
	assert.Empty(t, keys)
	_, mp = bucketKeys(t, srv, bucket, "reg/data/up-4")
	assert.Empty(t, mp, "its multipart upload is aborted")
	ids, err = b.Uploads(ctx)
	require.NoError(t, err)
	assert.Empty(t, ids)
	ids, err = a.Uploads(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"up-4"}, ids, "a's spool file stays until a's gc")
	require.NoError(t, a.RemoveUpload("up-4"))
}

// TestCheckpointRestBesideTheBackground: with parts of 8 MiB, a
// checkpoint whose bytes past the last whole part are at least S3's 5 MiB
// sends them as a smaller part, queued beside the part the background
// still has in flight; a later checkpoint of the same writer goes on from
// there, and another replica resumes from the recorded state and commits
// bit-exact.
func TestCheckpointRestBesideTheBackground(t *testing.T) {
	t.Run("http", func(t *testing.T) { testCheckpointRest(t, startMinIO(t)) })
	// Over TLS minio-go signs and checksums bodies its own way unless
	// told otherwise: the parts' CRC32C trailers must hold there too.
	t.Run("https", func(t *testing.T) { testCheckpointRest(t, miniotest.StartTLS(t, miniotest.Require(t))) })
}

func testCheckpointRest(t *testing.T, srv *miniotest.Server) {
	ctx := context.Background()
	bucket := newBucket(t, srv)
	open := func() *s3.Store {
		s, err := s3.Open(ctx, storeOptions(srv, bucket, t.TempDir(), 64<<10, 8<<20))
		require.NoError(t, err)
		return s
	}
	a, b := open(), open()
	defer a.Close()
	defer b.Close()
	key := dataKey(t)
	data := blobtest.RandomBytes(34 << 20)
	write := func(w *s3.Writer, p []byte) {
		for len(p) > 0 { // in pieces, as a request body arrives
			n := min(len(p), 1<<20)
			_, err := w.Write(p[:n])
			require.NoError(t, err)
			p = p[n:]
		}
	}
	sizes := func(st blob.WriterState) []int64 {
		var rs struct {
			PartSize int64    `json:"partSize"`
			Sizes    []int64  `json:"sizes"`
			Sums     []string `json:"sums"`
		}
		require.NoError(t, json.Unmarshal(st.Backend, &rs))
		require.Equal(t, int64(8<<20), rs.PartSize)
		require.Len(t, rs.Sums, len(rs.Sizes), "a CRC32C for every part")
		return rs.Sizes
	}

	w, err := a.NewWriter(ctx, "up-rest", blob.WriterOptions{DataKey: key})
	require.NoError(t, err)
	write(w, data[:22<<20]) // head [0, 8), part 2 in the background, about 6 MiB more
	st, err := w.Checkpoint(ctx)
	require.NoError(t, err)
	got := sizes(st)
	require.Len(t, got, 2, "part 2 and the rest as part 3")
	assert.Equal(t, int64(8<<20), got[0])
	assert.GreaterOrEqual(t, got[1], int64(5<<20))
	assert.Less(t, got[1], int64(8<<20))

	write(w, data[22<<20:31<<20]) // one whole part more; the rest in the side object
	st, err = w.Checkpoint(ctx)
	require.NoError(t, err)
	got = sizes(st)
	require.Len(t, got, 3)
	assert.Equal(t, int64(8<<20), got[2])
	require.NoError(t, w.Close())

	w, err = b.ResumeWriter(ctx, "up-rest", st, blob.WriterOptions{DataKey: key})
	require.NoError(t, err, "resume on another replica")
	write(w, data[31<<20:])
	d := digest.FromBytes(data)
	_, err = w.Commit(ctx, d, int64(len(data)))
	require.NoError(t, err)
	for _, s := range []*s3.Store{a, b} {
		require.True(t, bytes.Equal(data, readAll(t, s, d, key)), "bit-exact")
	}
	keys, mp := bucketKeys(t, srv, bucket, "reg/uploads/")
	assert.Empty(t, keys, "no upload objects left")
	assert.Empty(t, mp)
}
