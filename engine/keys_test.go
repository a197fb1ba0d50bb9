package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/engine/internal/clock"
	"github.com/berthstore/berth/index"
)

// kmsRepo creates repository name keyed by key.
func kmsRepo(t testing.TB, e *Engine, name, key string) {
	t.Helper()
	_, err := e.CreateRepository(context.Background(), name, RepositorySettings{
		Encryption: EncryptionConfig{EncryptionType: EncryptionKMS, KMSKey: key}})
	require.NoError(t, err)
}

func readRepoBlob(e *Engine, repo string, d digest.Digest) ([]byte, error) {
	r, err := e.OpenBlob(context.Background(), repo, d)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// blobFiles lists the store's blob files (uploads excluded).
func blobFiles(t testing.TB, e *Engine) map[string]os.FileInfo {
	t.Helper()
	out := map[string]os.FileInfo{}
	err := filepath.Walk(filepath.Join(e.Dir(), "blobs"), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			out[p] = fi
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// TestKeysSharedBlobAndShredding: two repositories with different KEKs
// share one stored copy of a common layer; destroying one KEK leaves the
// other's images readable and the first's unreadable.
func TestKeysSharedBlobAndShredding(t *testing.T) {
	requireLocalBlobs(t, "it counts the blob files under the store's directory")
	ctx := context.Background()
	e := openTestEngine(t, &Options{FrameSize: 4 << 10})
	for _, k := range []string{"team-a", "team-b"} {
		_, err := e.CreateKey(ctx, k)
		require.NoError(t, err)
	}
	kmsRepo(t, e, "a/app", "team-a")
	kmsRepo(t, e, "b/app", "team-b")
	common, onlyA, onlyB := rnd(20<<10), rnd(9<<10), rnd(5<<10)
	pushImage(t, e, "a/app", "v1", common, onlyA)
	pushImage(t, e, "b/app", "v1", common, onlyB)
	dc := digest.FromBytes(common)

	// One stored copy, one wrap per key.
	rec, err := e.db.Blob(dc)
	require.NoError(t, err)
	require.Len(t, rec.Wraps, 2)
	assert.ElementsMatch(t, []string{"team-a", "team-b"}, []string{rec.Wraps[0].KeyID, rec.Wraps[1].KeyID})
	p, err := e.blobs.Path(dc)
	require.NoError(t, err)
	assert.Contains(t, blobFiles(t, e), p)
	for _, repo := range []string{"a/app", "b/app"} {
		got, err := readRepoBlob(e, repo, dc)
		require.NoError(t, err)
		assert.Equal(t, common, got)
	}
	keys, err := e.Keys(ctx)
	require.NoError(t, err)
	byName := map[string]KeyStatus{}
	for _, k := range keys {
		byName[k.Name] = k
	}
	assert.Equal(t, 1, byName["team-a"].Repositories)
	assert.Equal(t, 3, byName["team-a"].Blobs)     // common, onlyA, config
	assert.Equal(t, 1, byName["team-a"].OnlyBlobs) // the config is common too

	require.NoError(t, e.DestroyKey(ctx, "team-a"))

	// The first repository: unreadable, with a typed error, and it says why.
	_, err = readRepoBlob(e, "a/app", dc)
	require.ErrorIs(t, err, ErrKeyDestroyed)
	r, err := e.Repository(ctx, "a/app")
	require.NoError(t, err)
	assert.Equal(t, KeyDestroyed, r.KeyState)
	_, err = e.PutBlob(ctx, "a/app", bytes.NewReader(rnd(100)), "")
	require.ErrorIs(t, err, ErrKeyDestroyed)

	// The second: every blob of its image still reads.
	m, err := e.GetManifest(ctx, "b/app", "v1")
	require.NoError(t, err)
	for _, d := range []digest.Digest{dc, digest.FromBytes(onlyB)} {
		got, err := readRepoBlob(e, "b/app", d)
		require.NoError(t, err)
		assert.Equal(t, d, digest.FromBytes(got))
	}
	assert.NotEmpty(t, m.Payload)
	r, err = e.Repository(ctx, "b/app")
	require.NoError(t, err)
	assert.Equal(t, KeyEnabled, r.KeyState)

	// The blobs only team-a wrapped are shredded and removed (DestroyKey
	// starts the sweep; gc runs it too); the shared layer stays.
	_, err = e.SweepShredded(ctx)
	require.NoError(t, err)
	var left []digest.Digest
	require.NoError(t, e.ShreddedBlobs(ctx, func(d digest.Digest) error { left = append(left, d); return nil }))
	assert.Empty(t, left)
	_, err = e.db.Blob(digest.FromBytes(onlyA))
	require.ErrorIs(t, err, index.ErrNotFound)
	pa, _ := e.blobs.Path(digest.FromBytes(onlyA))
	assert.NotContains(t, blobFiles(t, e), pa)
	assert.Contains(t, blobFiles(t, e), p)
	_, err = readRepoBlob(e, "a/app", digest.FromBytes(onlyA))
	require.Error(t, err)

	// The same layer pushed again by a live key is stored anew.
	kmsRepo(t, e, "c/app", DefaultKeyNameForTest)
	d, err := e.PutBlob(ctx, "c/app", bytes.NewReader(onlyA), "")
	require.NoError(t, err)
	got, err := readRepoBlob(e, "c/app", d.Digest)
	require.NoError(t, err)
	assert.Equal(t, onlyA, got)
}

// DefaultKeyNameForTest is the registry's default key (kmsKey may name it).
const DefaultKeyNameForTest = crypt.DefaultKeyName

func TestKeyOpsErrors(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, nil)
	_, err := e.CreateKey(ctx, "k")
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		op   func() error
		want error
	}{
		{"create existing", func() error { _, err := e.CreateKey(ctx, "k"); return err }, ErrKeyExists},
		{"create empty", func() error { _, err := e.CreateKey(ctx, ""); return err }, ErrInvalidArgument},
		{"create pkcs11 without module", func() error { _, err := e.CreateKey(ctx, "pkcs11:token=berth;object=x"); return err }, ErrUnsupported},
		{"rotate unknown", func() error { _, err := e.RotateKey(ctx, "nope"); return err }, ErrKeyNotFound},
		{"disable unknown", func() error { return e.DisableKey(ctx, "nope") }, ErrKeyNotFound},
		{"destroy default", func() error { return e.DestroyKey(ctx, crypt.DefaultKeyName) }, ErrInvalidArgument},
		{"repository with unknown key", func() error {
			_, err := e.CreateRepository(ctx, "x", RepositorySettings{Encryption: EncryptionConfig{EncryptionType: EncryptionKMS, KMSKey: "nope"}})
			return err
		}, ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.op(), tc.want)
		})
	}
	require.NoError(t, e.DisableKey(ctx, "k"))
	_, err = e.CreateRepository(ctx, "x", RepositorySettings{Encryption: EncryptionConfig{EncryptionType: EncryptionKMS, KMSKey: "k"}})
	require.ErrorIs(t, err, ErrKeyUnavailable)
	require.NoError(t, e.EnableKey(ctx, "k"))
	kmsRepo(t, e, "x", "k")
	require.NoError(t, e.DestroyKey(ctx, "k"))
	require.ErrorIs(t, e.EnableKey(ctx, "k"), ErrKeyDestroyed)
	_, err = e.CreateRepository(ctx, "y", RepositorySettings{Encryption: EncryptionConfig{EncryptionType: EncryptionKMS, KMSKey: "k"}})
	require.ErrorIs(t, err, ErrKeyDestroyed)
}

