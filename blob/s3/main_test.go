package s3_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/s3"
	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/internal/miniotest"
)

// startMinIO starts a MinIO server for t (testenv: a missing binary skips
// on a developer's machine and fails under CI, naming the install
// command).
func startMinIO(t testing.TB) *miniotest.Server {
	t.Helper()
	bin := miniotest.Require(t)
	return miniotest.Start(t, bin)
}

var buckets atomic.Int64

// newBucket makes an empty bucket on srv.
func newBucket(t testing.TB, srv *miniotest.Server) string {
	t.Helper()
	c := rawClient(t, srv)
	name := fmt.Sprintf("berth-%d", buckets.Add(1))
	require.NoError(t, c.MakeBucket(context.Background(), name, minio.MakeBucketOptions{}))
	return name
}

// openStore opens a Store on bucket of srv with its spool in spool.
func openStore(t *testing.T, srv *miniotest.Server, bucket, spool string, frameSize int) *s3.Store {
	t.Helper()
	s, err := s3.Open(context.Background(), storeOptions(srv, bucket, spool, frameSize, 5<<20))
	require.NoError(t, err)
	return s
}

// storeOptions are the options of a Store on bucket of srv (over https,
// trusting srv's certificate, when srv serves TLS).
func storeOptions(srv *miniotest.Server, bucket, spool string, frameSize int, partSize uint64) s3.Options {
	o := s3.Options{
		Endpoint: srv.Endpoint, Bucket: bucket, Prefix: "reg/", AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey,
		SpoolDir: spool, Blob: blob.Options{FrameSize: frameSize}, PartSize: partSize,
	}
	if srv.CA != nil {
		o.TLS, o.Transport = true, srv.Transport()
	}
	return o
}

func dataKey(t testing.TB) []byte {
	k, err := crypt.NewDataKey()
	require.NoError(t, err)
	return k
}
