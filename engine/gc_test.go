package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/manifest"
	"github.com/berthstore/berth/gc"
	"github.com/berthstore/berth/index"
)

// noGrace collects every unreferenced blob at once.
var noGrace = GCOptions{Grace: -1}

func quietOptions() *Options {
	return &Options{CreateOnPush: true, FrameSize: 64 << 10, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// pushIndex pushes an OCI image index over children (manifest digests and
// payload sizes), tagged tag ("" for untagged, by digest).
func pushIndex(t testing.TB, e *Engine, repo, tag string, children map[digest.Digest]int) digest.Digest {
	t.Helper()
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	archs := []string{"amd64", "arm64", "s390x", "ppc64le", "riscv64"}
	ds := make([]digest.Digest, 0, len(children))
	for d := range children {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	for i, d := range ds {
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(children[d]),
			Platform: &ocispec.Platform{OS: "linux", Architecture: archs[i%len(archs)]}})
	}
	payload, err := json.Marshal(idx)
	require.NoError(t, err)
	ref := tag
	if ref == "" {
		ref = string(digest.FromBytes(payload))
	}
	res, err := e.PutManifest(context.Background(), repo, ref, ocispec.MediaTypeImageIndex, payload)
	require.NoError(t, err)
	return res.Digest
}

// pushReferrer pushes an artifact manifest whose subject is subject.
func pushReferrer(t testing.TB, e *Engine, repo string, subject digest.Digest, subjectSize int, note string) digest.Digest {
	t.Helper()
	ctx := context.Background()
	empty := []byte("{}")
	_, err := e.PutBlob(ctx, repo, bytes.NewReader(empty), digest.FromBytes(empty))
	require.NoError(t, err)
	body := []byte("signature " + note)
	ld, err := e.PutBlob(ctx, repo, bytes.NewReader(body), "")
	require.NoError(t, err)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/vnd.test.sig",
		Config:  ocispec.DescriptorEmptyJSON,
		Layers:  []ocispec.Descriptor{{MediaType: "application/octet-stream", Digest: ld.Digest, Size: ld.Size}},
		Subject: &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject, Size: int64(subjectSize)}}
	m.SchemaVersion = 2
	payload, err := json.Marshal(m)
	require.NoError(t, err)
	res, err := e.PutManifest(ctx, repo, string(digest.FromBytes(payload)), ocispec.MediaTypeImageManifest, payload)
	require.NoError(t, err)
	return res.Digest
}

// pullAll reads reference and every blob and child below it, verifying
// digests; it returns the first failure.
func pullAll(ctx context.Context, e *Engine, repo, reference string) error {
	m, err := e.GetManifest(ctx, repo, reference)
	if err != nil {
		return err
	}
	pm, err := manifest.Parse(m.MediaType, m.Payload, 0)
	if err != nil {
		return err
	}
	for _, c := range pm.Children {
		if err := pullAll(ctx, e, repo, string(c.Digest)); err != nil {
			return fmt.Errorf("child %s: %w", c.Digest, err)
		}
	}
	for _, b := range pm.Blobs {
		r, err := e.OpenBlob(ctx, repo, b.Digest)
		if err != nil {
			return fmt.Errorf("blob %s: %w", b.Digest, err)
		}
		v := b.Digest.Verifier()
		_, err = io.Copy(v, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("blob %s: %w", b.Digest, err)
		}
		if !v.Verified() {
			return fmt.Errorf("blob %s: digest mismatch", b.Digest)
		}
	}
	return nil
}

// unreferencedBlobs lists blob records no manifest references.
func unreferencedBlobs(t testing.TB, e *Engine) []digest.Digest {
	t.Helper()
	marked := map[digest.Digest]bool{}
	require.NoError(t, e.db.WalkManifests(func(m *index.Manifest) error {
		for _, d := range m.Blobs {
			marked[d] = true
		}
		return nil
	}))
	var out []digest.Digest
	require.NoError(t, e.db.WalkBlobs(func(b *index.Blob) error {
		if !marked[b.Digest] {
			out = append(out, b.Digest)
		}
		return nil
	}))
	return out
}

func requireFsckClean(t testing.TB, e *Engine, orphansOK bool) *FsckReport {
	t.Helper()
	r, err := e.Fsck(context.Background(), FsckOptions{Verify: true})
	require.NoError(t, err)
	require.Empty(t, r.Corrupt, "fsck found corruption")
	if !orphansOK {
		require.Empty(t, r.Orphans, "fsck found orphans")
	}
	return r
}