type fileID struct {
	ino   uint64
	mtime time.Time
	size  int64
}

func fileIDs(t testing.TB, e *Engine) map[string]fileID {
	out := map[string]fileID{}
	for p, fi := range blobFiles(t, e) {
		st, ok := fi.Sys().(*syscall.Stat_t)
		require.True(t, ok)
		out[p] = fileID{ino: st.Ino, mtime: fi.ModTime(), size: fi.Size()}
	}
	return out
}

// rotateAndCheck pushes n blobs of size bytes under key k, rotates k and
// checks that every wrap moved to the new version, that no blob file
// changed (inode, mtime, size) and that every blob still reads.
func rotateAndCheck(t testing.TB, n, size int) RewrapStats {
	requireLocalBlobs(t, "it checks that no blob file under the store's directory changes")
	ctx := context.Background()
	e := openTestEngine(t, &Options{FrameSize: 64 << 10, DisableCompression: true})
	_, err := e.CreateKey(ctx, "k")
	require.NoError(t, err)
	kmsRepo(t, e, "r", "k")
	// Pushed by 8 writers at once, so that their index commits share fsyncs.
	ds := make([]digest.Digest, n)
	var next atomic.Int64
	var g errgroup.Group
	for w := 0; w < 8; w++ {
		g.Go(func() error {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				b := rnd(size)
				binary.BigEndian.PutUint64(b, uint64(i))
				d, err := e.PutBlob(ctx, "r", bytes.NewReader(b), "")
				if err != nil {
					return err
				}
				ds[i] = d.Digest
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	before := fileIDs(t, e)
	require.Len(t, before, n)

	// RotateKey starts the background rewrap; wait for it and time a
	// synchronous one over the same store for the report.
	v, err := e.RotateKey(ctx, "k")
	require.NoError(t, err)
	require.NoError(t, e.WaitRewraps(ctx))
	_, err = e.RotateKey(ctx, "k")
	require.NoError(t, err)
	require.NoError(t, e.WaitRewraps(ctx)) // the background one may win; time ours on a third version
	v3, err := e.keys.(crypt.KeyManager).RotateKey(ctx, "k")
	require.NoError(t, err)
	st, err := e.RewrapKey(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, n, st.Rewrapped)
	assert.Equal(t, v3, st.Version)
	assert.Equal(t, uint32(2), v)

	keys, err := e.Keys(ctx)
	require.NoError(t, err)
	for _, k := range keys {
		if k.Name == "k" {
			assert.Equal(t, n, k.Blobs)
			assert.Zero(t, k.StaleWraps)
			assert.False(t, k.Rewrapping)
		}
	}
	require.NoError(t, e.db.WalkBlobs(func(rec *index.Blob) error {
		require.Len(t, rec.Wraps, 1)
		assert.Equal(t, v3, rec.Wraps[0].Version)
		return nil
	}))
	assert.Equal(t, before, fileIDs(t, e), "a rotation must not touch a blob file")
	e.dropDataKeys("k")
	for _, i := range []int{0, n / 2, n - 1} {
		got, err := readRepoBlob(e, "r", ds[i])
		require.NoError(t, err)
		assert.Equal(t, ds[i], digest.FromBytes(got))
	}
	_, err = os.Stat(filepath.Join(e.Dir(), rewrapStateFile))
	assert.True(t, errors.Is(err, os.ErrNotExist), "no rewrap left pending")
	return st
}

// TestRotateRewrapsWithoutTouchingBlobs: rotation rewraps every record
// and touches no blob file.
func TestRotateRewrapsWithoutTouchingBlobs(t *testing.T) {
	st := rotateAndCheck(t, 300, 1<<10)
	t.Logf("rewrapped %d blobs in %v (%.1f µs/blob)", st.Rewrapped, st.Elapsed, float64(st.Elapsed.Microseconds())/float64(st.Rewrapped))
}

// TestRotate10000Blobs is the rotation test at full size: 10,000 blobs.
// Skipped with -short.
func TestRotate10000Blobs(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 blobs: skipped with -short")
	}
	st := rotateAndCheck(t, 10000, 1<<10)
	t.Logf("rewrapped %d blobs in %v (%.1f µs/blob)", st.Rewrapped, st.Elapsed, float64(st.Elapsed.Microseconds())/float64(st.Rewrapped))
}

// BenchmarkRewrap prints the time of a rewrap per blob for stores of
// small and of large blobs: it depends on the number of blobs, not
// their bytes.
func BenchmarkRewrap(b *testing.B) {
	for _, tc := range []struct{ n, size int }{{1000, 1 << 10}, {1000, 64 << 10}, {4000, 1 << 10}} {
		b.Run(fmt.Sprintf("blobs=%d/size=%d", tc.n, tc.size), func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				st := rotateAndCheck(b, tc.n, tc.size)
				total += st.Elapsed
				b.StartTimer()
			}
			per := total / time.Duration(b.N*tc.n)
			b.ReportMetric(float64(per.Nanoseconds()), "ns/blob")
			b.Logf("rewrap of %d blobs of %d bytes: %v per blob (%v per rewrap)", tc.n, tc.size, per, total/time.Duration(b.N))
		})
	}
}

