package blob

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/crypt"
)

// config is one store configuration the suite runs against.
type config struct {
	name     string
	sealed   bool
	compress bool
}

var configs = []config{
	{"plain-raw", false, false},
	{"plain-zstd", false, true},
	{"sealed-raw", true, false},
	{"sealed-zstd", true, true},
}

const testFrame = 64 << 10

func openStore(t testing.TB, c config) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), &Options{FrameSize: testFrame, DisableCompression: !c.compress})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func keyFor(t testing.TB, c config) []byte {
	if !c.sealed {
		return nil
	}
	k, err := crypt.NewDataKey()
	require.NoError(t, err)
	return k
}

func put(t testing.TB, s *Store, id string, key, data []byte) digest.Digest {
	t.Helper()
	w, err := s.NewWriter(context.Background(), id, WriterOptions{DataKey: key})
	require.NoError(t, err)
	// Uneven writes cross frame boundaries at odd places.
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+mrand.IntN(3*testFrame/2))
		_, err := w.Write(rest[:n])
		require.NoError(t, err)
		rest = rest[n:]
	}
	d := digest.FromBytes(data)
	info, err := w.Commit(context.Background(), d, int64(len(data)))
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), info.Size)
	return d
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// goSourceTar is a tar of the Go standard library's sources, up to n bytes.
func goSourceTar(t testing.TB, n int) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	root := filepath.Join(runtime.GOROOT(), "src")
	errStop := io.EOF
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		tw.WriteHeader(&tar.Header{Name: p[len(root):], Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
		if buf.Len() >= n {
			return errStop
		}
		return nil
	})
	if err != errStop {
		require.NoError(t, err)
	}
	tw.Close()
	return buf.Bytes()[:min(n, buf.Len())]
}

func gzipOf(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	src := goSourceTar(t, 3<<20)
	cases := map[string][]byte{
		"empty":        {},
		"one":          {42},
		"frame-1":      randomBytes(testFrame - 1),
		"frame":        randomBytes(testFrame),
		"frame+1":      randomBytes(testFrame + 1),
		"3frames":      randomBytes(3 * testFrame),
		"go-tar":       src,
		"go-tar-gzip":  gzipOf(src),
		"zeros-frame2": make([]byte, 2*testFrame+7),
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t, c)
			for name, data := range cases {
				t.Run(name, func(t *testing.T) {
					key := keyFor(t, c)
					d := put(t, s, "up-"+name, key, data)
					r, err := s.Open(context.Background(), d, key)
					require.NoError(t, err)
					defer r.Close()
					got, err := io.ReadAll(r)
					require.NoError(t, err)
					require.True(t, bytes.Equal(data, got), "content differs")
					for range 50 {
						if len(data) == 0 {
							break
						}
						off := mrand.IntN(len(data))
						n := mrand.IntN(min(len(data)-off, 3*testFrame) + 1)
						buf := make([]byte, n)
						m, err := r.ReadAt(buf, int64(off))
						require.Equal(t, n, m)
						if off+n < len(data) {
							require.NoError(t, err)
						}
						require.True(t, bytes.Equal(data[off:off+n], buf))
					}
					info, err := s.Stat(context.Background(), d)
					require.NoError(t, err)
					assert.Equal(t, int64(len(data)), info.Size)
					assert.Equal(t, c.sealed, info.Sealed)
				})
			}
		})
	}
}

func TestCompressionPays(t *testing.T) {
	s := openStore(t, config{compress: true})
	src := goSourceTar(t, 2<<20)
	d := put(t, s, "src", nil, src)
	info, err := s.Stat(context.Background(), d)
	require.NoError(t, err)
	assert.Less(t, info.StoredSize, int64(len(src)/3), "source tar stores at most a third")

	gz := gzipOf(randomBytes(1 << 20))
	d = put(t, s, "gz", nil, gz)
	r, err := s.Open(context.Background(), d, nil)
	require.NoError(t, err)
	defer r.Close()
	for i, f := range r.table {
		assert.Equal(t, codecRaw, f.codec, "gzip frame %d went through zstd", i)
	}
}

func TestCommitRefusals(t *testing.T) {
	ctx := context.Background()
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t, c)
			data := randomBytes(testFrame + 10)
			key := keyFor(t, c)

			w, err := s.NewWriter(ctx, "wrong", WriterOptions{DataKey: key})
			require.NoError(t, err)
			w.Write(data)
			_, err = w.Commit(ctx, digest.FromBytes([]byte("other")), -1)
			require.ErrorIs(t, err, ErrDigestMismatch)
			_, err = w.Commit(ctx, digest.FromBytes(data), int64(len(data)-1))
			require.ErrorIs(t, err, ErrSizeMismatch)
			require.NoError(t, w.Cancel())

			w, err = s.NewWriter(ctx, "limit", WriterOptions{DataKey: key, Limit: 100})
			require.NoError(t, err)
			_, err = w.Write(data)
			require.ErrorIs(t, err, ErrTooLarge)
			_, err = w.Commit(ctx, digest.FromBytes(data), -1)
			require.ErrorIs(t, err, ErrTooLarge)
			require.NoError(t, w.Cancel())

			assertNoFiles(t, s)
		})
	}
}