func TestCollectGarbage(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	shared := rnd(5000)
	keep, _ := pushImage(t, e, "app/a", "a1", shared, rnd(3000))
	drop, _ := pushImage(t, e, "app/b", "b1", shared, rnd(4000))
	stray, err := e.PutBlob(ctx, "app/b", bytes.NewReader(rnd(2000)), "")
	require.NoError(t, err)
	require.NoError(t, e.DeleteManifest(ctx, "app/b", drop))
	garbage := unreferencedBlobs(t, e)
	require.Len(t, garbage, 3, "app/b's config, its unique layer and the stray blob")
	require.Contains(t, garbage, stray.Digest)

	tests := []struct {
		name      string
		opts      GCOptions
		wantSwept int
	}{
		{"grace spares young blobs", GCOptions{Grace: time.Hour}, 0},
		{"dry run changes nothing", GCOptions{Grace: -1, DryRun: true}, 0},
		{"sweep", noGrace, 3},
		{"idempotent", noGrace, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.CollectGarbage(ctx, tc.opts)
			require.NoError(t, err)
			assert.Equal(t, tc.wantSwept, r.BlobsSwept)
			if tc.opts.DryRun {
				assert.ElementsMatch(t, garbage, r.Plan.SortedDigests())
				assert.Positive(t, r.Plan.Bytes())
				var b bytes.Buffer
				require.NoError(t, r.Plan.WriteText(&b))
				assert.Contains(t, b.String(), string(stray.Digest))
			}
		})
	}
	require.Empty(t, unreferencedBlobs(t, e))
	st := e.GCStats()
	assert.Equal(t, int64(3), st.Collections, "dry runs are not counted")
	assert.Equal(t, int64(3), st.BlobsSwept)
	assert.Positive(t, st.BytesFreed)
	require.NotNil(t, st.Last)
	require.NoError(t, pullAll(ctx, e, "app/a", "a1"))
	_, err = e.StatBlob(ctx, "app/b", stray.Digest)
	require.ErrorIs(t, err, ErrBlobUnknown)
	m, err := e.db.ManifestMeta("app/a", keep)
	require.NoError(t, err)
	_, err = e.StatBlob(ctx, "app/b", m.Blobs[1])
	require.NoError(t, err, "the shared layer lives, and so does its link to app/b")
	requireFsckClean(t, e, false)
}

func TestCollectGarbageOrphansAndUploads(t *testing.T) {
	requireLocalBlobs(t, "it makes orphan blob and upload files in the store's directories")
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	pushImage(t, e, "o/a", "v1", rnd(100))
	// An orphan blob file (a crash after rename, before the record).
	bd, err := e.PutBlob(ctx, "o/a", bytes.NewReader(rnd(3000)), "")
	require.NoError(t, err)
	p, err := e.blobs.Path(bd.Digest)
	require.NoError(t, err)
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	_, err = e.CollectGarbage(ctx, noGrace)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, data, 0o600))
	// A stale session and an orphan upload file.
	stale := idleUploadSession(t, e, "o/a")
	require.NoError(t, os.WriteFile(e.blobs.Dir()+"/uploads/orphan.part", []byte("x"), 0o600))

	fr := requireFsckClean(t, e, true)
	require.Len(t, fr.Orphans, 2)
	r, err := e.CollectGarbage(ctx, GCOptions{Grace: -1, UploadTTL: -1})
	require.NoError(t, err)
	assert.Equal(t, 1, r.OrphanFilesRemoved)
	assert.Equal(t, 1, r.OrphanUploadsRemoved)
	assert.Equal(t, 0, r.UploadsExpired, "TTL disabled")
	r, err = e.CollectGarbage(ctx, GCOptions{Grace: -1, UploadTTL: time.Nanosecond})
	require.NoError(t, err)
	assert.Equal(t, 1, r.UploadsExpired)
	_, err = e.ResumeUpload(ctx, "o/a", stale)
	require.ErrorIs(t, err, ErrBlobUploadUnknown)
	requireFsckClean(t, e, false)
}

func TestCollectGarbageOneAtATime(t *testing.T) {
	e := openTestEngine(t, quietOptions())
	require.True(t, e.gcs.runMu.TryLock())
	_, err := e.CollectGarbage(context.Background(), noGrace)
	e.gcs.runMu.Unlock()
	require.ErrorIs(t, err, ErrGCRunning)
}

