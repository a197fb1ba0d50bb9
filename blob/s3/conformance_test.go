package s3_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/blobtest"
	"github.com/berthstore/berth/blob/s3"
)

// TestConformance runs the blob store conformance suite over the S3
// backend on a real MinIO server, plain and sealed, with small frames
// (many ranged GETs per blob) and the default 1 MiB ones.
func TestConformance(t *testing.T) {
	srv := startMinIO(t)
	for _, c := range []struct {
		name      string
		sealed    bool
		frameSize int
	}{
		{"plain-small-frames", false, 64 << 10},
		{"sealed-small-frames", true, 64 << 10},
		{"sealed-default-frames", true, 1 << 20},
	} {
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
					tg.DataKey = dataKey
				}
				return tg
			})
		})
	}
}
