// Package blobtest is the conformance suite of blob stores, after
// containerd's content store suite. Run checks every role of a
// blob.Backend against the contract written on those interfaces: reads
// (whole, sequential, from a position, at every offset around frame
// boundaries into exactly sized buffers with guard bytes after them,
// concurrently), ingests (Write and ReadFrom, checkpoint and resume across
// a restart, commit refused for a wrong digest, size or limit, cancel and
// close), and delete, walk and stat, with the error each refusal wraps.
//
// Package blob runs it over every configuration of its Store (plain,
// compressed, encrypted; small and default frames; shared frames off);
// another backend runs it over its own:
//
//	func TestConformance(t *testing.T) {
//		blobtest.Run(t, func(t *testing.T) blobtest.Target[*s3.Reader, *s3.Writer] {
//			return blobtest.Target[*s3.Reader, *s3.Writer]{Store: newBucket(t), FrameSize: 1 << 20}
//		})
//	}
//
// The helpers (RandomBytes, SourceTar, Gzip, Put, ReadAtGuarded,
// CheckReadAt) are shared with the tests of blob's implementations.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
)

// Target is one store under test, made afresh for every test of the suite.
type Target[C blob.Content, I blob.Ingest] struct {
	// Store is the store, empty.
	Store blob.Backend[C, I]
	// Reopen closes Store and opens it again over the same storage, as a
	// restarted process would; the resume test continues its uploads
	// across it. nil: uploads resume within the one store.
	Reopen func(t *testing.T) blob.Backend[C, I]
	// DataKey returns a new data key for each blob; nil: blobs are stored
	// plain.
	DataKey func(t *testing.T) []byte
	// FrameSize is the store's unit of independent reading (a frame): the
	// suite sizes blobs and reads around multiples of it.
	FrameSize int
}

func (tg Target[C, I]) key(t *testing.T) []byte {
	if tg.DataKey == nil {
		return nil
	}
	return tg.DataKey(t)
}

// Run runs the suite, each test as a subtest with its own target from
// newTarget.
func Run[C blob.Content, I blob.Ingest](t *testing.T, newTarget func(t *testing.T) Target[C, I]) {
	tests := []struct {
		name string
		run  func(t *testing.T, tg Target[C, I])
	}{
		{"RoundTrip", testRoundTrip[C, I]},
		{"IngestReadFrom", testIngestReadFrom[C, I]},
		{"ReadAtFrameBoundaries", testReadAtFrameBoundaries[C, I]},
		{"ReadSeek", testReadSeek[C, I]},
		{"ConcurrentReads", testConcurrentReads[C, I]},
		{"Resume", testResume[C, I]},
		{"ResumeRefusals", testResumeRefusals[C, I]},
		{"CommitRefusals", testCommitRefusals[C, I]},
		{"CancelAndClose", testCancelAndClose[C, I]},
		{"Delete", testDelete[C, I]},
		{"Walk", testWalk[C, I]},
		{"Missing", testMissing[C, I]},
		{"Keys", testKeys[C, I]},
		{"SHA512", testSHA512[C, I]},
		{"PushTwice", testPushTwice[C, I]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t)
			require.NotNil(t, tg.Store, "Target.Store")
			require.Positive(t, tg.FrameSize, "Target.FrameSize")
			tc.run(t, tg)
		})
	}
}

// checkBlob checks that blob d of s holds data: Stat, then reads through
// Read alone, WriteTo, and ReadAt at random ranges.
func checkBlob[C blob.Content, I blob.Ingest](t *testing.T, s blob.Backend[C, I], d digest.Digest, key, data []byte) {
	t.Helper()
	ctx := context.Background()
	info, err := s.Stat(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, d, info.Digest)
	assert.Equal(t, int64(len(data)), info.Size)
	assert.Equal(t, key != nil, info.Sealed)
	assert.Positive(t, info.StoredSize)
	assert.WithinDuration(t, time.Now(), info.ModTime, time.Hour, "Stat's ModTime is the commit's time")

	r, err := s.Open(ctx, d, key)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	require.Equal(t, int64(len(data)), r.Size())
	require.Equal(t, d, r.Digest())
	got, err := io.ReadAll(struct{ io.Reader }{r}) // Read alone
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "Read: content differs")

	_, err = r.Seek(0, io.SeekStart)
	require.NoError(t, err)
	var out bytes.Buffer
	n, err := r.WriteTo(&out)
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), n)
	require.True(t, bytes.Equal(data, out.Bytes()), "WriteTo: content differs")

	for range 30 {
		off := mrand.Int64N(int64(len(data)) + 1)
		CheckReadAt(t, r, data, off, mrand.IntN(len(data)+1))
	}
}