// TestScheduledGCAndLifecycle: with intervals set, lifecycle policies are
// applied and collections run on the engine's clock, with nobody asking.
func TestScheduledGCAndLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	o := quietOptions()
	o.Clock = clk
	o.GCInterval, o.GCGrace, o.LifecycleInterval = time.Hour, 10*time.Minute, 30*time.Minute
	e := openTestEngine(t, o)
	pushImage(t, e, "s/a", "v1", rnd(100))
	pushImage(t, e, "s/a", "v1", rnd(100)) // the first is now untagged
	require.NoError(t, e.PutLifecyclePolicy(ctx, "s/a", `{"rules":[{"rulePriority":1,"description":"keep the newest image only","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`))
	clk.Advance(29 * time.Minute)
	require.Len(t, manifestSet(t, e, "s/a"), 2, "nothing runs before its time")

	clk.Advance(time.Minute) // the lifecycle run
	require.Eventually(t, func() bool { return len(manifestSet(t, e, "s/a")) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Len(t, unreferencedBlobs(t, e), 1, "the expired image's layer waits for a collection (its config is the newer image's too)")
	require.Zero(t, e.GCStats().Collections)

	clk.Advance(30 * time.Minute) // the collection: the layer is an hour old, past the grace
	require.Eventually(t, func() bool { return e.GCStats().Collections == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Empty(t, unreferencedBlobs(t, e))
	assert.Equal(t, int64(1), e.GCStats().BlobsSwept)
}

// gcStressDuration is how long TestGCStress runs: BERTH_GC_STRESS (a Go
// duration), else 10 s with -short and 60 s without.
func gcStressDuration(t *testing.T) time.Duration {
	if s := os.Getenv("BERTH_GC_STRESS"); s != "" {
		d, err := time.ParseDuration(s)
		require.NoError(t, err)
		return d
	}
	if testing.Short() {
		return 10 * time.Second
	}
	return 60 * time.Second
}

// TestGCStress shows online collection safe under load: 8 pushers (shared and unique layers, tag
// overwrites, manifest and tag deletes, stray uploads, mounts) and 2
// pullers run while gc runs in a loop. No pull of a manifest that still
// exists may fail; afterwards every tag pulls completely with verified
// digests, fsck finds no corruption, and once no push is in flight a
// collection leaves no unreferenced blob.
func TestGCStress(t *testing.T) {
	dur := gcStressDuration(t)
	const grace = time.Second
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	repos := []string{"stress/a", "stress/b", "stress/c"}
	sharedLayers := make([][]byte, 8)
	for i := range sharedLayers {
		sharedLayers[i] = rnd(1000 + 700*i)
	}
	// Revivable layers are uploaded as strays now and then, and put in a
	// manifest now and then: old unreferenced blobs that pushes bring
	// back while a collection plans or sweeps them (the write barrier's
	// case).
	revivable := make([][]byte, 200)
	for i := range revivable {
		revivable[i] = rnd(300 + i)
	}
	var (
		stop                         atomic.Bool
		pushes, pulls, gcs, retries  atomic.Int64
		swept, spared, deletes, mnts atomic.Int64
		failMu                       sync.Mutex
		failures                     []string
	)
	fail := func(format string, args ...any) {
		failMu.Lock()
		defer failMu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(p), 7))
			var mine []digest.Digest
			for i := 0; !stop.Load(); i++ {
				repo := repos[r.IntN(len(repos))]
				layers := [][]byte{rnd(200 + r.IntN(3000))} // unique
				for range r.IntN(3) {
					layers = append(layers, sharedLayers[r.IntN(len(sharedLayers))])
				}
				if r.IntN(4) == 0 {
					layers = append(layers, revivable[r.IntN(len(revivable))])
				}
				tag := fmt.Sprintf("p%d-t%d", p, r.IntN(4)) // overwrites
				d, err := tryPushImage(ctx, e, repo, tag, layers...)
				for attempt := 0; errors.Is(err, ErrManifestBlobUnknown) && attempt < 5; attempt++ {
					// A blob uploaded longer than the grace ago was
					// collected before the manifest came: push again,
					// as a client does on MANIFEST_BLOB_UNKNOWN.
					retries.Add(1)
					d, err = tryPushImage(ctx, e, repo, tag, layers...)
				}
				if err != nil {
					fail("push %s:%s: %v", repo, tag, err)
					continue
				}
				pushes.Add(1)
				mine = append(mine, d)
				switch k := r.IntN(10); {
				case k == 0 && len(mine) > 2: // delete an older manifest
					j := r.IntN(len(mine) - 1)
					for _, rp := range repos {
						if e.DeleteManifest(ctx, rp, mine[j]) == nil {
							deletes.Add(1)
						}
					}
					mine = append(mine[:j], mine[j+1:]...)
				case k == 1:
					_ = e.DeleteTag(ctx, repo, tag)
				case k == 2: // a stray upload nobody references
					_, _ = e.PutBlob(ctx, repo, bytes.NewReader(rnd(500)), "")
				case k == 4 || k == 5: // a revivable one
					_, _ = e.PutBlob(ctx, repo, bytes.NewReader(revivable[r.IntN(len(revivable))]), "")
				case k == 3: // mount a shared layer from this repository elsewhere
					l := sharedLayers[r.IntN(len(sharedLayers))]
					if _, err := e.MountBlob(ctx, repos[r.IntN(len(repos))], repo, digest.FromBytes(l)); err == nil {
						mnts.Add(1)
					}
				}
			}
		}()
	}
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(p), 99))
			for !stop.Load() {
				repo := repos[r.IntN(len(repos))]
				tags, err := e.ListTags(ctx, repo, "", 0)
				if err != nil || len(tags) == 0 {
					// Pacing while the pushers start (no time passes
					// that a clock could stand for).
					time.Sleep(time.Millisecond)
					continue
				}
				tag := tags[r.IntN(len(tags))]
				m, err := e.GetManifest(ctx, repo, tag)
				if err != nil {
					continue // moved or deleted meanwhile
				}
				time.Sleep(time.Millisecond) // pacing: leave the pushers some CPU (no clock can serve)
				if err := pullAll(ctx, e, repo, string(m.Digest)); err != nil {
					// Fine only if the manifest is gone by now.
					if ok, _ := e.db.HasManifest(repo, m.Digest); ok {
						fail("pull %s@%s (%s) while it exists: %v", repo, m.Digest, tag, err)
					}
					continue
				}
				pulls.Add(1)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			r, err := e.CollectGarbage(ctx, GCOptions{Grace: grace})
			if err != nil {
				fail("gc: %v", err)
				return
			}
			gcs.Add(1)
			swept.Add(int64(r.BlobsSwept))
			spared.Add(int64(r.BlobsSpared))
			time.Sleep(5 * time.Millisecond) // pacing between collections (no clock can serve)
		}
	}()
	// The stress runs for a span of real, concurrent work: a clock cannot
	// stand for it. The engine runs on the system's clock here, so that
	// its grace period covers pushes really in flight.
	time.Sleep(dur)
	stop.Store(true)
	wg.Wait()
	t.Logf("%v: %d pushes, %d verified pulls, %d manifest deletes, %d mounts, %d gc runs, %d blobs swept, %d spared by the barrier or a re-check, %d pushes retried",
		dur, pushes.Load(), pulls.Load(), deletes.Load(), mnts.Load(), gcs.Load(), swept.Load(), spared.Load(), retries.Load())
	require.Empty(t, failures)
	require.Positive(t, gcs.Load())
	require.Positive(t, swept.Load())

	// Every tag pulls completely.
	ntags := 0
	for _, repo := range repos {
		tags, err := e.ListTags(ctx, repo, "", 0)
		require.NoError(t, err)
		for _, tag := range tags {
			require.NoError(t, pullAll(ctx, e, repo, tag), "%s:%s", repo, tag)
			ntags++
		}
	}
	require.Positive(t, ntags)
	requireFsckClean(t, e, true)
	// With no push in flight any more, a collection without grace leaves
	// nothing unreferenced and no orphan.
	_, err := e.CollectGarbage(ctx, noGrace)
	require.NoError(t, err)
	require.Empty(t, unreferencedBlobs(t, e))
	requireFsckClean(t, e, false)
}

