package blob_test

// Files a hostile writer could leave: lengths and counts in a stored file
// that disagree with its frames, or that overflow when added up. A read
// must fail with ErrCorrupt, write nothing outside the caller's buffer
// and leave no bytes of a failed frame in it.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/blobtest"
)

// forge rewrites blob d's file after edit has changed its parts, sealed
// again under key (a writer that holds the data key, or a bug in one;
// with key nil anyone can, since a plain file's checks are not keyed).
// The new file replaces the old by rename.
func forge(t *testing.T, s *blob.Store, d digest.Digest, key []byte, edit func(f *blob.File)) {
	t.Helper()
	p, err := s.Path(d)
	require.NoError(t, err)
	f, err := blob.ParseFile(p, d, key)
	require.NoError(t, err)
	edit(f)
	b, err := f.Encode()
	require.NoError(t, err)
	replaceFile(t, p, b)
}

// replaceFile puts b at p by writing a new file and renaming it over p.
func replaceFile(t *testing.T, p string, b []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(p), ".forged")
	require.NoError(t, os.WriteFile(tmp, b, 0o600))
	require.NoError(t, os.Rename(tmp, p))
}

// readRange is one ReadAt of a test: n bytes at off.
type readRange struct{ off, n int64 }

func (r readRange) overlaps(frame, frameSize int64) bool {
	return r.off < (frame+1)*frameSize && r.off+r.n > frame*frameSize
}