// flakyProvider is a key provider that can be taken away, as an HSM can.
type flakyProvider struct {
	crypt.KeyManager
	down atomic.Bool
}

func (f *flakyProvider) err() error {
	if f.down.Load() {
		return fmt.Errorf("%w: test took it away", crypt.ErrUnavailable)
	}
	return nil
}

func (f *flakyProvider) Wrap(ctx context.Context, name string, dk, ad []byte) (crypt.WrappedKey, error) {
	if err := f.err(); err != nil {
		return crypt.WrappedKey{}, err
	}
	return f.KeyManager.Wrap(ctx, name, dk, ad)
}

func (f *flakyProvider) Unwrap(ctx context.Context, w crypt.WrappedKey, ad []byte) ([]byte, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.KeyManager.Unwrap(ctx, w, ad)
}

func (f *flakyProvider) Keys(ctx context.Context) ([]crypt.KeyInfo, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.KeyManager.Keys(ctx)
}

func (f *flakyProvider) RotateKey(ctx context.Context, name string) (uint32, error) {
	if err := f.err(); err != nil {
		return 0, err
	}
	return f.KeyManager.RotateKey(ctx, name)
}

// unavailableScenario runs against any provider that the test can take
// away (down) and give back (up): pushes needing a new
// wrap fail with a retryable error, cached reads go on within the cache
// lifetime, nothing is lost, and all works again without a restart.
// e runs on clk, which the scenario advances past the data-key cache's
// lifetime.
func unavailableScenario(t *testing.T, e *Engine, clk *clock.Manual, keyA, keyB string, down, up func()) {
	ctx := context.Background()
	kmsRepo(t, e, "a/app", keyA)
	kmsRepo(t, e, "b/app", keyB)
	layer := rnd(50 << 10)
	pushImage(t, e, "a/app", "v1", layer)
	dl := digest.FromBytes(layer)
	got, err := readRepoBlob(e, "a/app", dl) // caches the data key
	require.NoError(t, err)
	require.Equal(t, layer, got)

	down()
	// Cached reads keep working.
	got, err = readRepoBlob(e, "a/app", dl)
	require.NoError(t, err)
	assert.Equal(t, layer, got)
	// Pushes that need a wrap fail, retryably.
	_, err = e.PutBlob(ctx, "a/app", bytes.NewReader(rnd(1000)), "")
	require.ErrorIs(t, err, ErrKeyUnavailable)
	_, err = e.MountBlob(ctx, "b/app", "a/app", dl)
	require.ErrorIs(t, err, ErrKeyUnavailable)
	_, err = e.RotateKey(ctx, keyA)
	require.ErrorIs(t, err, ErrKeyUnavailable)
	r, err := e.Repository(ctx, "a/app")
	require.NoError(t, err)
	assert.Equal(t, KeyUnavailable, r.KeyState)
	// Past the cache lifetime, reads fail retryably too, never wrongly.
	clk.Advance(e.opts.KeyCacheTTL + time.Second)
	_, err = readRepoBlob(e, "a/app", dl)
	require.ErrorIs(t, err, ErrKeyUnavailable)

	up()
	// Nothing lost; everything works again, same engine.
	got, err = readRepoBlob(e, "a/app", dl)
	require.NoError(t, err)
	assert.Equal(t, layer, got)
	_, err = e.MountBlob(ctx, "b/app", "a/app", dl)
	require.NoError(t, err)
	got, err = readRepoBlob(e, "b/app", dl)
	require.NoError(t, err)
	assert.Equal(t, layer, got)
	pushImage(t, e, "a/app", "v2", rnd(3000))
	_, err = e.RotateKey(ctx, keyA)
	require.NoError(t, err)
	require.NoError(t, e.WaitRewraps(ctx))
	got, err = readRepoBlob(e, "a/app", dl)
	require.NoError(t, err)
	assert.Equal(t, layer, got)
}

