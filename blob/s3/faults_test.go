package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/blobtest"
	"github.com/berthstore/berth/blob/s3"
	"github.com/berthstore/berth/internal/miniotest"
)

// countingTransport counts the GETs that go through it and the bytes of
// their ranges.
type countingTransport struct {
	base         http.RoundTripper
	gets, ranged atomic.Int64
	// requests counts every request of a blob's key (HEADs too), all
	// every request.
	requests, all atomic.Int64
	mu            sync.Mutex
	ranges        []string
	// delay holds every request back this long: the first-byte latency
	// of an object store across a network.
	delay time.Duration
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.all.Add(1)
	if strings.Contains(r.URL.Path, "/blobs/") {
		c.requests.Add(1)
	}
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
		c.gets.Add(1)
		if rg := r.Header.Get("Range"); rg != "" {
			c.ranged.Add(1)
			c.mu.Lock()
			c.ranges = append(c.ranges, rg)
			c.mu.Unlock()
		}
	}
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	return c.base.RoundTrip(r)
}

// TestReadAtFetchesOnlyItsFrames: after Open (two ranged GETs: the first
// 256 KiB with the header, and the frame table), a ReadAt of a few bytes
// in the middle of a blob of 40 frames costs one ranged GET of one frame,
// not the blob.
func TestReadAtFetchesOnlyItsFrames(t *testing.T) {
	srv := startMinIO(t)
	ct := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
	const frame = 64 << 10
	s, err := s3.Open(context.Background(), s3.Options{
		Endpoint: srv.Endpoint, Bucket: newBucket(t, srv), AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey,
		SpoolDir: t.TempDir(), Blob: blob.Options{FrameSize: frame}, Transport: ct,
	})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	data := blobtest.RandomBytes(40 * frame)
	key := dataKey(t)
	d := blobtest.Put(t, s, "big", key, data)

	before, requests := ct.gets.Load(), ct.requests.Load()
	r, err := s.Open(ctx, d, key)
	require.NoError(t, err)
	defer r.Close()
	assert.Equal(t, int64(2), ct.gets.Load()-before, "Open: first bytes with the header, and the table")
	assert.Equal(t, int64(2), ct.requests.Load()-requests, "no HEAD")

	before = ct.gets.Load()
	p := make([]byte, 100)
	off := int64(17*frame + 1000)
	_, err = r.ReadAt(p, off)
	require.NoError(t, err)
	require.Equal(t, data[off:off+100], p)
	assert.Equal(t, int64(1), ct.gets.Load()-before, "one frame fetched")
	ct.mu.Lock()
	last := ct.ranges[len(ct.ranges)-1]
	ct.mu.Unlock()
	var from, to int64
	_, err = fmtSscanf(last, &from, &to)
	require.NoError(t, err)
	assert.Less(t, to-from+1, int64(frame+1024), "the GET covers one stored frame: %s", last)
}

// TestSmallBlobOneRequest: a blob of less than 256 KiB (a config, a small
// layer) opens and reads whole with one request: the ranged GET that
// Open makes holds its header, frames and table. A blob sent in parts (a
// reference) opens in two round trips: the reference's GET, then its data
// object's first and last bytes at once; one with the empty reference of
// stores written before still opens, through a HEAD.
func TestSmallBlobOneRequest(t *testing.T) {
	srv := startMinIO(t)
	ct := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
	bucket := newBucket(t, srv)
	o := storeOptions(srv, bucket, t.TempDir(), 64<<10, 5<<20)
	o.Transport = ct
	s, err := s3.Open(context.Background(), o)
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	key := dataKey(t)
	for _, size := range []int{1, 5 << 10, 200 << 10} {
		data := blobtest.RandomBytes(size)
		d := blobtest.Put(t, s, fmt.Sprintf("small-%d", size), key, data)
		before := ct.requests.Load()
		require.True(t, bytes.Equal(data, readAll(t, s, d, key)), "bit-exact")
		assert.Equal(t, int64(1), ct.requests.Load()-before, "%d bytes: one request", size)
	}

	// A reference: written in parts, then read whole.
	data := blobtest.RandomBytes(13 << 20)
	d, _ := pushInParts(t, s, "parts", key, data)
	mc := rawClient(t, srv)
	blobKey, err := s.Key(d)
	require.NoError(t, err)
	oi, err := mc.StatObject(ctx, bucket, blobKey, minio.StatObjectOptions{})
	require.NoError(t, err)
	require.Less(t, oi.Size, int64(blob.HeaderSize), "a reference")
	before := ct.all.Load()
	r, err := s.Open(ctx, d, key)
	require.NoError(t, err)
	assert.Equal(t, int64(3), ct.all.Load()-before,
		"a reference opens with its GET, then the GETs of its data object's header and table")
	first := make([]byte, 1<<10)
	_, err = io.ReadFull(r, first)
	require.NoError(t, err)
	assert.Equal(t, int64(3), ct.all.Load()-before, "and its first frame came with its header")
	got, err := io.ReadAll(r)
	got = append(first, got...)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	require.True(t, bytes.Equal(data, got), "a reference reads bit-exact")

	// The empty reference of an older store, naming the same data.
	_, err = mc.PutObject(ctx, bucket, blobKey, strings.NewReader(""), 0, minio.PutObjectOptions{UserMetadata: oi.UserMetadata})
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, readAll(t, s, d, key)), "an empty reference reads bit-exact")
	si, err := s.Stat(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), si.Size)

	_, err = s.Open(ctx, digest.FromString("missing"), key)
	require.ErrorIs(t, err, blob.ErrNotFound)
}