func assertNoFiles(t *testing.T, s *Store) {
	t.Helper()
	var n int
	require.NoError(t, s.Walk(context.Background(), func(digest.Digest, int64) error { n++; return nil }))
	assert.Zero(t, n, "blob files left")
	ids, err := s.Uploads(context.Background())
	require.NoError(t, err)
	assert.Empty(t, ids, "upload files left")
}

func TestSHA512(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, configs[3])
	key := keyFor(t, configs[3])
	data := randomBytes(3*testFrame + 5)
	want := digest.SHA512.FromBytes(data)
	// A sha256 session committed as sha512 rehashes from the file.
	w, err := s.NewWriter(ctx, "x", WriterOptions{DataKey: key})
	require.NoError(t, err)
	w.Write(data)
	_, err = w.Commit(ctx, want, -1)
	require.NoError(t, err)
	r, err := s.Open(ctx, want, key)
	require.NoError(t, err)
	got, _ := io.ReadAll(r)
	r.Close()
	require.Equal(t, data, got)
}

func TestResume(t *testing.T) {
	ctx := context.Background()
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, &Options{FrameSize: testFrame, DisableCompression: !c.compress})
			require.NoError(t, err)
			key := keyFor(t, c)
			data := goSourceTar(t, 5*testFrame+123)
			w, err := s.NewWriter(ctx, "resume", WriterOptions{DataKey: key})
			require.NoError(t, err)
			cut := []int{0, 100, testFrame, 2*testFrame + 1, 4 * testFrame, len(data)}
			var st WriterState
			for i := 1; i < len(cut); i++ {
				_, err := w.Write(data[cut[i-1]:cut[i]])
				require.NoError(t, err)
				st, err = w.Checkpoint(ctx)
				require.NoError(t, err)
				// Bytes written after the checkpoint are lost with the process.
				w.Write([]byte("garbage after checkpoint"))
				require.NoError(t, w.Close())
				s.Close()
				s, err = Open(dir, &Options{FrameSize: testFrame, DisableCompression: !c.compress})
				require.NoError(t, err)
				w, err = s.ResumeWriter(ctx, "resume", st, WriterOptions{DataKey: key})
				require.NoError(t, err)
				require.Equal(t, int64(cut[i]), w.Size())
			}
			d := digest.FromBytes(data)
			_, err = w.Commit(ctx, d, int64(len(data)))
			require.NoError(t, err)
			r, err := s.Open(ctx, d, key)
			require.NoError(t, err)
			got, _ := io.ReadAll(r)
			r.Close()
			require.Equal(t, sha256.Sum256(data), sha256.Sum256(got))
			s.Close()
		})
	}
}

func TestResumeRejectsBadState(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, configs[2])
	key := keyFor(t, configs[2])
	w, err := s.NewWriter(ctx, "r", WriterOptions{DataKey: key})
	require.NoError(t, err)
	w.Write(randomBytes(2*testFrame + 3))
	st, err := w.Checkpoint(ctx)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	bad := st
	bad.Size++
	_, err = s.ResumeWriter(ctx, "r", bad, WriterOptions{DataKey: key})
	require.ErrorIs(t, err, ErrBadState)
	_, err = s.ResumeWriter(ctx, "r", st, WriterOptions{DataKey: keyFor(t, configs[2])})
	require.ErrorIs(t, err, ErrBadState)
	w, err = s.ResumeWriter(ctx, "r", st, WriterOptions{DataKey: key})
	require.NoError(t, err)
	require.NoError(t, w.Cancel())
}

