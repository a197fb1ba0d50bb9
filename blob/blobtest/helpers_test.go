package blobtest

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// appendingReader writes its content at p[:0] with append, so that it
// runs past len(p) into the capacity: the bug ReadAtGuarded exists for.
type appendingReader struct{ extra int }

func (r appendingReader) ReadAt(p []byte, off int64) (int, error) {
	_ = append(p[:0], make([]byte, len(p)+r.extra)...)
	return len(p), nil
}

// lyingReader misreports what it read.
type lyingReader struct {
	n   func(len int) int
	err error
}

func (r lyingReader) ReadAt(p []byte, off int64) (int, error) { return r.n(len(p)), r.err }

func TestReadGuardedCatchesWritesPastTheBuffer(t *testing.T) {
	_, _, _, bad := readGuarded(appendingReader{extra: 1}, 0, 100)
	require.ErrorContains(t, bad, "wrote past its buffer")
	_, _, _, bad = readGuarded(appendingReader{extra: 0}, 0, 100)
	require.NoError(t, bad)
	_, _, _, bad = readGuarded(lyingReader{n: func(n int) int { return n + 1 }}, 0, 10)
	require.ErrorContains(t, bad, "returned n=11")
}

func TestCheckReadAtContract(t *testing.T) {
	content := RandomBytes(1000)
	good := bytes.NewReader(content)
	for _, c := range []struct {
		off int64
		n   int
	}{{0, 0}, {0, 1000}, {999, 1}, {999, 2}, {1000, 0}, {1000, 5}, {5000, 5}, {10, 500}} {
		require.NoError(t, checkReadAt(good, content, c.off, c.n), "bytes.Reader at %d len %d", c.off, c.n)
	}
	short := lyingReader{n: func(n int) int { return n / 2 }}
	require.ErrorContains(t, checkReadAt(short, content, 0, 10), "returned 5 bytes, want 10")
	noEOF := io.NewSectionReader(bytes.NewReader(content), 0, 1000)
	require.NoError(t, checkReadAt(noEOF, content, 990, 20))
	require.ErrorContains(t, checkReadAt(lyingReader{n: func(int) int { return 0 }}, content, 1000, 5), "short read without io.EOF")
	require.ErrorContains(t, checkReadAt(good, RandomBytes(1000), 0, 10), "wrong bytes")
	early := lyingReader{n: func(n int) int { return n }, err: io.EOF}
	require.ErrorContains(t, checkReadAt(early, content, 0, 10), "full read with error")
}

func TestSourceTar(t *testing.T) {
	a := SourceTar(t, 1000)
	require.Len(t, a, 1000)
	b := SourceTar(t, 300<<10)
	require.Len(t, b, 300<<10)
	require.Equal(t, a, b[:1000], "one tar, cut at different lengths")
	a[0] ^= 0xff
	require.NotEqual(t, a[0], SourceTar(t, 1)[0], "each call has its own copy")
	require.Less(t, len(Gzip(b)), len(b)/3)
}