func testRoundTrip[C blob.Content, I blob.Ingest](t *testing.T, tg Target[C, I]) {
	f := tg.FrameSize
	src := SourceTar(t, 3*f+17)
	large := append(RandomBytes(20*f), bytes.Repeat(src[:f], 20)...)
	large = append(large, 7)
	cases := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one-byte", []byte{42}},
		{"frame-1", RandomBytes(f - 1)},
		{"frame", RandomBytes(f)},
		{"frame+1", RandomBytes(f + 1)},
		{"three-frames", RandomBytes(3 * f)},
		{"source", src},
		{"source-gzip", Gzip(src)},
		{"zeros", make([]byte, 2*f+7)},
		{"forty-frames+1", large},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := tg.key(t)
			d := Put(t, tg.Store, fmt.Sprintf("rt%d", i), key, c.data)
			checkBlob(t, tg.Store, d, key, c.data)
		})
	}
}

func testIngestReadFrom[C blob.Content, I blob.Ingest](t *testing.T, tg Target[C, I]) {
	ctx := context.Background()
	key := tg.key(t)
	data := append(SourceTar(t, 2*tg.FrameSize), RandomBytes(tg.FrameSize+3)...)
	w, err := tg.Store.NewWriter(ctx, "rf", blob.WriterOptions{DataKey: key})
	require.NoError(t, err)
	n, err := io.Copy(w, iotest.HalfReader(bytes.NewReader(data))) // ReadFrom, in odd reads
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), n)
	require.Equal(t, int64(len(data)), w.Size())
	d := digest.FromBytes(data)
	_, err = w.Commit(ctx, d, int64(len(data)))
	require.NoError(t, err)
	checkBlob(t, tg.Store, d, key, data)
}

func testReadAtFrameBoundaries[C blob.Content, I blob.Ingest](t *testing.T, tg Target[C, I]) {
	ctx := context.Background()
	f := tg.FrameSize
	for _, kind := range []struct {
		name string
		data []byte
	}{
		{"random", RandomBytes(4*f + 3)},
		{"source", SourceTar(t, 4*f+3)},
		{"empty", nil},
	} {
		t.Run(kind.name, func(t *testing.T) {
			key := tg.key(t)
			data := kind.data
			d := Put(t, tg.Store, "b-"+kind.name, key, data)
			r, err := tg.Store.Open(ctx, d, key)
			require.NoError(t, err)
			defer r.Close()
			size := len(data)
			lens := []int{0, 1, 2, f - 1, f, f + 1, 2 * f, 2*f + 1, size}
			for b := 0; b <= size+f; b += f {
				for delta := -2; delta <= 2; delta++ {
					off := b + delta
					if off < 0 || off > size+2 {
						continue
					}
					for _, n := range lens {
						CheckReadAt(t, r, data, int64(off), n)
					}
				}
			}
			CheckReadAt(t, r, data, 1<<62, 10) // far past the end
			_, err = r.ReadAt(make([]byte, 1), -1)
			require.Error(t, err, "ReadAt at a negative offset")
		})
	}
}

