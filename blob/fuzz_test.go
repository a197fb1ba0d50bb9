package blob_test

// Fuzz targets for the blob file decoder: stored files are untrusted
// input. Both start from the files in testdata/blobfiles, which
// `go generate ./blob` writes (internal/fuzzfiles).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/blobtest"
)

// fuzzKey is the data key of the sealed files in testdata/blobfiles.
var fuzzKey = bytes.Repeat([]byte{7}, 32)

// blobFile is one file of testdata/blobfiles, with what it holds.
type blobFile struct {
	name    string
	file    []byte
	digest  digest.Digest
	key     []byte // nil: plain
	content []byte
	parts   *blob.File
}

// loadBlobFiles reads testdata/blobfiles and decodes each file once,
// checking that it holds the content its digest names.
func loadBlobFiles(tb testing.TB) []blobFile {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "blobfiles", "*.blob"))
	require.NoError(tb, err)
	require.NotEmpty(tb, paths, "no testdata/blobfiles: run go generate ./blob")
	dir := tb.TempDir()
	s, err := blob.Open(dir, nil)
	require.NoError(tb, err)
	defer s.Close()
	var out []blobFile
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(tb, err)
		d, sealed, ok := blob.HeaderDigest(b)
		require.True(tb, ok, p)
		bf := blobFile{name: filepath.Base(p), file: b, digest: d}
		if sealed {
			bf.key = fuzzKey
		}
		placeFile(tb, s, d, b)
		r, err := s.Open(context.Background(), d, bf.key)
		require.NoError(tb, err, p)
		bf.content, err = io.ReadAll(r)
		r.Close()
		require.NoError(tb, err, p)
		require.Equal(tb, d, digest.FromBytes(bf.content), p)
		path, err := s.Path(d)
		require.NoError(tb, err)
		bf.parts, err = blob.ParseFile(path, d, bf.key)
		require.NoError(tb, err, p)
		out = append(out, bf)
	}
	return out
}

// placeFile puts b in s as the file of blob d, by rename.
func placeFile(tb testing.TB, s *blob.Store, d digest.Digest, b []byte) {
	tb.Helper()
	p, err := s.Path(d)
	require.NoError(tb, err)
	require.NoError(tb, os.MkdirAll(filepath.Dir(p), 0o700))
	tmp := filepath.Join(s.Dir(), "placing")
	require.NoError(tb, os.WriteFile(tmp, b, 0o600))
	require.NoError(tb, os.Rename(tmp, p))
}

// FuzzDecode feeds arbitrary bytes to the store as a blob file: Stat and
// Open never panic and fail only with ErrCorrupt, reads stay inside their
// buffers, and a sealed file that reads without error holds the content
// its header's digest names.
func FuzzDecode(f *testing.F) {
	for _, bf := range loadBlobFiles(f) {
		f.Add(bf.file)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, file []byte) {
		d, sealed, ok := blob.HeaderDigest(file)
		if !ok {
			return // no digest, so no path to put it at
		}
		var key []byte
		if sealed {
			key = fuzzKey
		}
		ctx := context.Background()
		s, err := blob.Open(dir, nil)
		require.NoError(t, err)
		defer s.Close()
		placeFile(t, s, d, file)
		if info, err := s.Stat(ctx, d); err != nil {
			require.ErrorIs(t, err, blob.ErrCorrupt)
		} else {
			require.GreaterOrEqual(t, info.Size, int64(0))
		}
		r, err := s.Open(ctx, d, key)
		if err != nil {
			require.ErrorIs(t, err, blob.ErrCorrupt)
			return
		}
		defer r.Close()
		got, err := io.ReadAll(r)
		if err != nil {
			require.ErrorIs(t, err, blob.ErrCorrupt)
		} else if sealed {
			require.Equal(t, d, digest.FromBytes(got), "a sealed file read without error holds other content than its digest names")
		}
		for _, off := range []int64{0, 1, r.Size() / 2, r.Size() - 1, r.Size(), r.Size() + 10} {
			_, _, err := blobtest.ReadAtGuarded(t, r, max(off, 0), 100)
			if err != nil && !errors.Is(err, io.EOF) {
				require.ErrorIs(t, err, blob.ErrCorrupt)
			}
		}
	})
}