// tryPushImage is pushImage returning errors instead of failing.
func tryPushImage(ctx context.Context, e *Engine, repo, tag string, layers ...[]byte) (digest.Digest, error) {
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":%q,"n":%d}`, tag, rand.Int64()))
	cd, err := e.PutBlob(ctx, repo, bytes.NewReader(cfg), digest.FromBytes(cfg))
	if err != nil {
		return "", err
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd.Digest, Size: cd.Size}}
	m.SchemaVersion = 2
	for _, l := range layers {
		ld, err := e.PutBlob(ctx, repo, bytes.NewReader(l), "")
		if err != nil {
			return "", err
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: ld.Digest, Size: ld.Size})
	}
	payload, _ := json.Marshal(m)
	res, err := e.PutManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, payload)
	return res.Digest, err
}

// TestExpiryKeepsUploadResumedAfterPlan: a collection plans a session as
// stale, then the session is resumed (and written, or kept open) before
// the sweep; the sweep must keep it.
func TestExpiryKeepsUploadResumedAfterPlan(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	o := quietOptions()
	o.Clock = clk
	e := openTestEngine(t, o)
	idleSession := func() string { return idleUploadSession(t, e, "o/a") }
	written, open, untouched := idleSession(), idleSession(), idleSession()
	clk.Advance(2 * time.Hour)

	c := gc.NewCollector(e.collectorConfig(), gc.Options{Grace: -1, UploadTTL: time.Hour})
	p, err := c.Plan(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{written, open, untouched}, p.StaleUploads)

	// After the plan: one session is resumed, written and closed; one is
	// resumed and still held.
	u, err := e.ResumeUpload(ctx, "o/a", written)
	require.NoError(t, err)
	_, err = u.Write(rnd(50))
	require.NoError(t, err)
	require.NoError(t, u.Checkpoint(ctx))
	require.NoError(t, u.Close())
	e.upMu.Lock()
	delete(e.uploads, written) // parked, as the idle reaper does
	e.upMu.Unlock()
	held, err := e.ResumeUpload(ctx, "o/a", open)
	require.NoError(t, err)

	r, err := c.Execute(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, 1, r.UploadsExpired, "only the untouched session expires")
	assert.Zero(t, r.Errors)

	_, err = e.ResumeUpload(ctx, "o/a", untouched)
	require.ErrorIs(t, err, ErrBlobUploadUnknown)
	_, err = held.Write(rnd(10))
	require.NoError(t, err, "the held session still works")
	require.NoError(t, held.Checkpoint(ctx))
	require.NoError(t, held.Close())
	u, err = e.ResumeUpload(ctx, "o/a", written)
	require.NoError(t, err, "the written session resumes")
	assert.EqualValues(t, 150, u.Size())
	require.NoError(t, u.Close())
}