// TestTamper flips every byte of small blob files, and swaps frames of a
// larger one: every read fails with ErrCorrupt and never returns wrong bytes.
func TestTamper(t *testing.T) {
	ctx := context.Background()
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(t.TempDir(), &Options{FrameSize: MinFrameSize, DisableCompression: !c.compress})
			require.NoError(t, err)
			defer s.Close()
			key := keyFor(t, c)
			data := append(randomBytes(2*MinFrameSize), goSourceTar(t, 2*MinFrameSize)...)
			w, err := s.NewWriter(ctx, "t", WriterOptions{DataKey: key})
			require.NoError(t, err)
			w.Write(data)
			d := digest.FromBytes(data)
			_, err = w.Commit(ctx, d, -1)
			require.NoError(t, err)
			p, _ := s.Path(d)
			orig, err := os.ReadFile(p)
			require.NoError(t, err)

			check := func(what string) {
				r, err := s.Open(ctx, d, key)
				if err != nil {
					require.ErrorIs(t, err, ErrCorrupt, what)
					return
				}
				defer r.Close()
				got, err := io.ReadAll(r)
				require.ErrorIs(t, err, ErrCorrupt, what)
				require.True(t, bytes.HasPrefix(data, got), "%s: wrong bytes returned", what)
			}
			step := 1
			if len(orig) > 3000 {
				step = len(orig) / 3000
			}
			for i := 0; i < len(orig); i += step {
				bad := bytes.Clone(orig)
				bad[i] ^= 1 << (i % 8)
				require.NoError(t, os.WriteFile(p, bad, 0o600))
				check(fmt.Sprintf("flip at %d", i))
			}
			// Swap frames 0 and 1 (of equal stored length).
			require.NoError(t, os.WriteFile(p, orig, 0o600))
			r, err := s.Open(ctx, d, key)
			require.NoError(t, err)
			require.Equal(t, r.table[0].length, r.table[1].length)
			{
				bad := bytes.Clone(orig)
				f0 := orig[r.offs[0]:r.offs[1]]
				f1 := orig[r.offs[1] : r.offs[1]+int64(len(f0))]
				copy(bad[r.offs[0]:], f1)
				copy(bad[r.offs[1]:], f0)
				require.NoError(t, os.WriteFile(p, bad, 0o600))
				check("swap")
			}
			r.Close()
			// Truncation.
			require.NoError(t, os.WriteFile(p, orig[:len(orig)-9], 0o600))
			check("truncate")
			require.NoError(t, os.WriteFile(p, orig, 0o600))
			// A wrong key.
			if c.sealed {
				_, err := s.Open(ctx, d, keyFor(t, c))
				require.ErrorIs(t, err, ErrCorrupt)
			}
		})
	}
}

// TestWriteTo copies blobs whole and from odd positions with io.Copy
// (which uses WriteTo), and checks a corrupt frame stops the copy.
func TestWriteTo(t *testing.T) {
	ctx := context.Background()
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t, c)
			key := keyFor(t, c)
			data := append(goSourceTar(t, 5*testFrame), randomBytes(3*testFrame+17)...)
			d := put(t, s, "w", key, data)
			for _, start := range []int64{0, 1, testFrame, testFrame + 5, int64(len(data)) - 1, int64(len(data))} {
				r, err := s.Open(ctx, d, key)
				require.NoError(t, err)
				_, err = r.Seek(start, io.SeekStart)
				require.NoError(t, err)
				var out bytes.Buffer
				n, err := io.Copy(&out, r)
				require.NoError(t, err)
				require.Equal(t, int64(len(data))-start, n)
				require.True(t, bytes.Equal(data[start:], out.Bytes()), "from %d", start)
				r.Close()
			}
			// A flipped byte in frame 4 stops the copy after frames 0-3.
			p, _ := s.Path(d)
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			r, err := s.Open(ctx, d, key)
			require.NoError(t, err)
			b[r.offs[4]+frameHdrSize+20] ^= 0xff
			r.Close()
			require.NoError(t, os.WriteFile(p, b, 0o600))
			// The store's shared frames were authenticated when decoded and
			// are still served; a store opened afresh decodes from the file.
			s2, err := Open(s.Dir(), &Options{FrameSize: testFrame})
			require.NoError(t, err)
			defer s2.Close()
			r, err = s2.Open(ctx, d, key)
			require.NoError(t, err)
			defer r.Close()
			var out bytes.Buffer
			n, err := io.Copy(&out, r)
			require.ErrorIs(t, err, ErrCorrupt)
			require.Equal(t, int64(4*testFrame), n)
			require.True(t, bytes.Equal(data[:n], out.Bytes()))
		})
	}
}

// TestSharedFrames: concurrent sequential readers of one blob decode each
// frame once and all get the right bytes.
func TestSharedFrames(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, configs[3])
	key := keyFor(t, configs[3])
	data := append(goSourceTar(t, 4*testFrame), randomBytes(4*testFrame+3)...)
	d := put(t, s, "w", key, data)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Open(ctx, d, key)
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			var out bytes.Buffer
			if _, err := io.Copy(&out, r); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(data, out.Bytes()) {
				errs <- fmt.Errorf("wrong bytes")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	s.shared.mu.Lock()
	defer s.shared.mu.Unlock()
	assert.Equal(t, int(framesFor(int64(len(data)), testFrame)), s.shared.lru.Len(), "each frame decoded and kept once")
}

// TestWriteToWithoutSlots: with every read-ahead slot of the process
// taken, WriteTo decodes frame by frame and still copies everything.
func TestWriteToWithoutSlots(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, configs[3])
	key := keyFor(t, configs[3])
	data := append(goSourceTar(t, 3*testFrame), randomBytes(2*testFrame+5)...)
	d := put(t, s, "w", key, data)
	for range cap(aheadSlots) {
		aheadSlots <- struct{}{}
	}
	defer func() {
		for range cap(aheadSlots) {
			<-aheadSlots
		}
	}()
	r, err := s.Open(ctx, d, key)
	require.NoError(t, err)
	defer r.Close()
	var out bytes.Buffer
	_, err = io.Copy(&out, r)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, out.Bytes()))
}
