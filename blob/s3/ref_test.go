package s3_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/blobtest"
	"github.com/berthstore/berth/blob/s3"
	"github.com/berthstore/berth/internal/miniotest"
)

// pushInParts writes data to upload id of s in two steps with a
// Checkpoint between them and commits it.
func pushInParts(t testing.TB, s *s3.Store, id string, key, data []byte) (digest.Digest, blob.Info) {
	t.Helper()
	ctx := context.Background()
	w, err := s.NewWriter(ctx, id, blob.WriterOptions{DataKey: key})
	require.NoError(t, err)
	half := len(data) / 2
	_, err = w.ReadFrom(bytes.NewReader(data[:half]))
	require.NoError(t, err)
	_, err = w.Checkpoint(ctx)
	require.NoError(t, err)
	_, err = w.Write(data[half:])
	require.NoError(t, err)
	d := digest.FromBytes(data)
	info, err := w.Commit(ctx, d, int64(len(data)))
	require.NoError(t, err)
	return d, info
}

// rawClient is a minio-go client of srv's root user (over https when srv
// serves TLS).
func rawClient(t testing.TB, srv *miniotest.Server) *minio.Client {
	t.Helper()
	c, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(miniotest.AccessKey, miniotest.SecretKey, ""),
		Secure: srv.CA != nil, Transport: srv.Transport()})
	require.NoError(t, err)
	return c
}

func readAll(t *testing.T, s *s3.Store, d digest.Digest, key []byte) []byte {
	t.Helper()
	r, err := s.Open(context.Background(), d, key)
	require.NoError(t, err)
	defer r.Close()
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	return got
}

// TestBlobPushedInPartsIsAReference: a blob whose parts went to the
// bucket while it was pushed is not copied at commit: its key is a
// reference to the completed staging object, which Open, Stat, Walk and
// Delete follow; nothing is left under uploads/. The same bytes put again
// in one go replace the reference and its data object.
func TestBlobPushedInPartsIsAReference(t *testing.T) {
	srv := startMinIO(t)
	ctx := context.Background()
	bucket := newBucket(t, srv)
	s := openStore(t, srv, bucket, t.TempDir(), 64<<10)
	defer s.Close()
	mc := rawClient(t, srv)
	key := dataKey(t)
	data := blobtest.RandomBytes(23<<20 + 11)
	d, info := pushInParts(t, s, "up-r1", key, data)

	blobKey, err := s.Key(d)
	require.NoError(t, err)
	oi, err := mc.StatObject(ctx, bucket, blobKey, minio.StatObjectOptions{})
	require.NoError(t, err)
	assert.Less(t, oi.Size, int64(blob.HeaderSize), "the blob's key holds a reference")
	assert.NotEmpty(t, oi.UserMetadata["Berth-Ref"], "naming its data object")
	oi, err = mc.StatObject(ctx, bucket, "reg/data/up-r1", minio.StatObjectOptions{})
	require.NoError(t, err)
	assert.Equal(t, info.StoredSize, oi.Size, "the staging object holds the stored bytes")
	keys, mp := bucketKeys(t, srv, bucket, "reg/uploads/")
	assert.Empty(t, keys)
	assert.Empty(t, mp)

	require.True(t, bytes.Equal(data, readAll(t, s, d, key)), "bit-exact")
	si, err := s.Stat(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, info.StoredSize, si.StoredSize)
	assert.Equal(t, int64(len(data)), si.Size)
	walked := map[digest.Digest]int64{}
	require.NoError(t, s.Walk(ctx, func(d digest.Digest, size int64) error { walked[d] = size; return nil }))
	assert.Equal(t, map[digest.Digest]int64{d: info.StoredSize}, walked)

	// The same bytes in one go: a full object replaces the reference.
	require.Equal(t, d, blobtest.Put(t, s, "one-go", key, data))
	_, err = mc.StatObject(ctx, bucket, "reg/data/up-r1", minio.StatObjectOptions{})
	require.Error(t, err, "the replaced reference's data object is removed")
	require.True(t, bytes.Equal(data, readAll(t, s, d, key)))

	// Pushed in parts again, then deleted: reference and data go.
	d2, _ := pushInParts(t, s, "up-r2", key, data)
	require.Equal(t, d, d2)
	require.NoError(t, s.Delete(ctx, d))
	_, err = s.Stat(ctx, d)
	require.ErrorIs(t, err, blob.ErrNotFound)
	all, _ := bucketKeys(t, srv, bucket, "reg/")
	assert.Empty(t, all)
}