// TestIndexCacheSize: the one-shot gc and fsck commands open the store
// with a small index cache (Options.IndexCacheSize); collections and
// checks work the same with it, and a negative size is refused.
func TestIndexCacheSize(t *testing.T) {
	tests := []struct {
		name    string
		size    int64
		wantErr bool
	}{
		{"default", 0, false},
		{"one MiB", 1 << 20, false},
		{"negative", -1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			o := quietOptions()
			o.IndexCacheSize = tc.size
			if tc.wantErr {
				_, err := Open(t.TempDir(), o)
				require.ErrorIs(t, err, ErrInvalidArgument)
				return
			}
			e := openTestEngine(t, o)
			shared := rnd(3000)
			pushImage(t, e, "app/a", "a1", shared, rnd(2000))
			drop, _ := pushImage(t, e, "app/b", "b1", shared, rnd(1000))
			require.NoError(t, e.DeleteManifest(ctx, "app/b", drop))
			r, err := e.CollectGarbage(ctx, noGrace)
			require.NoError(t, err)
			assert.Equal(t, 2, r.BlobsSwept, "app/b's config and unique layer")
			require.NoError(t, pullAll(ctx, e, "app/a", "a1"))
			requireFsckClean(t, e, false)
		})
	}
}

// idleUploadSession starts an upload in repo, writes 100 bytes,
// checkpoints and closes it, and drops its live handle, as after a
// restart; it returns the session's id.
func idleUploadSession(t *testing.T, e *Engine, repo string) string {
	t.Helper()
	ctx := context.Background()
	u, err := e.BeginUpload(ctx, repo)
	require.NoError(t, err)
	_, err = u.Write(rnd(100))
	require.NoError(t, err)
	require.NoError(t, u.Checkpoint(ctx))
	require.NoError(t, u.Close())
	e.upMu.Lock()
	delete(e.uploads, u.ID())
	e.upMu.Unlock()
	return u.ID()
}