func TestKeyProviderUnavailable(t *testing.T) {
	kr, err := crypt.OpenKeyring(filepath.Join(t.TempDir(), "keyring.json"))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, kr.CreateKey(ctx, "a"))
	require.NoError(t, kr.CreateKey(ctx, "b"))
	f := &flakyProvider{KeyManager: kr}
	clk := manualClock()
	e := openTestEngine(t, &Options{KeyProvider: f, FrameSize: 4 << 10, Clock: clk})
	unavailableScenario(t, e, clk, "a", "b", func() { f.down.Store(true) }, func() { f.down.Store(false) })
}

// A rotation whose rewrap could not finish resumes after a restart.
func TestRewrapResumesAfterRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	kr, err := crypt.OpenKeyring(filepath.Join(dir, "keyring.json"))
	require.NoError(t, err)
	require.NoError(t, kr.CreateKey(ctx, "k"))
	f := &flakyProvider{KeyManager: kr}
	clk := manualClock()
	e, err := Open(dir, &Options{KeyProvider: f, FrameSize: 4 << 10, Clock: clk})
	require.NoError(t, err)
	kmsRepo(t, e, "r", "k")
	for i := 0; i < 20; i++ {
		_, err := e.PutBlob(ctx, "r", bytes.NewReader(rnd(100)), "")
		require.NoError(t, err)
	}
	// The provider rotates, then goes away before the rewrap can run.
	_, err = kr.RotateKey(ctx, "k")
	require.NoError(t, err)
	require.NoError(t, e.setRewrapPending("k", true))
	f.down.Store(true)
	armed := clk.Timers()
	e.startRewrap("k")
	clk.WaitTimers(armed + 1)     // the worker failed and waits to retry
	require.NoError(t, e.Close()) // stops the paused worker

	f.down.Store(false)
	e, err = Open(dir, &Options{KeyProvider: f, FrameSize: 4 << 10})
	require.NoError(t, err)
	defer e.Close()
	require.NoError(t, e.WaitRewraps(ctx))
	keys, err := e.Keys(ctx)
	require.NoError(t, err)
	for _, k := range keys {
		if k.Name == "k" {
			assert.Equal(t, 20, k.Blobs)
			assert.Zero(t, k.StaleWraps)
		}
	}
}

