package s3_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/blobtest"
	"github.com/berthstore/berth/blob/s3"
	"github.com/berthstore/berth/internal/miniotest"
)

// TestConformance runs the blob store conformance suite over the S3
// backend on a real MinIO server, plain and sealed, with small frames
// (many ranged GETs per blob) and the default 1 MiB ones.
func TestConformance(t *testing.T) {
	conformance(t, startMinIO(t), []conformanceCase{
		{"plain-small-frames", false, 64 << 10},
		{"sealed-small-frames", true, 64 << 10},
		{"sealed-default-frames", true, 1 << 20},
	})
}

// TestConformanceOverTLS runs the suite against MinIO on https, with a
// certificate the Store trusts through Options.Transport: a single PUT's
// checksum header, the parts' CRC32C trailers and the ranged GETs as a
// production endpoint serves them.
func TestConformanceOverTLS(t *testing.T) {
	conformance(t, miniotest.StartTLS(t, miniotest.Require(t)), []conformanceCase{
		{"sealed-small-frames", true, 64 << 10},
	})
}

// TestUntrustedCertificate: a Store over https to a server whose
// certificate it cannot verify is refused at Open, with the certificate
// named in the error, not retried as an outage.
func TestUntrustedCertificate(t *testing.T) {
	srv := miniotest.StartTLS(t, miniotest.Require(t))
	bucket := newBucket(t, srv)
	o := storeOptions(srv, bucket, t.TempDir(), 64<<10, 5<<20)
	o.Transport = nil // the system's roots, which do not hold the test's CA
	start := time.Now()
	_, err := s3.Open(context.Background(), o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")
	assert.Less(t, time.Since(start), 10*time.Second, "not retried with backoff")
}

// conformanceCase is one configuration of the conformance suite.
type conformanceCase struct {
	name      string
	sealed    bool
	frameSize int
}

func conformance(t *testing.T, srv *miniotest.Server, cases []conformanceCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			blobtest.Run(t, func(t *testing.T) blobtest.Target[*blob.Reader, *s3.Writer] {
				bucket, spool := newBucket(t, srv), t.TempDir()
				s := openStore(t, srv, bucket, spool, c.frameSize)
				t.Cleanup(func() { _ = s.Close() })
				tg := blobtest.Target[*blob.Reader, *s3.Writer]{
					Store:     s,
					FrameSize: c.frameSize,
					Reopen: func(t *testing.T) blob.Backend[*blob.Reader, *s3.Writer] {
						require.NoError(t, s.Close())
						s = openStore(t, srv, bucket, spool, c.frameSize)
						return s
					},
				}
				if c.sealed {
					tg.DataKey = func(t *testing.T) []byte { return dataKey(t) }
				}
				return tg
			})
		})
	}
}