// TestServerDown: with the server gone every call fails with
// blob.ErrUnavailable (typed, retryable) within its deadline, an upload in
// progress is kept, and once the server is back the same upload commits
// and every earlier blob reads bit-exact.
func TestServerDown(t *testing.T) {
	srv := startMinIO(t)
	bucket := newBucket(t, srv)
	s, err := s3.Open(context.Background(), s3.Options{
		Endpoint: srv.Endpoint, Bucket: bucket, AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey,
		SpoolDir: t.TempDir(), Blob: blob.Options{FrameSize: 64 << 10},
		RequestTimeout: 2 * time.Second, MaxRetries: 1,
	})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	key := dataKey(t)
	before := blobtest.RandomBytes(300 << 10)
	d0 := blobtest.Put(t, s, "before", key, before)

	// An upload in progress when the server goes.
	data := blobtest.SourceTar(t, 7<<20)
	w, err := s.NewWriter(ctx, "up", blob.WriterOptions{DataKey: key})
	require.NoError(t, err)
	_, err = w.Write(data[:3<<20])
	require.NoError(t, err)

	srv.Stop()
	t0 := time.Now()
	_, err = s.Stat(ctx, d0)
	require.ErrorIs(t, err, blob.ErrUnavailable)
	_, err = s.Open(ctx, d0, key)
	require.ErrorIs(t, err, blob.ErrUnavailable)
	require.ErrorIs(t, s.Delete(ctx, d0), blob.ErrUnavailable)
	require.ErrorIs(t, s.Walk(ctx, func(digest.Digest, int64) error { return nil }), blob.ErrUnavailable)
	_, err = w.Write(data[3<<20:])
	require.NoError(t, err, "writing goes to the spool")
	d := digest.FromBytes(data)
	_, err = w.Commit(ctx, d, int64(len(data)))
	require.ErrorIs(t, err, blob.ErrUnavailable, "commit cannot send")
	assert.Less(t, time.Since(t0), 60*time.Second, "failures come within their deadlines")

	srv.Restart(t)
	info, err := w.Commit(ctx, d, int64(len(data)))
	require.NoError(t, err, "the same commit sends once the server is back")
	assert.Equal(t, int64(len(data)), info.Size)
	for _, c := range []struct {
		d    digest.Digest
		data []byte
	}{{d0, before}, {d, data}} {
		r, err := s.Open(ctx, c.d, key)
		require.NoError(t, err)
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		require.NoError(t, r.Close())
		require.True(t, bytes.Equal(c.data, got), "bit-exact after the restart")
	}
	ids, err := s.Uploads(ctx)
	require.NoError(t, err)
	assert.Empty(t, ids, "the spool is empty after the commit")
}

// fmtSscanf parses an HTTP Range header "bytes=from-to".
func fmtSscanf(h string, from, to *int64) (int, error) { return fmt.Sscanf(h, "bytes=%d-%d", from, to) }

// TestPrefixOwner: a prefix belongs to the first store that opens it; a
// store of another identity is refused (its gc would take the first
// one's blobs for orphans), the owner reopens it, and another prefix of
// the same bucket is free.
func TestPrefixOwner(t *testing.T) {
	srv := startMinIO(t)
	bucket := newBucket(t, srv)
	open := func(prefix, owner string) (*s3.Store, error) {
		return s3.Open(context.Background(), s3.Options{
			Endpoint: srv.Endpoint, Bucket: bucket, Prefix: prefix, AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey,
			SpoolDir: t.TempDir(), Owner: owner,
		})
	}
	a, err := open("reg/", "store-a")
	require.NoError(t, err)
	require.NoError(t, a.Close())
	_, err = open("reg/", "store-b")
	require.ErrorIs(t, err, s3.ErrOwned)
	a, err = open("reg/", "store-a")
	require.NoError(t, err, "the owner reopens its prefix")
	require.NoError(t, a.Close())
	b, err := open("other/", "store-b")
	require.NoError(t, err)
	require.NoError(t, b.Close())
}