func testReadSeek[C blob.Content, I blob.Ingest](t *testing.T, tg Target[C, I]) {
	ctx := context.Background()
	f := tg.FrameSize
	key := tg.key(t)
	data := SourceTar(t, 3*f+5)
	size := int64(len(data))
	d := Put(t, tg.Store, "seek", key, data)
	r, err := tg.Store.Open(ctx, d, key)
	require.NoError(t, err)
	defer r.Close()
	buf := make([]byte, f+10)
	for _, pos := range []int64{0, 1, int64(f) - 1, int64(f), 2*int64(f) + 3, size - 1, size} {
		got, err := r.Seek(pos, io.SeekStart)
		require.NoError(t, err)
		require.Equal(t, pos, got)
		n, err := io.ReadFull(r, buf)
		if pos+int64(len(buf)) <= size {
			require.NoError(t, err)
		} else if n == 0 {
			require.ErrorIs(t, err, io.EOF)
		} else {
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		}
		require.Equal(t, data[pos:pos+int64(n)], buf[:n], "Read after Seek(%d)", pos)
	}
	got, err := r.Seek(-5, io.SeekEnd)
	require.NoError(t, err)
	require.Equal(t, size-5, got)
	got, err = r.Seek(2, io.SeekCurrent)
	require.NoError(t, err)
	require.Equal(t, size-3, got)
	rest, err := io.ReadAll(struct{ io.Reader }{r})
	require.NoError(t, err)
	require.Equal(t, data[size-3:], rest)

	_, err = r.Seek(-1, io.SeekStart)
	require.Error(t, err, "Seek before the start")
	_, err = r.Seek(size+10, io.SeekStart)
	require.NoError(t, err, "Seek past the end")
	n, err := r.Read(buf)
	require.Zero(t, n)
	require.ErrorIs(t, err, io.EOF)

	for _, pos := range []int64{1, int64(f), int64(f) + 1, size} {
		_, err := r.Seek(pos, io.SeekStart)
		require.NoError(t, err)
		var out bytes.Buffer
		n, err := io.Copy(&out, r) // WriteTo from a position
		require.NoError(t, err)
		require.Equal(t, size-pos, n)
		require.True(t, bytes.Equal(data[pos:], out.Bytes()), "WriteTo from %d", pos)
	}
}