// FuzzTamper tampers with a valid stored file, then reads it at random
// offsets and lengths into exactly sized buffers with guard bytes after
// them. Input: which file of testdata/blobfiles; structural edits, applied
// to the file taken apart and encoded again under its key (a writer that
// holds the key); byte edits; whether to recompute the header's check
// after them (likewise); and a list of reads.
//
// Whatever the file holds: nothing panics, no read writes outside its
// buffer, errors are ErrCorrupt (or io.EOF; ErrKeyRequired when a plain
// file now says it is sealed), a read that returns no error
// fills its buffer, and the buffer past what was returned holds no bytes
// of a frame that failed. When the file was not sealed again (so only
// someone without the key touched it), every byte returned is the
// original content at that offset.
func FuzzTamper(f *testing.F) {
	files := loadBlobFiles(f)
	for i := range files {
		f.Add(uint8(i), []byte{}, []byte{}, false, []byte{0, 0, 0, 0, 0xff, 0xff, 0})
		f.Add(uint8(i), []byte{}, []byte{0, 0, 0, 0, 200, 1}, false, []byte{0, 0, 0, 0, 0x10, 0, 0})
		f.Add(uint8(i), []byte{0, 0, 90}, []byte{}, false, []byte{0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0x10, 0, 0x10, 0, 0})
		f.Add(uint8(i), []byte{2, 1, 7}, []byte{}, false, []byte{0, 0, 0, 0, 0x20, 0, 0})
		f.Add(uint8(i), []byte{}, []byte{6, 0, 0, 0, 0, 3}, true, []byte{0, 0, 0, 0, 0x20, 0, 0})
		f.Add(uint8(i), []byte{}, []byte{7, 0, 0, 0, 2, 2}, true, []byte{0, 0, 0, 0, 0x20, 0, 0})
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, which uint8, structural, edits []byte, reseal bool, reads []byte) {
		base := files[int(which)%len(files)]
		file := base.file
		forged := reseal
		if len(structural) >= 3 {
			parts := cloneParts(base.parts)
			for op := range slices.Chunk(structural, 3) {
				if len(op) == 3 {
					editParts(parts, op[0], op[1], op[2])
				}
			}
			var err error
			file, err = parts.Encode()
			require.NoError(t, err)
			forged = true
		}
		file = bytes.Clone(file)
		for op := range slices.Chunk(edits, 6) {
			if len(op) == 6 {
				file = editBytes(file, op[0], binary.BigEndian.Uint32(op[1:5]), op[5])
			}
		}
		if reseal && len(file) >= blob.HeaderSize {
			require.NoError(t, blob.Reseal(file, base.key))
		}

		ctx := context.Background()
		s, err := blob.Open(dir, nil) // a fresh store: no frames shared with an earlier input
		require.NoError(t, err)
		defer s.Close()
		placeFile(t, s, base.digest, file)
		if info, err := s.Stat(ctx, base.digest); err != nil {
			require.ErrorIs(t, err, blob.ErrCorrupt)
		} else {
			require.GreaterOrEqual(t, info.Size, int64(0))
		}
		r, err := s.Open(ctx, base.digest, base.key)
		if err != nil {
			if base.key == nil && errors.Is(err, blob.ErrKeyRequired) {
				return // the plain file now says it is sealed
			}
			require.ErrorIs(t, err, blob.ErrCorrupt)
			return
		}
		defer r.Close()
		size := r.Size()
		require.GreaterOrEqual(t, size, int64(0))
		if !forged {
			require.Equal(t, int64(len(base.content)), size, "an authenticated header's size")
		}
		for rd := range slices.Chunk(reads, 7) {
			if len(rd) < 7 {
				break
			}
			off := int64(binary.BigEndian.Uint32(rd[0:4]))
			n := int(binary.BigEndian.Uint16(rd[4:6]))
			switch rd[6] % 4 {
			case 1:
				off = size - off%(size+1) // near the end
			case 2:
				off += math.MaxInt64 - math.MaxUint32 // far past it
			case 3:
				r.Advise(off, int64(n)-1<<15)
				off %= size + 1
			}
			p, m, err := blobtest.ReadAtGuarded(t, r, off, n)
			switch {
			case err == nil:
				require.Equal(t, n, m, "a read without error fills its buffer")
			case errors.Is(err, io.EOF):
			default:
				require.ErrorIs(t, err, blob.ErrCorrupt)
			}
			if !bytes.Equal(make([]byte, n-m), p[m:]) {
				t.Fatalf("ReadAt(len %d, off %d) = %d, %v: bytes left in the buffer past what was returned", n, off, m, err)
			}
			if !forged && m > 0 && !bytes.Equal(base.content[off:off+int64(m)], p[:m]) {
				t.Fatalf("ReadAt(len %d, off %d): bytes returned from a file tampered with by someone without the key are not its content", n, off)
			}
		}
		pos := int64(0)
		if len(reads) > 0 {
			pos = int64(reads[0]) * int64(len(reads))
		}
		_, err = r.Seek(pos, io.SeekStart)
		require.NoError(t, err)
		var out bytes.Buffer
		if _, err := io.Copy(&out, r); err != nil {
			require.ErrorIs(t, err, blob.ErrCorrupt)
		}
		if !forged && pos < int64(len(base.content)) {
			require.True(t, bytes.Equal(base.content[pos:pos+int64(out.Len())], out.Bytes()), "WriteTo from %d: bytes written", pos)
		}
	})
}

// cloneParts is a deep copy of f.
func cloneParts(f *blob.File) *blob.File {
	c := *f
	c.Digest = bytes.Clone(f.Digest)
	c.Zstd = slices.Clone(f.Zstd)
	c.Data = make([][]byte, len(f.Data))
	for i, d := range f.Data {
		c.Data[i] = bytes.Clone(d)
	}
	return &c
}