// TestReadAtStaysInsideBuffer forges files whose frames decode to more or
// fewer bytes than the header and table say (sealed again, so only the
// length checks stand in the way) and reads them into exactly sized
// buffers with guard bytes after them.
func TestReadAtStaysInsideBuffer(t *testing.T) {
	const fs = blob.MinFrameSize
	cases := []struct {
		name string
		edit func(f *blob.File)
		bad  int64 // the frame that must fail
	}{
		{"header-size-short-of-last-frame", func(f *blob.File) { f.Size -= 90 }, 2},
		{"last-frame-longer", func(f *blob.File) { f.Data[2] = append(f.Data[2], bytes.Repeat([]byte("x"), 90)...) }, 2},
		{"last-frame-shorter", func(f *blob.File) { f.Data[2] = f.Data[2][:len(f.Data[2])-7] }, 2},
		{"middle-frame-longer", func(f *blob.File) { f.Data[1] = append(f.Data[1], bytes.Repeat([]byte("y"), 20)...) }, 1},
		{"middle-frame-shorter", func(f *blob.File) { f.Data[1] = f.Data[1][:fs-10] }, 1},
	}
	ctx := context.Background()
	for _, c := range configs {
		c.frameSize = fs
		for _, tc := range cases {
			t.Run(c.name+"/"+tc.name, func(t *testing.T) {
				s := openStore(t, c, "")
				key := keyFor(t, c)
				content := blobtest.SourceTar(t, 2*fs+100)
				d := blobtest.Put(t, s, "f", key, content)
				var size int64
				forge(t, s, d, key, func(f *blob.File) {
					tc.edit(f)
					for i := range f.Zstd {
						f.Zstd[i] = c.compress
					}
					size = int64(f.Size)
				})
				r, err := s.Open(ctx, d, key)
				if err != nil {
					// Refused outright: a stored frame longer than any can be.
					require.ErrorIs(t, err, blob.ErrCorrupt)
					return
				}
				defer r.Close()
				reads := []readRange{{0, size}, {fs - 3, 10}, {fs + 1, fs}, {2 * fs, 5}, {fs - 1, fs + 2}}
				for i := int64(0); i*fs < size; i++ {
					reads = append(reads, readRange{i * fs, min(fs, size-i*fs)})
				}
				for _, rr := range reads {
					p, n, err := blobtest.ReadAtGuarded(t, r, rr.off, int(rr.n))
					what := fmt.Sprintf("ReadAt(len %d, off %d)", rr.n, rr.off)
					if rr.overlaps(tc.bad, fs) {
						require.ErrorIs(t, err, blob.ErrCorrupt, what)
					} else if err != nil {
						require.ErrorIs(t, err, io.EOF, what)
					}
					require.Equal(t, content[rr.off:rr.off+int64(n)], p[:n], "%s: bytes returned", what)
					require.Equal(t, make([]byte, len(p)-n), p[n:], "%s: bytes left in the buffer past what was returned", what)
				}
				var out bytes.Buffer
				_, err = io.Copy(&out, r)
				require.ErrorIs(t, err, blob.ErrCorrupt, "WriteTo")
				require.Equal(t, content[:out.Len()], out.Bytes(), "WriteTo: bytes written")
				require.LessOrEqual(t, int64(out.Len()), tc.bad*fs)
			})
		}
	}
}

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestImpossibleHeaders forges headers whose numbers overflow: a size
// beyond int64, and a table offset that wraps around so that a huge frame
// count seems to fit the file. Open and Stat refuse them, and refuse them
// before allocating anything that size.
func TestImpossibleHeaders(t *testing.T) {
	ctx := context.Background()
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			for _, tc := range []struct {
				name string
				edit func(f *blob.File, fileLen uint64)
			}{
				{"size-over-int64", func(f *blob.File, _ uint64) { f.Size = 1<<63 + 5 }},
				{"size-over-frames", func(f *blob.File, _ uint64) { f.Size = math.MaxUint64 - 2 }},
				{"table-offset-wraps", func(f *blob.File, fileLen uint64) {
					f.Frames = 1 << 24
					f.Size = uint64(f.Frames) * uint64(f.FrameSize)
					f.TableOff = fileLen - uint64(f.Frames)*blob.TableEntrySize // wraps below zero
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					s := openStore(t, c, "")
					key := keyFor(t, c)
					d := blobtest.Put(t, s, "f", key, []byte("hello"))
					forge(t, s, d, key, func(f *blob.File) {
						b, err := f.Encode()
						require.NoError(t, err)
						tc.edit(f, uint64(len(b)))
					})
					var err error
					n := allocated(func() {
						var r *blob.Reader
						if r, err = s.Open(ctx, d, key); err == nil {
							r.Close()
						}
					})
					require.ErrorIs(t, err, blob.ErrCorrupt)
					require.Less(t, n, uint64(1<<20), "bytes allocated to refuse the file")
					_, err = s.Stat(ctx, d)
					require.ErrorIs(t, err, blob.ErrCorrupt)
				})
			}
		})
	}
}

// TestAdviseOverflow: a hint whose end overflows int64 is clamped to the
// blob, not turned into a frame index.
func TestAdviseOverflow(t *testing.T) {
	s := openStore(t, configs[0], "")
	data := blobtest.RandomBytes(3*testFrame + 1)
	d := blobtest.Put(t, s, "a", nil, data)
	r, err := s.Open(context.Background(), d, nil)
	require.NoError(t, err)
	defer r.Close()
	for _, a := range [][2]int64{{2, math.MaxInt64}, {math.MaxInt64, math.MaxInt64}, {0, math.MinInt64}, {testFrame, math.MaxInt64 - 1}} {
		require.NotPanics(t, func() { r.Advise(a[0], a[1]) }, "Advise(%d, %d)", a[0], a[1])
	}
	blobtest.CheckReadAt(t, r, data, 0, len(data))
}