func testConcurrentReads[C blob.Content, I blob.Ingest](t *testing.T, tg Target[C, I]) {
	ctx := context.Background()
	f := tg.FrameSize
	key := tg.key(t)
	data := append(SourceTar(t, 4*f), RandomBytes(4*f+3)...)
	size := int64(len(data))
	d := Put(t, tg.Store, "conc", key, data)
	shared, err := tg.Store.Open(ctx, d, key)
	require.NoError(t, err)
	defer shared.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 { // ReadAt on one reader from many goroutines
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(g), 1))
			for range 50 {
				off := rng.Int64N(size + 1)
				if err := checkReadAt(shared, data, off, rng.IntN(2*f+1)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range 4 { // whole copies by readers of their own, meanwhile
		wg.Go(func() {
			r, err := tg.Store.Open(ctx, d, key)
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
				errs <- errors.New("concurrent WriteTo: content differs")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func testResume[C blob.Content, I blob.Ingest](t *testing.T, tg Target[C, I]) {
	ctx := context.Background()
	f := tg.FrameSize
	s := tg.Store
	key := tg.key(t)
	data := SourceTar(t, 5*f+123)
	w, err := s.NewWriter(ctx, "resume", blob.WriterOptions{DataKey: key})
	require.NoError(t, err)
	cuts := []int{0, 0, 100, f, 2*f + 1, 4 * f, len(data)}
	for i := 1; i < len(cuts); i++ {
		_, err := w.Write(data[cuts[i-1]:cuts[i]])
		require.NoError(t, err)
		st, err := w.Checkpoint(ctx)
		require.NoError(t, err)
		_, err = w.Write([]byte("written after the checkpoint, lost with the process"))
		require.NoError(t, err)
		require.NoError(t, w.Close())
		if tg.Reopen != nil {
			s = tg.Reopen(t)
		}
		w, err = s.ResumeWriter(ctx, "resume", st, blob.WriterOptions{DataKey: key})
		require.NoError(t, err, "resume at %d", cuts[i])
		require.Equal(t, int64(cuts[i]), w.Size())
	}
	d := digest.FromBytes(data)
	_, err = w.Commit(ctx, d, int64(len(data)))
	require.NoError(t, err)
	checkBlob(t, s, d, key, data)
	ids, err := s.Uploads(ctx)
	require.NoError(t, err)
	require.NotContains(t, ids, "resume", "a committed upload is no longer listed")
}

func testResumeRefusals[C blob.Content, I blob.Ingest](t *testing.T, tg Target[C, I]) {
	ctx := context.Background()
	s := tg.Store
	key := tg.key(t)
	w, err := s.NewWriter(ctx, "r", blob.WriterOptions{DataKey: key})
	require.NoError(t, err)
	_, err = w.Write(RandomBytes(2*tg.FrameSize + 3))
	require.NoError(t, err)
	st, err := w.Checkpoint(ctx)
	require.NoError(t, err)
	require.NoError(t, w.Close())

	bad := st
	bad.Size++
	_, err = s.ResumeWriter(ctx, "r", bad, blob.WriterOptions{DataKey: key})
	require.ErrorIs(t, err, blob.ErrBadState, "a size the upload does not have")
	if key != nil {
		_, err = s.ResumeWriter(ctx, "r", st, blob.WriterOptions{DataKey: tg.key(t)})
		require.ErrorIs(t, err, blob.ErrBadState, "another data key")
		_, err = s.ResumeWriter(ctx, "r", st, blob.WriterOptions{})
		require.ErrorIs(t, err, blob.ErrBadState, "no data key for a sealed upload")
	} else {
		_, err = s.ResumeWriter(ctx, "r", st, blob.WriterOptions{DataKey: RandomBytes(32)})
		require.ErrorIs(t, err, blob.ErrBadState, "a data key for a plain upload")
	}
	_, err = s.ResumeWriter(ctx, "no-such-upload", st, blob.WriterOptions{DataKey: key})
	require.ErrorIs(t, err, blob.ErrBadState, "an upload that does not exist")

	w, err = s.ResumeWriter(ctx, "r", st, blob.WriterOptions{DataKey: key})
	require.NoError(t, err, "the refusals left the upload as it was")
	require.NoError(t, w.Cancel())
}

func testCommitRefusals[C blob.Content, I blob.Ingest](t *testing.T, tg Target[C, I]) {
	ctx := context.Background()
	s := tg.Store
	key := tg.key(t)
	data := RandomBytes(tg.FrameSize + 10)
	d := digest.FromBytes(data)

	w, err := s.NewWriter(ctx, "refused", blob.WriterOptions{DataKey: key})
	require.NoError(t, err)
	_, err = w.Write(data)
	require.NoError(t, err)
	_, err = w.Commit(ctx, digest.FromString("other"), -1)
	require.ErrorIs(t, err, blob.ErrDigestMismatch)
	_, err = w.Commit(ctx, d, int64(len(data))-1)
	require.ErrorIs(t, err, blob.ErrSizeMismatch)
	_, err = w.Commit(ctx, d, int64(len(data))+1)
	require.ErrorIs(t, err, blob.ErrSizeMismatch)
	_, err = w.Commit(ctx, digest.Digest("md5:d41d8cd98f00b204e9800998ecf8427e"), -1)
	require.ErrorIs(t, err, blob.ErrUnsupportedDigest)
	_, err = s.Stat(ctx, d)
	require.ErrorIs(t, err, blob.ErrNotFound, "a refused commit stores nothing")
	// A refused commit leaves the upload open: it can still be committed.
	info, err := w.Commit(ctx, d, int64(len(data)))
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), info.Size)
	checkBlob(t, s, d, key, data)

	w, err = s.NewWriter(ctx, "limited", blob.WriterOptions{DataKey: key, Limit: 100})
	require.NoError(t, err)
	_, err = w.Write(data)
	require.ErrorIs(t, err, blob.ErrTooLarge)
	_, err = w.Write([]byte("x"))
	require.ErrorIs(t, err, blob.ErrTooLarge, "the failure sticks")
	_, err = w.Commit(ctx, d, -1)
	require.ErrorIs(t, err, blob.ErrTooLarge)
	require.NoError(t, w.Cancel())
	ids, err := s.Uploads(ctx)
	require.NoError(t, err)
	require.Empty(t, ids, "uploads left")
}

func testCancelAndClose[C blob.Content, I blob.Ingest](t *testing.T, tg Target[C, I]) {
	ctx := context.Background()
	s := tg.Store
	key := tg.key(t)
	data := RandomBytes(tg.FrameSize + 1)

	w, err := s.NewWriter(ctx, "cancelled", blob.WriterOptions{DataKey: key})
	require.NoError(t, err)
	_, err = w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Cancel())
	require.NoError(t, w.Cancel(), "a second Cancel")
	_, err = w.Write(data)
	require.ErrorIs(t, err, blob.ErrWriterClosed)
	_, err = w.Commit(ctx, digest.FromBytes(data), -1)
	require.ErrorIs(t, err, blob.ErrWriterClosed)
	_, err = s.Stat(ctx, digest.FromBytes(data))
	require.ErrorIs(t, err, blob.ErrNotFound)

	w, err = s.NewWriter(ctx, "kept", blob.WriterOptions{DataKey: key})
	require.NoError(t, err)
	_, err = w.Write(data)
	require.NoError(t, err)
	st, err := w.Checkpoint(ctx)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	_, err = w.Checkpoint(ctx)
	require.ErrorIs(t, err, blob.ErrWriterClosed)
	ids, err := s.Uploads(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"kept"}, ids, "a closed upload is kept, a cancelled one is not")
	mt, err := s.UploadModTime(ctx, "kept")
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), mt, time.Hour, "UploadModTime of a kept upload")
	_, err = s.UploadModTime(ctx, "cancelled")
	require.ErrorIs(t, err, blob.ErrNotFound, "UploadModTime of a cancelled upload")
	require.NoError(t, s.RemoveUpload("kept"))
	ids, err = s.Uploads(ctx)
	require.NoError(t, err)
	require.Empty(t, ids)
	_, err = s.ResumeWriter(ctx, "kept", st, blob.WriterOptions{DataKey: key})
	require.ErrorIs(t, err, blob.ErrBadState, "resuming a removed upload")
}

