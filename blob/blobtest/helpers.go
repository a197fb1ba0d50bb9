package blobtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
)

// RandomBytes returns n random (incompressible) bytes.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return b
}

// SourceTar is a tar of the Go standard library's sources, cut at n bytes:
// text that compresses well, as many image layers do. The tar is built
// once per process (as long as the longest asked for); each call returns
// its own copy.
func SourceTar(t testing.TB, n int) []byte {
	t.Helper()
	sourceTar.mu.Lock()
	defer sourceTar.mu.Unlock()
	if len(sourceTar.b) < n {
		b, err := buildSourceTar(max(n, 2*len(sourceTar.b)))
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(b), n, "GOROOT/src holds fewer bytes of Go source than asked for")
		sourceTar.b = b
	}
	return bytes.Clone(sourceTar.b[:n])
}

var sourceTar struct {
	mu sync.Mutex
	b  []byte
}

// buildSourceTar tars the .go files under GOROOT/src until it holds n
// bytes (or all of them).
func buildSourceTar(n int) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	root := filepath.Join(runtime.GOROOT(), "src")
	errEnough := errors.New("enough")
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if err := tw.WriteHeader(&tar.Header{Name: p[len(root):], Mode: 0o644, Size: int64(len(b))}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
		if buf.Len() >= n {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Gzip returns b gzip-compressed (default level): content that starts
// with the gzip magic and does not compress again.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b) // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	return buf.Bytes()
}

// Put uploads data as upload id under key (nil: plain) in writes of
// random sizes, so that they cross frame boundaries at odd places, and
// commits it. It returns the blob's sha256 digest.
func Put[I blob.Ingest](t testing.TB, s blob.Ingester[I], id string, key, data []byte) digest.Digest {
	t.Helper()
	w, err := s.NewWriter(context.Background(), id, blob.WriterOptions{DataKey: key})
	require.NoError(t, err)
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+mrand.IntN(96<<10))
		_, err := w.Write(rest[:n])
		require.NoError(t, err)
		rest = rest[n:]
	}
	d := digest.FromBytes(data)
	info, err := w.Commit(context.Background(), d, int64(len(data)))
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), info.Size)
	require.Equal(t, d, info.Digest)
	return d
}

// guardLen is the number of guard bytes after a buffer ReadAtGuarded
// hands out: a read that appends past the buffer's length writes into
// them as long as it stays within the capacity, so the capacity reaches
// well past a small frame.
const guardLen = 16 << 10

// guardByte fills the guard; a read that writes it is caught.
const guardByte = 0xa5

// ReadAtGuarded reads n bytes at off from r into a buffer of exactly n
// bytes whose backing array goes on with guard bytes (inside its
// capacity, where an append would write), and fails t if the read wrote
// any of them. It returns the buffer and what ReadAt returned.
func ReadAtGuarded(t testing.TB, r io.ReaderAt, off int64, n int) ([]byte, int, error) {
	t.Helper()
	p, m, err, bad := readGuarded(r, off, n)
	require.NoError(t, bad)
	return p, m, err
}

// readGuarded is ReadAtGuarded without t: bad reports a write past the
// buffer or a count out of range.
func readGuarded(r io.ReaderAt, off int64, n int) (p []byte, m int, err, bad error) {
	backing := make([]byte, n+guardLen)
	for i := n; i < len(backing); i++ {
		backing[i] = guardByte
	}
	p = backing[:n]
	m, err = r.ReadAt(p, off)
	for i := n; i < len(backing); i++ {
		if backing[i] != guardByte {
			return p, m, err, fmt.Errorf("ReadAt(len %d, off %d) wrote past its buffer, at byte %d after the end", n, off, i-n)
		}
	}
	if m < 0 || m > n {
		return p, m, err, fmt.Errorf("ReadAt(len %d, off %d) returned n=%d", n, off, m)
	}
	return p, m, err, nil
}

// CheckReadAt reads n bytes at off from r, a reader of content, into an
// exactly sized guarded buffer (ReadAtGuarded) and checks the result
// against the io.ReaderAt contract: all of content[off:off+n] when it
// exists (nil or io.EOF when the read ends at the blob's end), else the
// bytes up to the end and io.EOF.
func CheckReadAt(t testing.TB, r io.ReaderAt, content []byte, off int64, n int) {
	t.Helper()
	require.NoError(t, checkReadAt(r, content, off, n))
}

// checkReadAt is CheckReadAt returning what is wrong, for goroutines.
func checkReadAt(r io.ReaderAt, content []byte, off int64, n int) error {
	p, m, err, bad := readGuarded(r, off, n)
	if bad != nil {
		return bad
	}
	size := int64(len(content))
	what := fmt.Sprintf("ReadAt(len %d, off %d) of %d bytes", n, off, size)
	want := 0
	if off < size {
		want = int(min(int64(n), size-off))
	}
	switch {
	case m != want:
		return fmt.Errorf("%s: returned %d bytes, want %d (err %v)", what, m, want, err)
	case m < n && !errors.Is(err, io.EOF):
		return fmt.Errorf("%s: short read without io.EOF: %v", what, err)
	case m == n && err != nil && !(errors.Is(err, io.EOF) && off+int64(n) == size):
		return fmt.Errorf("%s: full read with error %v", what, err)
	case m > 0 && !bytes.Equal(content[off:off+int64(m)], p[:m]):
		return fmt.Errorf("%s: wrong bytes", what)
	}
	return nil
}
