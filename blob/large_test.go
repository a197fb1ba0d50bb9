package blob_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"io"
	mrand "math/rand/v2"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/blobtest"
)

// content is a deterministic stream that can be regenerated at any offset.
type content interface {
	size() int64
	at(p []byte, off int64) // fills p with the bytes at off
}

// randomContent is pseudo-random bytes: block i (64 KiB) comes from a
// ChaCha8 generator seeded with i.
type randomContent struct{ n int64 }

func (c randomContent) size() int64 { return c.n }

func (c randomContent) at(p []byte, off int64) {
	const bs = 64 << 10
	var block [bs]byte
	for len(p) > 0 {
		i := off / bs
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], uint64(i))
		mrand.NewChaCha8(seed).Read(block[:])
		n := copy(p, block[off-i*bs:])
		p, off = p[n:], off+int64(n)
	}
}

// cyclicContent repeats a buffer (a tar of Go sources) up to n bytes.
type cyclicContent struct {
	buf []byte
	n   int64
}

func (c cyclicContent) size() int64 { return c.n }

func (c cyclicContent) at(p []byte, off int64) {
	for len(p) > 0 {
		n := copy(p, c.buf[off%int64(len(c.buf)):])
		p, off = p[n:], off+int64(n)
	}
}

// memContent is a buffer held whole (the gzip case).
type memContent []byte

func (c memContent) size() int64            { return int64(len(c)) }
func (c memContent) at(p []byte, off int64) { copy(p, c[off:]) }

type contentReader struct {
	c   content
	off int64
}

func (r *contentReader) Read(p []byte) (int, error) {
	if r.off >= r.c.size() {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.c.size()-r.off)]
	r.c.at(p, r.off)
	r.off += int64(len(p))
	return len(p), nil
}

// TestRoundTripLarge pushes 300 MiB of random bytes, of a Go source tar
// and of that tar gzipped, reads each back whole and at random offsets.
func TestRoundTripLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("300 MiB blobs: skipped with -short")
	}
	const size = 300 << 20
	src := blobtest.SourceTar(t, 8<<20)
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	io.Copy(zw, &contentReader{c: cyclicContent{src, size}})
	zw.Close()
	cases := map[string]content{
		"random":   randomContent{size},
		"go-tar":   cyclicContent{src, size},
		"gzip-tar": memContent(gz.Bytes()),
	}
	ctx := context.Background()
	s, err := blob.Open(t.TempDir(), nil) // default 1 MiB frames, compression on
	require.NoError(t, err)
	defer s.Close()
	key := bytes.Repeat([]byte{9}, 32)
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			h := digest.SHA256.Digester()
			w, err := s.NewWriter(ctx, name, blob.WriterOptions{DataKey: key})
			require.NoError(t, err)
			_, err = w.ReadFrom(io.TeeReader(&contentReader{c: c}, h.Hash()))
			require.NoError(t, err)
			info, err := w.Commit(ctx, h.Digest(), c.size())
			require.NoError(t, err)
			t.Logf("%s: %d bytes stored as %d (%.2f)", name, info.Size, info.StoredSize, float64(info.StoredSize)/float64(info.Size))

			r, err := s.Open(ctx, h.Digest(), key)
			require.NoError(t, err)
			defer r.Close()
			got := make([]byte, 1<<20)
			want := make([]byte, 1<<20)
			for off := int64(0); off < c.size(); {
				n, err := io.ReadFull(r, got)
				if err == io.ErrUnexpectedEOF {
					err = nil
				}
				require.NoError(t, err)
				c.at(want[:n], off)
				require.True(t, bytes.Equal(want[:n], got[:n]), "differs in the MiB at %d", off)
				off += int64(n)
			}
			for range 200 {
				off := mrand.Int64N(c.size())
				n := mrand.IntN(int(min(c.size()-off, 3<<20))) + 1
				buf := make([]byte, n)
				m, err := r.ReadAt(buf, off)
				require.Equal(t, n, m)
				if off+int64(n) < c.size() {
					require.NoError(t, err)
				}
				wantb := make([]byte, n)
				c.at(wantb, off)
				require.True(t, bytes.Equal(wantb, buf), "ReadAt(%d, %d) differs", off, n)
			}
		})
	}
}