func testDelete[C blob.Content, I blob.Ingest](t *testing.T, tg Target[C, I]) {
	ctx := context.Background()
	s := tg.Store
	ka, kb := tg.key(t), tg.key(t)
	a, b := RandomBytes(tg.FrameSize+1), RandomBytes(10)
	da, db := Put(t, s, "a", ka, a), Put(t, s, "b", kb, b)
	require.NoError(t, s.Delete(ctx, da))
	_, err := s.Stat(ctx, da)
	require.ErrorIs(t, err, blob.ErrNotFound)
	_, err = s.Open(ctx, da, ka)
	require.ErrorIs(t, err, blob.ErrNotFound)
	require.ErrorIs(t, s.Delete(ctx, da), blob.ErrNotFound, "deleting it again")
	require.Equal(t, map[digest.Digest]bool{db: true}, walkAll(t, s), "Walk after Delete")
	checkBlob(t, s, db, kb, b)
	// Pushed again after its deletion, it is back.
	da = Put(t, s, "a2", ka, a)
	checkBlob(t, s, da, ka, a)
}

// walkAll returns the digests s.Walk lists, checking that it lists each
// once, with the stored size Stat gives.
func walkAll[C blob.Content, I blob.Ingest](t *testing.T, s blob.Backend[C, I]) map[digest.Digest]bool {
	t.Helper()
	ctx := context.Background()
	seen := map[digest.Digest]bool{}
	require.NoError(t, s.Walk(ctx, func(d digest.Digest, storedSize int64) error {
		if seen[d] {
			return fmt.Errorf("%s listed twice", d)
		}
		seen[d] = true
		info, err := s.Stat(ctx, d)
		if err != nil {
			return err
		}
		if info.StoredSize != storedSize {
			return fmt.Errorf("%s: Walk says %d bytes stored, Stat %d", d, storedSize, info.StoredSize)
		}
		return nil
	}))
	return seen
}

func testWalk[C blob.Content, I blob.Ingest](t *testing.T, tg Target[C, I]) {
	ctx := context.Background()
	s := tg.Store
	require.Empty(t, walkAll(t, s), "a new store")
	want := map[digest.Digest]bool{}
	for i, data := range [][]byte{nil, {1}, RandomBytes(tg.FrameSize), RandomBytes(2*tg.FrameSize + 1)} {
		want[Put(t, s, fmt.Sprintf("w%d", i), tg.key(t), data)] = true
	}
	w, err := s.NewWriter(ctx, "sha512", blob.WriterOptions{DataKey: tg.key(t), Algorithm: digest.SHA512})
	require.NoError(t, err)
	_, err = w.Write([]byte("sha512 content"))
	require.NoError(t, err)
	info, err := w.Commit(ctx, digest.SHA512.FromString("sha512 content"), -1)
	require.NoError(t, err)
	want[info.Digest] = true
	// An upload in progress is not a blob.
	w, err = s.NewWriter(ctx, "in-progress", blob.WriterOptions{DataKey: tg.key(t)})
	require.NoError(t, err)
	_, err = w.Write(RandomBytes(tg.FrameSize + 5))
	require.NoError(t, err)
	_, err = w.Checkpoint(ctx)
	require.NoError(t, err)
	defer w.Cancel()

	require.Equal(t, want, walkAll(t, s))

	errStop := errors.New("stop")
	calls := 0
	err = s.Walk(ctx, func(digest.Digest, int64) error { calls++; return errStop })
	require.ErrorIs(t, err, errStop, "fn's error is Walk's")
	require.Equal(t, 1, calls, "fn's error stops the walk")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err = s.Walk(cancelled, func(digest.Digest, int64) error { return nil })
	require.ErrorIs(t, err, context.Canceled)
}