// editParts applies one structural edit to f: op chooses what, a and b
// say where and how much.
func editParts(f *blob.File, op, a, b byte) {
	i := int(a) % max(len(f.Data), 1)
	switch op % 8 {
	case 0: // a frame holds more bytes
		if len(f.Data) > 0 {
			f.Data[i] = append(f.Data[i], bytes.Repeat([]byte{b}, int(b)+1)...)
		}
	case 1: // a frame holds fewer bytes
		if len(f.Data) > 0 {
			f.Data[i] = f.Data[i][:len(f.Data[i])-min(len(f.Data[i]), int(b)+1)]
		}
	case 2: // the header's size moves
		f.Size += uint64(int64(int8(b)))
	case 3: // the header's frame count moves
		f.Frames += uint32(int32(int8(b)))
	case 4: // a frame's codec flips
		if len(f.Data) > 0 {
			f.Zstd[i] = !f.Zstd[i]
		}
	case 5: // a frame goes
		if len(f.Data) > 1 {
			f.Data = slices.Delete(f.Data, i, i+1)
			f.Zstd = slices.Delete(f.Zstd, i, i+1)
		}
	case 6: // a frame comes twice
		if len(f.Data) > 0 {
			f.Data = slices.Insert(f.Data, i, bytes.Clone(f.Data[i]))
			f.Zstd = slices.Insert(f.Zstd, i, f.Zstd[i])
		}
	case 7: // the header's frame size changes
		f.FrameSize = uint32(blob.MinFrameSize) << (b % 13)
	}
}

// interesting32 and interesting64 are values that break sums and bounds.
var (
	interesting32 = []uint32{0, 1, 7, 8, 4096, 4124, math.MaxInt32, math.MaxInt32 + 1, math.MaxUint32 - 7, math.MaxUint32}
	interesting64 = []uint64{0, 1, 160, 1 << 31, 1 << 32, 1 << 56, math.MaxInt64, 1 << 63, math.MaxUint64 - 7, math.MaxUint64}
)

// editBytes applies one byte-level edit to b: op chooses what, at pos
// (modulo the length), with v.
func editBytes(b []byte, op byte, pos uint32, v byte) []byte {
	if len(b) == 0 {
		return b
	}
	i := int(pos % uint32(len(b)))
	switch op % 8 {
	case 0:
		b[i] ^= v | 1
	case 1:
		b[i] = v
	case 2: // truncate
		return b[:i]
	case 3: // extend
		return append(b, bytes.Repeat([]byte{v}, int(v)+1)...)
	case 4: // a 32-bit field anywhere
		if i+4 <= len(b) {
			binary.BigEndian.PutUint32(b[i:], interesting32[int(v)%len(interesting32)])
		}
	case 5: // a 64-bit field anywhere
		if i+8 <= len(b) {
			binary.BigEndian.PutUint64(b[i:], interesting64[int(v)%len(interesting64)])
		}
	case 6: // a header field: size, frame count or table offset
		at := []int{32, 40, 112}[int(pos)%3]
		if at+8 <= len(b) {
			if at == 40 {
				binary.BigEndian.PutUint32(b[at:], interesting32[int(v)%len(interesting32)])
			} else {
				binary.BigEndian.PutUint64(b[at:], interesting64[int(v)%len(interesting64)])
			}
		}
	case 7: // the length in a frame table entry
		entry := len(b) - blob.TableEntrySize*(1+int(pos)%4)
		if entry >= blob.HeaderSize {
			binary.BigEndian.PutUint32(b[entry:], interesting32[int(v)%len(interesting32)])
		}
	}
	return b
}

// bytesSource is stored bytes in memory as a Source (what an object
// store's ranged reads return).
type bytesSource struct{ *bytes.Reader }

func (bytesSource) Close() error { return nil }

// FuzzNewReader feeds arbitrary bytes to the paths another backend uses
// (InfoFromHeader for Stat, NewReader over ranged reads for Open): they
// never panic, fail only with ErrCorrupt (ErrKeyRequired for a sealed
// header without a key), and reads stay inside their buffers.
func FuzzNewReader(f *testing.F) {
	for _, bf := range loadBlobFiles(f) {
		f.Add(bf.file)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		d, sealed, ok := blob.HeaderDigest(file)
		if !ok {
			d = digest.FromBytes(file)
		}
		if _, err := blob.InfoFromHeader(d, file, int64(len(file)), time.Time{}); err != nil {
			require.ErrorIs(t, err, blob.ErrCorrupt)
		}
		var key []byte
		if sealed {
			key = fuzzKey
		}
		r, err := blob.NewReader(bytesSource{bytes.NewReader(file)}, int64(len(file)), d, key)
		if err != nil {
			if !errors.Is(err, blob.ErrKeyRequired) {
				require.ErrorIs(t, err, blob.ErrCorrupt)
			}
			return
		}
		defer r.Close()
		for _, off := range []int64{0, 1, r.Size() / 2, r.Size() - 1, r.Size(), r.Size() + 10} {
			_, _, err := blobtest.ReadAtGuarded(t, r, max(off, 0), 100)
			if err != nil && !errors.Is(err, io.EOF) {
				require.ErrorIs(t, err, blob.ErrCorrupt)
			}
		}
	})
}