// TestResumeRefusesOversizedTail: a resume state (kept by the caller, in
// the index) whose partial frame is longer than any frame can be is
// refused before it is read into memory.
func TestResumeRefusesOversizedTail(t *testing.T) {
	ctx := context.Background()
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t, c, "")
			key := keyFor(t, c)
			w, err := s.NewWriter(ctx, "u", blob.WriterOptions{DataKey: key})
			require.NoError(t, err)
			_, err = w.Write(blobtest.RandomBytes(testFrame + 10))
			require.NoError(t, err)
			st, err := w.Checkpoint(ctx)
			require.NoError(t, err)
			require.NoError(t, w.Close())
			bad := st
			bad.TailLen = 256 << 20
			n := allocated(func() { _, err = s.ResumeWriter(ctx, "u", bad, blob.WriterOptions{DataKey: key}) })
			require.ErrorIs(t, err, blob.ErrBadState)
			require.Less(t, n, uint64(16<<20), "bytes allocated to refuse the state")
			w, err = s.ResumeWriter(ctx, "u", st, blob.WriterOptions{DataKey: key})
			require.NoError(t, err)
			require.NoError(t, w.Cancel())
		})
	}
}

// TestSharedFramesKeyedByAuthentication: the store's shared frame cache
// never serves one file's frames to a reader of another file, though the
// other copies the first's file id and digest. An encrypted blob is read
// (its frames cached); a plain file planted in its place with the same id
// is refused to a reader holding the blob's key and read from its own
// frames by one without; and frames cached from a planted plain file are
// never served to a reader of the genuine sealed file put back.
func TestSharedFramesKeyedByAuthentication(t *testing.T) {
	ctx := context.Background()
	c := config{name: "sealed-zstd", sealed: true, compress: true}
	for _, inPlace := range []bool{false, true} {
		t.Run(fmt.Sprintf("in-place=%v", inPlace), func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, c, dir)
			key := keyFor(t, c)
			genuine := blobtest.SourceTar(t, 3*testFrame+7)
			d := blobtest.Put(t, s, "a", key, genuine)
			p, err := s.Path(d)
			require.NoError(t, err)
			sealedFile, err := os.ReadFile(p)
			require.NoError(t, err)

			// The planted file: plain, same file id, digest and size, other bytes.
			f, err := blob.ParseFile(p, d, key)
			require.NoError(t, err)
			planted := blobtest.RandomBytes(len(genuine))
			f.Key = nil
			for i := range f.Data {
				f.Data[i] = planted[i*testFrame : i*testFrame+len(f.Data[i])]
			}
			plainFile, err := f.Encode()
			require.NoError(t, err)

			put := func(b []byte) {
				if inPlace {
					require.NoError(t, os.WriteFile(p, b, 0o600))
				} else {
					replaceFile(t, p, b)
				}
			}
			copyAll := func(s *blob.Store, key []byte) ([]byte, error) {
				r, err := s.Open(ctx, d, key)
				if err != nil {
					return nil, err
				}
				defer r.Close()
				var out bytes.Buffer
				_, err = io.Copy(&out, r) // WriteTo: through the shared frames
				return out.Bytes(), err
			}

			t.Run("sealed-then-plain", func(t *testing.T) {
				got, err := copyAll(s, key)
				require.NoError(t, err)
				require.True(t, bytes.Equal(genuine, got), "genuine read")
				put(plainFile)
				got, err = copyAll(s, nil)
				require.NoError(t, err)
				require.False(t, bytes.Equal(genuine, got), "a reader of the planted file was served the sealed blob's cached frames")
				require.True(t, bytes.Equal(planted, got), "a reader of the planted file reads its frames")
				_, err = copyAll(s, key)
				require.ErrorIs(t, err, blob.ErrCorrupt, "a plain file opened with a data key")
			})
			t.Run("plain-then-sealed", func(t *testing.T) {
				s := openStore(t, c, dir) // an empty cache
				put(plainFile)
				got, err := copyAll(s, nil)
				require.NoError(t, err)
				require.True(t, bytes.Equal(planted, got))
				put(sealedFile)
				got, err = copyAll(s, key)
				require.NoError(t, err)
				require.False(t, bytes.Equal(planted, got), "a reader of the sealed blob was served frames cached from the planted plain file")
				require.True(t, bytes.Equal(genuine, got))
			})
		})
	}
}
