package s3_test

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob/blobtest"
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