func testMissing[C blob.Content, I blob.Ingest](t *testing.T, tg Target[C, I]) {
	ctx := context.Background()
	s := tg.Store
	missing := digest.FromString("never stored")
	_, err := s.Stat(ctx, missing)
	require.ErrorIs(t, err, blob.ErrNotFound)
	_, err = s.Open(ctx, missing, tg.key(t))
	require.ErrorIs(t, err, blob.ErrNotFound)
	require.ErrorIs(t, s.Delete(ctx, missing), blob.ErrNotFound)
	for _, bad := range []digest.Digest{"sha256:xyz", "md5:d41d8cd98f00b204e9800998ecf8427e", "", "sha256:../../etc/passwd"} {
		_, err = s.Stat(ctx, bad)
		require.ErrorIs(t, err, blob.ErrUnsupportedDigest, "Stat(%q)", bad)
		_, err = s.Open(ctx, bad, tg.key(t))
		require.ErrorIs(t, err, blob.ErrUnsupportedDigest, "Open(%q)", bad)
		require.ErrorIs(t, s.Delete(ctx, bad), blob.ErrUnsupportedDigest, "Delete(%q)", bad)
	}
}

func testKeys[C blob.Content, I blob.Ingest](t *testing.T, tg Target[C, I]) {
	ctx := context.Background()
	s := tg.Store
	key := tg.key(t)
	d := Put(t, s, "k", key, RandomBytes(tg.FrameSize+5))
	info, err := s.Stat(ctx, d)
	require.NoError(t, err)
	require.Equal(t, key != nil, info.Sealed)
	if key != nil {
		_, err = s.Open(ctx, d, nil)
		require.ErrorIs(t, err, blob.ErrKeyRequired, "a sealed blob opened without its key")
		_, err = s.Open(ctx, d, tg.key(t))
		require.ErrorIs(t, err, blob.ErrCorrupt, "a sealed blob opened with another key")
	} else {
		_, err = s.Open(ctx, d, RandomBytes(32))
		require.ErrorIs(t, err, blob.ErrCorrupt, "a plain blob opened as a sealed one")
	}
}

func testSHA512[C blob.Content, I blob.Ingest](t *testing.T, tg Target[C, I]) {
	ctx := context.Background()
	s := tg.Store
	data := RandomBytes(3*tg.FrameSize + 5)
	want := digest.SHA512.FromBytes(data)
	for _, alg := range []digest.Algorithm{digest.SHA512, digest.SHA256} {
		// Hashed as sha512 while written, or rehashed at commit.
		key := tg.key(t)
		w, err := s.NewWriter(ctx, "h-"+string(alg), blob.WriterOptions{DataKey: key, Algorithm: alg})
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
		_, err = w.Commit(ctx, want, int64(len(data)))
		require.NoError(t, err, "written as %s", alg)
		checkBlob(t, s, want, key, data)
	}
}

func testPushTwice[C blob.Content, I blob.Ingest](t *testing.T, tg Target[C, I]) {
	s := tg.Store
	data := SourceTar(t, tg.FrameSize+77)
	k1, k2 := tg.key(t), tg.key(t)
	d := Put(t, s, "first", k1, data)
	require.Equal(t, d, Put(t, s, "second", k2, data))
	// The second commit replaced the first: it reads under its own key.
	checkBlob(t, s, d, k2, data)
	require.Equal(t, map[digest.Digest]bool{d: true}, walkAll(t, s), "listed once")
}
