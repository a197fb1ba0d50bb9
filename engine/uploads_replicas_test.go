package engine

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob/blobtest"
	"github.com/berthstore/berth/internal/miniotest"
	"github.com/berthstore/berth/internal/pgtest"
)

// replicaPair is two engines over one PostgreSQL database and one bucket
// prefix, each with its own data directory (two replicas), and a client
// of the bucket to look into it.
type replicaPair struct {
	a, b   *Engine
	mc     *minio.Client
	bucket string
}

// openReplicaPair starts MinIO and PostgreSQL and opens two engines on
// them. The second gets the first one's store identity and keyring (what
// every replica of a store shares).
func openReplicaPair(t *testing.T) *replicaPair {
	t.Helper()
	minioBin := miniotest.Require(t)
	pgBin := pgtest.Require(t)
	srv := miniotest.Start(t, minioBin)
	pg := pgtest.Start(t, pgBin)
	mc, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(miniotest.AccessKey, miniotest.SecretKey, "")})
	require.NoError(t, err)
	require.NoError(t, mc.MakeBucket(context.Background(), "registry", minio.MakeBucketOptions{}))
	o := *quietOptions()
	o.Metadata = pg.NewDatabase(t)
	o.ObjectStore = &ObjectStoreOptions{
		Endpoint: srv.Endpoint, Bucket: "registry", Prefix: "berth/",
		AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey,
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	a, err := Open(dirA, &o)
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	for _, f := range []string{storeIDFile, "keyring.json"} {
		b, err := os.ReadFile(filepath.Join(dirA, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dirB, f), b, 0o600))
	}
	b, err := Open(dirB, &o)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return &replicaPair{a: a, b: b, mc: mc, bucket: "registry"}
}

// uploadsInBucket lists the objects under the bucket's uploads/ and the
// multipart uploads of upload id's staging object.
func (p *replicaPair) uploadsInBucket(t *testing.T, id string) (keys, multipart []string) {
	t.Helper()
	ctx := context.Background()
	for oi := range p.mc.ListObjects(ctx, p.bucket, minio.ListObjectsOptions{Prefix: "berth/uploads/", Recursive: true}) {
		require.NoError(t, oi.Err)
		keys = append(keys, oi.Key)
	}
	for mu := range p.mc.ListIncompleteUploads(ctx, p.bucket, "berth/data/"+id, false) {
		require.NoError(t, mu.Err)
		multipart = append(multipart, mu.Key)
	}
	return keys, multipart
}

// appendChunk is one PATCH: resume the session on e, append data,
// checkpoint (the 202 answer), release.
func appendChunk(t *testing.T, e *Engine, repo, id string, data []byte) int64 {
	t.Helper()
	ctx := context.Background()
	u, err := e.ResumeUpload(ctx, repo, id)
	require.NoError(t, err)
	_, err = u.Write(data)
	require.NoError(t, err)
	require.NoError(t, u.Checkpoint(ctx))
	size := u.Size()
	require.NoError(t, u.Close())
	return size
}

func readReplicaBlob(t *testing.T, e *Engine, repo string, d digest.Digest) []byte {
	t.Helper()
	r, err := e.OpenBlob(context.Background(), repo, d)
	require.NoError(t, err)
	defer r.Close()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b
}

