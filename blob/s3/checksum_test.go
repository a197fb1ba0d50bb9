package s3_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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

// corruptingTransport changes one byte of every PUT body of at least
// 64 KiB while corrupt is set, and notes how each PUT body was
// protected.
type corruptingTransport struct {
	base    http.RoundTripper
	corrupt atomic.Bool
	mu      sync.Mutex
	signed  int // PUTs with a payload signature
	bodies  int // PUTs with a body
	summed  int // of those, with a CRC32C header or trailer
}

func (c *corruptingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPut || r.Body == nil || r.ContentLength == 0 {
		return c.base.RoundTrip(r)
	}
	c.mu.Lock()
	c.bodies++
	if strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") ||
		len(r.Header.Get("X-Amz-Content-Sha256")) == 64 {
		c.signed++
	}
	if r.Header.Get("X-Amz-Checksum-Crc32c") != "" || strings.EqualFold(r.Header.Get("X-Amz-Trailer"), "x-amz-checksum-crc32c") {
		c.summed++
	}
	c.mu.Unlock()
	if c.corrupt.Load() && r.ContentLength >= 64<<10 {
		r = r.Clone(r.Context())
		r.Body = &flipByte{r: r.Body, at: 40 << 10}
	}
	return c.base.RoundTrip(r)
}

// flipByte is a body with byte at changed.
type flipByte struct {
	r   io.ReadCloser
	at  int64
	off int64
}

func (f *flipByte) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.at >= f.off && f.at < f.off+int64(n) {
		p[f.at-f.off] ^= 0x5a
	}
	f.off += int64(n)
	return n, err
}

func (f *flipByte) Close() error { return f.r.Close() }

// TestChecksumInTransit: every body sent to the bucket carries a CRC32C
// and no payload signature; a body changed in transit is refused by the
// server, whether it went as one PUT (checksum header) or in parts
// (checksum trailer; at commit or while the body arrived), as ErrChecksum wrapped in blob.ErrUnavailable;
// the same Commit sends again once the bytes arrive intact, and the blob
// reads back bit-exact.
func TestChecksumInTransit(t *testing.T) {
	srv := startMinIO(t)
	for _, c := range []struct {
		name string
		size int
	}{
		{"one-put", 1 << 20},
		{"one-go-in-parts", 9 << 20}, // committed before any part went: sent in parts at commit
		{"parts", 23 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			ct := &corruptingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
			bucket := newBucket(t, srv)
			s, err := s3.Open(context.Background(), s3.Options{
				Endpoint: srv.Endpoint, Bucket: bucket, Prefix: "reg/", AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey,
				SpoolDir: t.TempDir(), PartSize: 5 << 20, Transport: ct, MaxRetries: -1,
			})
			require.NoError(t, err)
			defer s.Close()
			ctx := context.Background()
			key := dataKey(t)
			data := blobtest.RandomBytes(c.size)
			w, err := s.NewWriter(ctx, "up", blob.WriterOptions{DataKey: key})
			require.NoError(t, err)
			_, err = w.Write(data[:c.size/2])
			require.NoError(t, err)
			ct.corrupt.Store(true)
			if c.size > 10<<20 {
				_, err = w.Checkpoint(ctx)
				require.ErrorIs(t, err, s3.ErrChecksum, "a checkpoint's parts changed in transit")
				require.ErrorIs(t, err, blob.ErrUnavailable)
				ct.corrupt.Store(false)
				_, err = w.Checkpoint(ctx)
				require.NoError(t, err)
				ct.corrupt.Store(true)
			}
			_, err = w.Write(data[c.size/2:])
			require.NoError(t, err)
			d := digest.FromBytes(data)
			_, err = w.Commit(ctx, d, int64(len(data)))
			require.ErrorIs(t, err, s3.ErrChecksum, "the commit's bytes changed in transit")
			require.ErrorIs(t, err, blob.ErrUnavailable, "sending again may succeed")
			_, mp := bucketKeys(t, srv, bucket, "reg/blobs/")
			assert.Empty(t, mp, "a multipart upload of the blob's key that failed is aborted")
			ct.corrupt.Store(false)
			info, err := w.Commit(ctx, d, int64(len(data)))
			require.NoError(t, err, "the same commit sends again")
			assert.Equal(t, int64(len(data)), info.Size)
			require.True(t, bytes.Equal(data, readAll(t, s, d, key)), "bit-exact")
			ct.mu.Lock()
			defer ct.mu.Unlock()
			assert.Zero(t, ct.signed, "no payload signature")
			assert.Equal(t, ct.bodies, ct.summed, "every body with a CRC32C")
		})
	}
}

// TestResumeStateWithoutChecksums: a checkpoint recorded before parts
// carried checksums (its multipart upload created without an algorithm,
// no CRC32Cs beside the parts' ETags) continues on another replica and
// completes without checksums.
func TestResumeStateWithoutChecksums(t *testing.T) {
	srv := startMinIO(t)
	ctx := context.Background()
	bucket := newBucket(t, srv)
	a := openStore(t, srv, bucket, t.TempDir(), 64<<10)
	defer a.Close()
	b := openStore(t, srv, bucket, t.TempDir(), 64<<10)
	defer b.Close()
	key := dataKey(t)
	data := blobtest.RandomBytes(21 << 20)
	w, err := a.NewWriter(ctx, "old", blob.WriterOptions{DataKey: key})
	require.NoError(t, err)
	_, err = w.Write(data[:17<<20])
	require.NoError(t, err)
	st, err := w.Checkpoint(ctx)
	require.NoError(t, err)

	// Rewrite the state as the code before checksums would have left it:
	// the same parts in a multipart upload created without an algorithm,
	// sent with a payload signature.
	var rs map[string]any
	require.NoError(t, json.Unmarshal(st.Backend, &rs))
	require.Equal(t, true, rs["crc32c"])
	require.Len(t, rs["parts"], 2, "parts 2 and 3 sent")
	f, err := a.Spool().UploadFile("old")
	require.NoError(t, err)
	core := minio.Core{Client: rawClient(t, srv)}
	dataObj := "reg/data/old"
	mpu, err := core.NewMultipartUpload(ctx, bucket, dataObj, minio.PutObjectOptions{})
	require.NoError(t, err)
	partSize := int64(rs["partSize"].(float64))
	var etags []string
	off := partSize
	for i, sz := range rs["sizes"].([]any) {
		n := int64(sz.(float64))
		op, err := core.PutObjectPart(ctx, bucket, dataObj, mpu, i+2, io.NewSectionReader(f, off, n), n, minio.PutObjectPartOptions{})
		require.NoError(t, err)
		etags = append(etags, op.ETag)
		off += n
	}
	require.NoError(t, f.Close())
	require.NoError(t, core.AbortMultipartUpload(ctx, bucket, dataObj, rs["mpu"].(string)))
	rs["mpu"], rs["parts"] = mpu, etags
	delete(rs, "crc32c")
	delete(rs, "sums")
	st.Backend, err = json.Marshal(rs)
	require.NoError(t, err)
	require.NoError(t, w.Close())

	w, err = b.ResumeWriter(ctx, "old", st, blob.WriterOptions{DataKey: key})
	require.NoError(t, err, "resume on another replica")
	_, err = w.Write(data[17<<20:])
	require.NoError(t, err)
	d := digest.FromBytes(data)
	_, err = w.Commit(ctx, d, int64(len(data)))
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, readAll(t, a, d, key)), "bit-exact")
}
