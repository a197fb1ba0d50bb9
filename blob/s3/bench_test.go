package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob/blobtest"
	"github.com/berthstore/berth/blob/s3"
)

// BenchmarkOpen opens a blob and reads its first 64 KiB, as a pull's
// first byte and a FUSE lookup do: a small blob's own object, a larger
// one's, and a blob pushed in parts (a reference to its data object).
// The "10ms" cases hold every request back 10 ms, the first-byte latency
// of an object store across a network rather than on the loopback.
// requests/op counts what each open costs the object store.
func BenchmarkOpen(b *testing.B) {
	srv := startMinIO(b)
	ct := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
	bucket := newBucket(b, srv)
	o := storeOptions(srv, bucket, b.TempDir(), 1<<20, 5<<20)
	o.Transport = ct
	s, err := s3.Open(context.Background(), o)
	require.NoError(b, err)
	defer s.Close()
	key := dataKey(b)
	blobs := []struct {
		name string
		d    digest.Digest
	}{
		{"own-64KiB", blobtest.Put(b, s, "small", key, blobtest.RandomBytes(64<<10))},
		{"own-8MiB", blobtest.Put(b, s, "large", key, blobtest.RandomBytes(8<<20))},
	}
	d, _ := pushInParts(b, s, "parts", key, blobtest.RandomBytes(24<<20))
	blobs = append(blobs, struct {
		name string
		d    digest.Digest
	}{"reference-24MiB", d})
	ctx := context.Background()
	buf := make([]byte, 64<<10)
	for _, delay := range []time.Duration{0, 10 * time.Millisecond} {
		for _, bl := range blobs {
			b.Run(fmt.Sprintf("%s/delay=%s", bl.name, delay), func(b *testing.B) {
				ct.delay = delay
				defer func() { ct.delay = 0 }()
				before := ct.all.Load()
				for b.Loop() {
					r, err := s.Open(ctx, bl.d, key)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(r, buf); err != nil {
						b.Fatal(err)
					}
					r.Close()
				}
				b.ReportMetric(float64(ct.all.Load()-before)/float64(b.N), "requests/op")
			})
		}
	}
}

// BenchmarkReadWhole reads a 64 MiB blob from its start to its end, as a
// pull does (Open, then WriteTo), sealed and plain, beside minio-go's own
// GET of an object of the same size in the same rounds: x-raw is the raw
// GET's time over the blob's (ns/op counts both). Both share the machine
// with MinIO. It is the pull of "Blobs in an object store" in
// bench/RESULTS.md without registryd's HTTP hop.
func BenchmarkReadWhole(b *testing.B) {
	srv := startMinIO(b)
	bucket := newBucket(b, srv)
	s, err := s3.Open(context.Background(), storeOptions(srv, bucket, b.TempDir(), 1<<20, 16<<20))
	require.NoError(b, err)
	defer s.Close()
	ctx := context.Background()
	const size = 64 << 20
	data := blobtest.RandomBytes(size)
	mc := rawClient(b, srv)
	_, err = mc.PutObject(ctx, bucket, "raw", bytes.NewReader(data), size, minio.PutObjectOptions{})
	require.NoError(b, err)
	key := dataKey(b)
	for _, c := range []struct {
		name string
		key  []byte
	}{{"sealed", key}, {"plain", nil}} {
		d := blobtest.Put(b, s, "whole-"+c.name, c.key, data)
		b.Run(c.name, func(b *testing.B) {
			var rawT, ourT time.Duration
			for b.Loop() {
				t0 := time.Now()
				obj, err := mc.GetObject(ctx, bucket, "raw", minio.GetObjectOptions{})
				require.NoError(b, err)
				_, err = io.Copy(io.Discard, obj)
				require.NoError(b, err)
				obj.Close()
				t1 := time.Now()
				r, err := s.Open(ctx, d, c.key)
				require.NoError(b, err)
				n, err := r.WriteTo(io.Discard)
				require.NoError(b, err)
				require.Equal(b, int64(size), n)
				r.Close()
				rawT, ourT = rawT+t1.Sub(t0), ourT+time.Since(t1)
			}
			mb := float64(size) * float64(b.N) / 1e6
			b.ReportMetric(mb/ourT.Seconds(), "blob-MB/s")
			b.ReportMetric(mb/rawT.Seconds(), "raw-MB/s")
			b.ReportMetric(rawT.Seconds()/ourT.Seconds(), "x-raw")
		})
	}
}