// TestUploadContinuedOnAnotherReplica: a chunked upload started on
// replica A (PATCH 1), continued on B (PATCH 2) and finished on A (PUT,
// where A's own handle is stale) pulls bit-exact from both; a session
// cancelled on B leaves none of A's parts or side objects in the bucket
// and is unknown to A; a stale handle never overwrites the state another
// replica recorded.
func TestUploadContinuedOnAnotherReplica(t *testing.T) {
	p := openReplicaPair(t)
	ctx := context.Background()
	const repo = "team/app"

	t.Run("patch-A-patch-B-put-A", func(t *testing.T) {
		data := blobtest.RandomBytes(41<<20 + 123)
		u, err := p.a.BeginUpload(ctx, repo)
		require.NoError(t, err)
		id := u.ID()
		_, err = u.Write(data[:18<<20])
		require.NoError(t, err)
		require.NoError(t, u.Checkpoint(ctx))
		require.NoError(t, u.Close())
		keys, _ := p.uploadsInBucket(t, id)
		assert.NotEmpty(t, keys, "the checkpoint is in the bucket")

		require.Equal(t, int64(35<<20), appendChunk(t, p.b, repo, id, data[18<<20:35<<20]))

		u, err = p.a.ResumeUpload(ctx, repo, id)
		require.NoError(t, err)
		require.Equal(t, int64(35<<20), u.Size(), "A continues from B's checkpoint, not its own handle")
		_, err = u.Write(data[35<<20:])
		require.NoError(t, err)
		d := digest.FromBytes(data)
		desc, err := u.Commit(ctx, d, int64(len(data)))
		require.NoError(t, err)
		require.Equal(t, d, desc.Digest)
		require.True(t, bytes.Equal(data, readReplicaBlob(t, p.b, repo, d)), "bit-exact from B")
		require.True(t, bytes.Equal(data, readReplicaBlob(t, p.a, repo, d)), "bit-exact from A")
		keys, mp := p.uploadsInBucket(t, id)
		assert.Empty(t, keys)
		assert.Empty(t, mp)
		_, err = p.b.ResumeUpload(ctx, repo, id)
		require.ErrorIs(t, err, ErrBlobUploadUnknown, "committed")
	})

	t.Run("cancel-on-B", func(t *testing.T) {
		u, err := p.a.BeginUpload(ctx, repo)
		require.NoError(t, err)
		id := u.ID()
		_, err = u.Write(blobtest.RandomBytes(33 << 20))
		require.NoError(t, err)
		require.NoError(t, u.Checkpoint(ctx))
		require.NoError(t, u.Close())
		ub, err := p.b.ResumeUpload(ctx, repo, id)
		require.NoError(t, err)
		_, parts := p.uploadsInBucket(t, id)
		require.NotEmpty(t, parts, "the parts are in a multipart upload")
		require.NoError(t, ub.Cancel(ctx))
		keys, mp := p.uploadsInBucket(t, id)
		assert.Empty(t, keys, "A's head, parts and side objects are gone")
		assert.Empty(t, mp, "A's multipart upload is aborted")
		_, err = p.a.ResumeUpload(ctx, repo, id)
		require.ErrorIs(t, err, ErrBlobUploadUnknown)
		ids, err := p.a.blobs.Uploads(ctx)
		require.NoError(t, err)
		assert.NotContains(t, ids, id, "A dropped its spool file")
	})

	t.Run("gc-on-B-expires-the-session", func(t *testing.T) {
		u, err := p.a.BeginUpload(ctx, repo)
		require.NoError(t, err)
		id := u.ID()
		_, err = u.Write(blobtest.RandomBytes(33 << 20))
		require.NoError(t, err)
		require.NoError(t, u.Checkpoint(ctx))
		require.NoError(t, u.Close())
		_, parts := p.uploadsInBucket(t, id)
		require.NotEmpty(t, parts)
		rep, err := p.b.CollectGarbage(ctx, GCOptions{Grace: -1, UploadTTL: time.Nanosecond})
		require.NoError(t, err)
		assert.Equal(t, 1, rep.UploadsExpired)
		keys, parts := p.uploadsInBucket(t, id)
		assert.Empty(t, keys, "the expired session's objects are gone")
		assert.Empty(t, parts, "its multipart upload is aborted")
		_, err = p.a.ResumeUpload(ctx, repo, id)
		require.ErrorIs(t, err, ErrBlobUploadUnknown)
	})

	t.Run("gc-on-B-removes-orphan-parts", func(t *testing.T) {
		// Parts and side objects whose session record is gone (a replica
		// killed between sending a first checkpoint and recording it).
		u, err := p.a.BeginUpload(ctx, repo)
		require.NoError(t, err)
		id := u.ID()
		_, err = u.Write(blobtest.RandomBytes(33 << 20))
		require.NoError(t, err)
		require.NoError(t, u.Checkpoint(ctx))
		require.NoError(t, u.Close())
		b := p.a.db.NewBatch()
		require.NoError(t, b.DeleteUpload(id))
		require.NoError(t, b.Commit(true))
		b.Close()
		time.Sleep(1100 * time.Millisecond) // object times have a second's resolution
		rep, err := p.b.CollectGarbage(ctx, GCOptions{Grace: -1})
		require.NoError(t, err)
		assert.GreaterOrEqual(t, rep.OrphanUploadsRemoved, 1)
		keys, parts := p.uploadsInBucket(t, id)
		assert.Empty(t, keys, "the orphan's objects are gone")
		assert.Empty(t, parts, "its multipart upload is aborted")
	})

	t.Run("hostile", func(t *testing.T) {
		data := blobtest.RandomBytes(9 << 20)
		u, err := p.a.BeginUpload(ctx, repo)
		require.NoError(t, err)
		id := u.ID()
		_, err = u.Write(data[:3<<20])
		require.NoError(t, err)
		require.NoError(t, u.Checkpoint(ctx))
		require.NoError(t, u.Close())

		// Another repository's name with this session's id.
		_, err = p.b.ResumeUpload(ctx, "team/other", id)
		require.ErrorIs(t, err, ErrBlobUploadUnknown)
		// A forged id.
		_, err = p.b.ResumeUpload(ctx, repo, "00000000-0000-4000-8000-000000000000")
		require.ErrorIs(t, err, ErrBlobUploadUnknown)
		_, err = p.b.ResumeUpload(ctx, repo, "../../etc")
		require.ErrorIs(t, err, ErrBlobUploadUnknown)

		// A holds the session (a slow request) while B continues it: A's
		// checkpoint is refused and B's recorded state stands.
		ua, err := p.a.ResumeUpload(ctx, repo, id)
		require.NoError(t, err)
		require.Equal(t, int64(6<<20), appendChunk(t, p.b, repo, id, data[3<<20:6<<20]))
		_, err = ua.Write(bytes.Repeat([]byte{'x'}, 1<<20))
		require.NoError(t, err)
		require.ErrorIs(t, ua.Checkpoint(ctx), ErrBlobUploadInvalid)
		require.NoError(t, ua.Close())

		u, err = p.a.ResumeUpload(ctx, repo, id)
		require.NoError(t, err)
		require.Equal(t, int64(6<<20), u.Size(), "B's state, not A's refused bytes")
		_, err = u.Write(data[6<<20:])
		require.NoError(t, err)
		d := digest.FromBytes(data)
		_, err = u.Commit(ctx, d, int64(len(data)))
		require.NoError(t, err)
		require.True(t, bytes.Equal(data, readReplicaBlob(t, p.b, repo, d)))
	})
}
