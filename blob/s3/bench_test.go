package s3_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

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