// TestReferenceCrashes: what a commit or a Delete stopped half way leaves
// is cleaned up without losing a committed blob. A removal of the upload
// (Cancel, gc) after a commit that linked its staging object but did not
// clean up keeps the data; one after a commit that completed the staging
// object but did not link it removes the data; a reference whose data
// object is gone reads as a missing blob and Delete removes it; a
// damaged or hostile reference is ErrCorrupt and names nothing outside
// the store's staging objects.
func TestReferenceCrashes(t *testing.T) {
	srv := startMinIO(t)
	ctx := context.Background()
	bucket := newBucket(t, srv)
	s := openStore(t, srv, bucket, t.TempDir(), 64<<10)
	defer s.Close()
	mc := rawClient(t, srv)
	key := dataKey(t)
	data := blobtest.RandomBytes(17 << 20)
	d, _ := pushInParts(t, s, "up-c1", key, data)
	blobKey, err := s.Key(d)
	require.NoError(t, err)
	put := func(k, body string) {
		_, err := mc.PutObject(ctx, bucket, k, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
		require.NoError(t, err)
	}

	// Linked, clean-up not done: the marker and a side object remain.
	put("reg/uploads/up-c1/blob", blobKey)
	put("reg/uploads/up-c1/side0", "x")
	require.NoError(t, s.RemoveUpload("up-c1"))
	keys, _ := bucketKeys(t, srv, bucket, "reg/uploads/")
	assert.Empty(t, keys)
	require.True(t, bytes.Equal(data, readAll(t, s, d, key)), "the blob's data stays")

	// Completed, not linked (the marker may name the blob already).
	put("reg/data/up-c2", "staged bytes")
	put("reg/uploads/up-c2/open", "")
	put("reg/uploads/up-c2/blob", blobKey)
	require.NoError(t, s.RemoveUpload("up-c2"))
	_, err = mc.StatObject(ctx, bucket, "reg/data/up-c2", minio.StatObjectOptions{})
	require.Error(t, err, "an unlinked staging object is removed with its upload")
	keys, _ = bucketKeys(t, srv, bucket, "reg/uploads/")
	assert.Empty(t, keys)

	// A Delete stopped between the data object and the reference.
	require.NoError(t, mc.RemoveObject(ctx, bucket, "reg/data/up-c1", minio.RemoveObjectOptions{}))
	_, err = s.Stat(ctx, d)
	require.ErrorIs(t, err, blob.ErrNotFound)
	_, err = s.Open(ctx, d, key)
	require.ErrorIs(t, err, blob.ErrNotFound)
	var walked []digest.Digest
	require.NoError(t, s.Walk(ctx, func(d digest.Digest, _ int64) error { walked = append(walked, d); return nil }))
	assert.Equal(t, []digest.Digest{d}, walked, "gc's walk finds it")
	require.NoError(t, s.Delete(ctx, d))
	_, err = mc.StatObject(ctx, bucket, blobKey, minio.StatObjectOptions{})
	require.Error(t, err)

	// Hostile references: outside the staging objects, bad sizes, none;
	// as empty objects (older stores) and as this store writes them.
	put("reg/OWNER", "someone")
	for _, body := range []string{"", "BERTHREF"} {
		for _, meta := range []map[string]string{
			{"Berth-Ref": "../OWNER", "Berth-Ref-Size": "9999", "Berth-Ref-Etag": "e"},
			{"Berth-Ref": "data/../OWNER", "Berth-Ref-Size": "9999", "Berth-Ref-Etag": "e"},
			{"Berth-Ref": "blobs/sha256/" + d.Encoded(), "Berth-Ref-Size": "9999", "Berth-Ref-Etag": "e"},
			{"Berth-Ref": "data/up-c1", "Berth-Ref-Size": "-1", "Berth-Ref-Etag": "e"},
			{"Berth-Ref": "data/up-c1", "Berth-Ref-Size": "9999"},
			{},
		} {
			_, err := mc.PutObject(ctx, bucket, blobKey, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{UserMetadata: meta})
			require.NoError(t, err)
			_, err = s.Stat(ctx, d)
			require.ErrorIs(t, err, blob.ErrCorrupt, "%q %v", body, meta)
			_, err = s.Open(ctx, d, key)
			require.ErrorIs(t, err, blob.ErrCorrupt, "%q %v", body, meta)
			require.NoError(t, s.Delete(ctx, d), "a damaged reference is deleted")
			_, err = mc.StatObject(ctx, bucket, "reg/OWNER", minio.StatObjectOptions{})
			require.NoError(t, err, "and nothing it names")
		}
	}

	// A well-formed reference to a data object that is not the one it
	// was made for: another size, another version, not a blob.
	d3, _ := pushInParts(t, s, "up-c3", key, data)
	require.Equal(t, d, d3)
	oi, err := mc.StatObject(ctx, bucket, blobKey, minio.StatObjectOptions{})
	require.NoError(t, err)
	good := oi.UserMetadata
	require.True(t, bytes.Equal(data, readAll(t, s, d, key)))
	for _, tc := range []struct {
		name string
		meta map[string]string
	}{
		{"another size", map[string]string{"Berth-Ref": "data/up-c3", "Berth-Ref-Size": "9999", "Berth-Ref-Etag": good["Berth-Ref-Etag"]}},
		{"another version", map[string]string{"Berth-Ref": "data/up-c3", "Berth-Ref-Size": good["Berth-Ref-Size"], "Berth-Ref-Etag": "0123abcd"}},
	} {
		_, err := mc.PutObject(ctx, bucket, blobKey, strings.NewReader("BERTHREF"), 8, minio.PutObjectOptions{UserMetadata: tc.meta})
		require.NoError(t, err)
		_, err = s.Open(ctx, d, key)
		require.ErrorIs(t, err, blob.ErrCorrupt, tc.name)
	}
	put("reg/data/up-c4", "tiny")
	_, err = mc.PutObject(ctx, bucket, blobKey, strings.NewReader("BERTHREF"), 8, minio.PutObjectOptions{
		UserMetadata: map[string]string{"Berth-Ref": "data/up-c4", "Berth-Ref-Size": "4", "Berth-Ref-Etag": "e"}})
	require.NoError(t, err)
	_, err = s.Open(ctx, d, key)
	require.ErrorIs(t, err, blob.ErrCorrupt, "a reference of fewer bytes than a header")
}