// frameSpan is where one frame's stored bytes are in a blob file.
type frameSpan struct{ off, len int64 }

// frameSpans reads a blob file's frame table (docs/format.md).
func frameSpans(t testing.TB, b []byte) []frameSpan {
	n := int64(binary.BigEndian.Uint32(b[40:44]))
	tableOff := int64(binary.BigEndian.Uint64(b[112:120]))
	require.Equal(t, int64(len(b)), tableOff+8*n)
	var out []frameSpan
	off := int64(160)
	for i := int64(0); i < n; i++ {
		l := int64(binary.BigEndian.Uint32(b[tableOff+8*i:]))
		out = append(out, frameSpan{off: off, len: 8 + l})
		off += 8 + l
	}
	return out
}

// TestTamperedBlobsTable: each way a sealed blob or its wrap can be wrong
// gives a typed error, never wrong bytes.
func TestTamperedBlobsTable(t *testing.T) {
	requireLocalBlobs(t, "it tampers with blob files in place")
	ctx := context.Background()
	const frame = 4 << 10
	content := rnd(3*frame + 1000) // four frames, incompressible: full frames have one size
	d := digest.FromBytes(content)

	type fixture struct {
		e    *Engine
		path string
		file []byte
	}
	editFile := func(f func(b []byte) []byte) func(t *testing.T, fx *fixture) {
		return func(t *testing.T, fx *fixture) {
			require.NoError(t, os.WriteFile(fx.path, f(append([]byte(nil), fx.file...)), 0o600))
		}
	}
	editWrap := func(f func(t *testing.T, fx *fixture, w *index.KeyWrap)) func(t *testing.T, fx *fixture) {
		return func(t *testing.T, fx *fixture) {
			rec, err := fx.e.db.Blob(d)
			require.NoError(t, err)
			f(t, fx, &rec.Wraps[0])
			b := fx.e.db.NewBatch()
			require.NoError(t, b.PutBlob(rec))
			require.NoError(t, b.Commit(true))
		}
	}
	flipInFrame := func(i int, at func(s frameSpan) int64) func(t *testing.T, fx *fixture) {
		return func(t *testing.T, fx *fixture) {
			s := frameSpans(t, fx.file)[i]
			editFile(func(b []byte) []byte { b[at(s)] ^= 0x01; return b })(t, fx)
		}
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, fx *fixture)
		want   error
	}{
		{"untouched", func(*testing.T, *fixture) {}, nil},
		{"wrong key: a wrap made by another key", editWrap(func(t *testing.T, fx *fixture, w *index.KeyWrap) {
			dk, err := crypt.NewDataKey()
			require.NoError(t, err)
			other, err := fx.e.keys.Wrap(ctx, "other", dk, blobWrapAD(d))
			require.NoError(t, err)
			w.Wrapped = other.Ciphertext
		}), ErrCorrupt},
		{"wrong key: another data key, rightly wrapped", editWrap(func(t *testing.T, fx *fixture, w *index.KeyWrap) {
			dk, err := crypt.NewDataKey()
			require.NoError(t, err)
			nw, err := fx.e.keys.Wrap(ctx, "k", dk, blobWrapAD(d))
			require.NoError(t, err)
			*w = toIndexWrap(nw)
		}), ErrCorrupt},
		{"wrap of another blob", editWrap(func(t *testing.T, fx *fixture, w *index.KeyWrap) {
			dk, err := crypt.NewDataKey()
			require.NoError(t, err)
			nw, err := fx.e.keys.Wrap(ctx, "k", dk, blobWrapAD(digest.FromString("x")))
			require.NoError(t, err)
			*w = toIndexWrap(nw)
		}), ErrCorrupt},
		{"corrupted wrap", editWrap(func(t *testing.T, fx *fixture, w *index.KeyWrap) { w.Wrapped[len(w.Wrapped)/2] ^= 0x80 }), ErrCorrupt},
		{"truncated wrap", editWrap(func(t *testing.T, fx *fixture, w *index.KeyWrap) { w.Wrapped = w.Wrapped[:10] }), ErrCorrupt},
		{"disabled key", func(t *testing.T, fx *fixture) { require.NoError(t, fx.e.DisableKey(ctx, "k")) }, ErrKeyUnavailable},
		{"destroyed key, blob also wrapped by another key", func(t *testing.T, fx *fixture) {
			kmsRepo(t, fx.e, "o", "other")
			_, err := fx.e.MountBlob(ctx, "o", "r", d)
			require.NoError(t, err)
			require.NoError(t, fx.e.DestroyKey(ctx, "k"))
		}, ErrKeyDestroyed},
		{"destroyed key, blob shredded and removed", func(t *testing.T, fx *fixture) { require.NoError(t, fx.e.DestroyKey(ctx, "k")) }, ErrBlobUnknown},
		{"flip in header", editFile(func(b []byte) []byte { b[33] ^= 0x01; return b }), ErrCorrupt},
		{"flip in frame table", editFile(func(b []byte) []byte { b[len(b)-7] ^= 0x01; return b }), ErrCorrupt},
		{"swapped frames 0 and 1", func(t *testing.T, fx *fixture) {
			sp := frameSpans(t, fx.file)
			require.Equal(t, sp[0].len, sp[1].len)
			editFile(func(b []byte) []byte {
				f0 := append([]byte(nil), b[sp[0].off:sp[0].off+sp[0].len]...)
				copy(b[sp[0].off:], b[sp[1].off:sp[1].off+sp[1].len])
				copy(b[sp[1].off:], f0)
				return b
			})(t, fx)
		}, ErrCorrupt},
		{"truncated by one byte", editFile(func(b []byte) []byte { return b[:len(b)-1] }), ErrCorrupt},
		{"truncated to its first frames", func(t *testing.T, fx *fixture) {
			sp := frameSpans(t, fx.file)
			editFile(func(b []byte) []byte { return b[:sp[2].off] })(t, fx)
		}, ErrCorrupt},
		{"last frame dropped, table rewritten", func(t *testing.T, fx *fixture) {
			sp := frameSpans(t, fx.file)
			editFile(func(b []byte) []byte {
				n := len(sp)
				tableOff := sp[n-1].off + sp[n-1].len
				table := b[tableOff : tableOff+8*int64(n-1)]
				out := append(b[:sp[n-1].off:sp[n-1].off], table...)
				binary.BigEndian.PutUint32(out[40:], uint32(n-1))
				binary.BigEndian.PutUint64(out[112:], uint64(sp[n-1].off))
				return out
			})(t, fx)
		}, ErrCorrupt},
	}
	for i := 0; i < 4; i++ {
		for _, where := range []struct {
			name string
			at   func(s frameSpan) int64
		}{
			{"head", func(s frameSpan) int64 { return s.off + 1 }},
			{"nonce", func(s frameSpan) int64 { return s.off + 8 + 3 }},
			{"ciphertext", func(s frameSpan) int64 { return s.off + s.len/2 }},
			{"tag", func(s frameSpan) int64 { return s.off + s.len - 1 }},
		} {
			cases = append(cases, struct {
				name   string
				tamper func(t *testing.T, fx *fixture)
				want   error
			}{fmt.Sprintf("flip in frame %d %s", i, where.name), flipInFrame(i, where.at), ErrCorrupt})
		}
	}
	newFixture := func(t *testing.T) *fixture {
		e := openTestEngine(t, &Options{FrameSize: frame, DisableCompression: true})
		_, err := e.CreateKey(ctx, "k")
		require.NoError(t, err)
		_, err = e.CreateKey(ctx, "other")
		require.NoError(t, err)
		kmsRepo(t, e, "r", "k")
		_, err = e.PutBlob(ctx, "r", bytes.NewReader(content), d)
		require.NoError(t, err)
		p, err := e.blobs.Path(d)
		require.NoError(t, err)
		file, err := os.ReadFile(p)
		require.NoError(t, err)
		require.Len(t, frameSpans(t, file), 4)
		return &fixture{e: e, path: p, file: file}
	}
	// Cases that change only the file or the record share one store,
	// restored after each; those that change a key's state get their own.
	shared := newFixture(t)
	rec0, err := shared.e.db.Blob(d)
	require.NoError(t, err)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fx := shared
			if strings.Contains(tc.name, "key,") || strings.HasPrefix(tc.name, "disabled") {
				fx = newFixture(t)
			} else {
				defer func() {
					require.NoError(t, os.WriteFile(fx.path, fx.file, 0o600))
					b := fx.e.db.NewBatch()
					require.NoError(t, b.PutBlob(rec0))
					require.NoError(t, b.Commit(true))
				}()
			}
			e := fx.e
			tc.tamper(t, fx)
			e.dropDataKeys("k")

			got, err := readRepoBlob(e, "r", d)
			if tc.want == nil {
				require.NoError(t, err)
				assert.Equal(t, content, got)
				return
			}
			require.ErrorIs(t, err, tc.want)
			assert.True(t, bytes.HasPrefix(content, got), "bytes returned before the error must be the blob's own")
			// Random access gives the same verdict on any frame.
			r, err := e.OpenBlob(ctx, "r", d)
			if err != nil {
				require.ErrorIs(t, err, tc.want)
				return
			}
			defer r.Close()
			var failed bool
			for off := int64(0); off < int64(len(content)); off += frame {
				buf := make([]byte, frame)
				n, err := r.ReadAt(buf, off)
				if err != nil && !errors.Is(err, io.EOF) {
					require.ErrorIs(t, err, tc.want)
					failed = true
				}
				assert.Equal(t, content[off:off+int64(n)], buf[:n], "ReadAt returned wrong bytes at %d", off)
			}
			assert.True(t, failed, "some frame must fail")
		})
	}
}

// TestGCRemovesShreddedBlobs destroys a key behind the engine's back (as a
// crash in DestroyKey after the key went, before its sweep, would leave
// it): the next collection lists, then removes, the blobs only it wrapped.
func TestGCRemovesShreddedBlobs(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, &Options{FrameSize: 4 << 10})
	_, err := e.CreateKey(ctx, "k")
	require.NoError(t, err)
	kmsRepo(t, e, "k/app", "k")
	only := rnd(9 << 10)
	pushImage(t, e, "k/app", "v1", only)
	km, err := e.keyManager()
	require.NoError(t, err)
	require.NoError(t, km.SetKeyState(ctx, "k", crypt.KeyDestroyed))

	r, err := e.CollectGarbage(ctx, GCOptions{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, 2, r.ShreddedBlobs) // the layer and the config
	_, err = e.db.Blob(digest.FromBytes(only))
	require.NoError(t, err, "a dry run removes nothing")

	r, err = e.CollectGarbage(ctx, GCOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, r.ShreddedBlobs)
	_, err = e.db.Blob(digest.FromBytes(only))
	require.ErrorIs(t, err, index.ErrNotFound)
}
