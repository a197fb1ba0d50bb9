package s3_test

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob/blobtest"
	"github.com/berthstore/berth/blob/s3"
)

// TestWholeReadsThroughReadAhead: whole reads of a blob large enough for
// the read-ahead (several 4 MiB windows, reused from a pool, their frames
// decoded in place where a window holds them whole), by readers of their
// own at once, with WriteTo (frames decoded in parallel) and with Read
// alone, are bit-exact, again and again.
func TestWholeReadsThroughReadAhead(t *testing.T) {
	srv := startMinIO(t)
	s := openStore(t, srv, newBucket(t, srv), t.TempDir(), 1<<20)
	defer s.Close()
	key := dataKey(t)
	data := blobtest.RandomBytes(29<<20 + 12345)
	d := blobtest.Put(t, s, "big", key, data)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 6 {
		wg.Go(func() {
			for range 3 {
				r, err := s.Open(context.Background(), d, key)
				if err != nil {
					errs <- err
					return
				}
				var out bytes.Buffer
				if g%2 == 0 {
					_, err = io.Copy(&out, r)
				} else {
					_, err = io.Copy(&out, struct{ io.Reader }{r})
				}
				r.Close()
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(data, out.Bytes()) {
					errs <- io.ErrUnexpectedEOF
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// TestReadAheadCutsAtFrames: a blob of raw frames (random bytes, sealed
// and plain) read whole through the read-ahead is lent frame by frame:
// the reader tells the source where its frames are, the windows end where
// frames end, and no frame is copied out of a window but the one whose
// read starts the read-ahead (windows of 4 MiB cut across one frame in
// four). A blob whose frames
// compress (of several lengths) still reads bit-exact.
func TestReadAheadCutsAtFrames(t *testing.T) {
	srv := startMinIO(t)
	s := openStore(t, srv, newBucket(t, srv), t.TempDir(), 1<<20)
	defer s.Close()
	ctx := context.Background()
	for _, c := range []struct {
		name string
		key  []byte
		data []byte
		lent bool
	}{
		{"sealed", dataKey(t), blobtest.RandomBytes(21<<20 + 777), true},
		{"plain", nil, blobtest.RandomBytes(21<<20 + 777), true},
		{"compressible", dataKey(t), blobtest.SourceTar(t, 21<<20), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := blobtest.Put(t, s, c.name, c.key, c.data)
			before := s3.WindowCopies()
			r, err := s.Open(ctx, d, c.key)
			require.NoError(t, err)
			var out bytes.Buffer
			_, err = r.WriteTo(&out)
			require.NoError(t, err)
			require.NoError(t, r.Close())
			require.True(t, bytes.Equal(c.data, out.Bytes()), "bit-exact")
			copied := s3.WindowCopies() - before
			t.Logf("%d bytes copied out of windows", copied)
			if c.lent {
				// The read that starts the read-ahead has nothing to
				// borrow from yet; every frame after it is lent.
				require.LessOrEqual(t, copied, int64(1<<20+64), "bytes copied out of windows: one frame at most")
			}
		})
	}
}
