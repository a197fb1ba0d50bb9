package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/clock"
	"github.com/berthstore/berth/index"
)

// openTestEngine opens an engine with o (nil: CreateOnPush) on a new
// store, on the backend of this run (BERTH_ENGINE_BACKEND), closed when
// the test ends.
func openTestEngine(t testing.TB, o *Options) *Engine {
	t.Helper()
	if o == nil {
		o = &Options{CreateOnPush: true}
	}
	e, err := Open(t.TempDir(), onTestBackend(t, o))
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

// manualClock returns a clock that stands still until the test advances
// it, reading the system's time (so that files the store writes now are
// as old as the clock says once it moves: the collector reads mtimes).
func manualClock() *clock.Manual { return clock.NewManual(time.Now().Round(0)) }

func rnd(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// pushImage pushes a config and layers and an image manifest tagged tag.
func pushImage(t testing.TB, e *Engine, repo, tag string, layers ...[]byte) (digest.Digest, []byte) {
	t.Helper()
	ctx := context.Background()
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":%q}`, tag))
	cd, err := e.PutBlob(ctx, repo, bytes.NewReader(cfg), digest.FromBytes(cfg))
	require.NoError(t, err)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd.Digest, Size: cd.Size}}
	m.SchemaVersion = 2
	for _, l := range layers {
		ld, err := e.PutBlob(ctx, repo, bytes.NewReader(l), "")
		require.NoError(t, err)
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: ld.Digest, Size: ld.Size})
	}
	payload, _ := json.Marshal(m)
	res, err := e.PutManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, payload)
	require.NoError(t, err)
	return res.Digest, payload
}

func TestPushPull(t *testing.T) {
	ctx := context.Background()
	for _, enc := range []bool{true, false} {
		t.Run(fmt.Sprint("encrypted=", enc), func(t *testing.T) {
			e := openTestEngine(t, &Options{CreateOnPush: true, DisableEncryption: !enc, FrameSize: 64 << 10})
			layer := rnd(300 << 10)
			d, payload := pushImage(t, e, "team/app", "v1", layer)
			m, err := e.GetManifest(ctx, "team/app", "v1")
			require.NoError(t, err)
			assert.Equal(t, d, m.Digest)
			assert.Equal(t, payload, m.Payload)
			m2, err := e.GetManifest(ctx, "team/app", string(d))
			require.NoError(t, err)
			assert.Equal(t, payload, m2.Payload)

			r, err := e.OpenBlob(ctx, "team/app", digest.FromBytes(layer))
			require.NoError(t, err)
			got, err := io.ReadAll(r)
			require.NoError(t, err)
			r.Close()
			assert.Equal(t, layer, got)

			_, err = e.OpenBlob(ctx, "other", digest.FromBytes(layer))
			assert.ErrorIs(t, err, ErrNameUnknown)
			_, err = e.CreateRepository(ctx, "other", RepositorySettings{})
			require.NoError(t, err)
			_, err = e.OpenBlob(ctx, "other", digest.FromBytes(layer))
			assert.ErrorIs(t, err, ErrBlobUnknown)

			tags, err := e.ListTags(ctx, "team/app", "", 0)
			require.NoError(t, err)
			assert.Equal(t, []string{"v1"}, tags)
			require.NoError(t, e.DeleteManifest(ctx, "team/app", d))
			_, err = e.GetManifest(ctx, "team/app", "v1")
			assert.ErrorIs(t, err, ErrManifestUnknown)
		})
	}
}

func TestManifestNeedsBlobs(t *testing.T) {
	e := openTestEngine(t, nil)
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":2},"layers":[]}`,
		ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, digest.FromBytes([]byte("{}")))
	_, err := e.PutManifest(context.Background(), "a", "x", ocispec.MediaTypeImageManifest, []byte(m))
	require.ErrorIs(t, err, ErrManifestBlobUnknown)
	require.NotErrorIs(t, err, ErrManifestChildUnknown, "a blob is no child manifest")
	var ue *UnknownReferenceError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, digest.FromBytes([]byte("{}")), ue.Digest)

	// An index whose child is missing: both errors, and the child named.
	child := digest.FromBytes([]byte("no such manifest"))
	idx := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":16}]}`,
		ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest, child)
	_, err = e.PutManifest(context.Background(), "a", "i", ocispec.MediaTypeImageIndex, []byte(idx))
	require.ErrorIs(t, err, ErrManifestBlobUnknown)
	require.ErrorIs(t, err, ErrManifestChildUnknown)
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, child, ue.Digest)
	assert.True(t, ue.Child)
}

func TestDedupeAcrossRepositories(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, &Options{CreateOnPush: true, DisableCompression: true})
	layer := rnd(4 << 20)
	d := digest.FromBytes(layer)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.PutBlob(ctx, fmt.Sprintf("r%02d", i), bytes.NewReader(layer), d)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var files int
	var stored int64
	require.NoError(t, e.hot.Walk(ctx, func(_ digest.Digest, n int64) error { files++; stored += n; return nil }))
	assert.Equal(t, 1, files)
	assert.InDelta(t, len(layer), stored, float64(len(layer))/50, "bytes on disk about one copy")
	for i := range 50 {
		r, err := e.OpenBlob(ctx, fmt.Sprintf("r%02d", i), d)
		require.NoError(t, err)
		got, err := io.ReadAll(r)
		r.Close()
		require.NoError(t, err)
		require.True(t, bytes.Equal(layer, got))
	}
	_, err := e.CreateRepository(ctx, "outsider", RepositorySettings{})
	require.NoError(t, err)
	_, err = e.OpenBlob(ctx, "outsider", d)
	require.ErrorIs(t, err, ErrBlobUnknown)
	uploads, err := e.blobs.Uploads(ctx)
	require.NoError(t, err)
	assert.Empty(t, uploads)
}

func TestUploadSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(dir, &Options{CreateOnPush: true, FrameSize: 64 << 10})
	require.NoError(t, err)
	data := rnd(1<<20 + 12345)
	u, err := e.BeginUpload(ctx, "r")
	require.NoError(t, err)
	_, err = u.Write(data[:600<<10])
	require.NoError(t, err)
	require.NoError(t, u.Checkpoint(ctx))
	id := u.ID()
	require.NoError(t, u.Close())
	require.NoError(t, e.Close())

	e, err = Open(dir, &Options{CreateOnPush: true, FrameSize: 64 << 10})
	require.NoError(t, err)
	defer e.Close()
	u, err = e.ResumeUpload(ctx, "r", id)
	require.NoError(t, err)
	require.Equal(t, int64(600<<10), u.Size())
	_, err = u.Write(data[600<<10:])
	require.NoError(t, err)
	desc, err := u.Commit(ctx, digest.FromBytes(data), int64(len(data)))
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), desc.Size)
	r, err := e.OpenBlob(ctx, "r", desc.Digest)
	require.NoError(t, err)
	got, _ := io.ReadAll(r)
	r.Close()
	require.Equal(t, data, got)
	_, err = e.ResumeUpload(ctx, "r", id)
	require.ErrorIs(t, err, ErrBlobUploadUnknown)
}

func TestCommitRefusalsLeaveNothing(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, &Options{CreateOnPush: true, MaxBlobSize: 1 << 20})
	data := rnd(100 << 10)
	_, err := e.PutBlob(ctx, "r", bytes.NewReader(data), digest.FromBytes([]byte("not it")))
	require.ErrorIs(t, err, ErrDigestInvalid)
	u, err := e.BeginUpload(ctx, "r")
	require.NoError(t, err)
	u.Write(data)
	_, err = u.Commit(ctx, digest.FromBytes(data[:10]), 10)
	require.ErrorIs(t, err, ErrSizeInvalid)
	_, err = e.PutBlob(ctx, "r", bytes.NewReader(rnd(2<<20)), "")
	require.ErrorIs(t, err, ErrTooLarge)

	var files int
	require.NoError(t, e.blobs.Walk(ctx, func(digest.Digest, int64) error { files++; return nil }))
	assert.Zero(t, files)
	ups, _ := e.blobs.Uploads(ctx)
	assert.Empty(t, ups)
	n := 0
	require.NoError(t, e.db.ListUploads(func(*index.Upload) error { n++; return nil }))
	assert.Zero(t, n)
	require.NoError(t, e.db.WalkBlobs(func(*index.Blob) error { n++; return nil }))
	assert.Zero(t, n)
}

func TestTagImmutability(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, nil)
	_, err := e.CreateRepository(ctx, "imm", RepositorySettings{TagMutability: TagImmutableWithExclusion,
		TagMutabilityExclusions: []TagFilter{{Filter: "latest", FilterType: "WILDCARD"}, {Filter: "dev-*", FilterType: "WILDCARD"}}})
	require.NoError(t, err)
	for _, tag := range []string{"v1", "latest", "dev-x"} {
		pushImage(t, e, "imm", tag, rnd(10))
		d1, _ := e.StatManifest(ctx, "imm", tag)
		// Same digest again is not an overwrite.
		m, _ := e.GetManifest(ctx, "imm", tag)
		_, err := e.PutManifest(ctx, "imm", tag, m.MediaType, m.Payload)
		require.NoError(t, err)
		_ = d1
	}
	ldr := func(tag string) error {
		cfg := []byte(`{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
		cd, err := e.PutBlob(ctx, "imm", bytes.NewReader(cfg), "")
		require.NoError(t, err)
		p := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[]}`,
			ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, cd.Digest, cd.Size)
		_, err = e.PutManifest(ctx, "imm", tag, ocispec.MediaTypeImageManifest, []byte(p))
		return err
	}
	err = ldr("v1")
	require.ErrorIs(t, err, ErrTagImmutable)
	require.ErrorIs(t, err, ErrTagInvalid)
	assert.Contains(t, err.Error(), "The image tag 'v1' already exists in the 'imm' repository and cannot be overwritten because the repository is immutable.")
	require.NoError(t, ldr("latest"))
	require.NoError(t, ldr("dev-x"))
}

func TestCreateOnPushTemplates(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, &Options{})
	_, err := e.PutBlob(ctx, "nobody/x", bytes.NewReader([]byte("x")), "")
	require.ErrorIs(t, err, ErrNameUnknown)
	require.NoError(t, e.PutCreationTemplate(ctx, CreationTemplate{Prefix: "team-a", AppliedFor: []string{AppliedForCreateOnPush},
		RepositorySettings: RepositorySettings{TagMutability: TagImmutable, ResourceTags: []ResourceTag{{Key: "team", Value: "a"}}}}))
	require.NoError(t, e.PutCreationTemplate(ctx, CreationTemplate{Prefix: RootPrefix, AppliedFor: []string{AppliedForCreateOnPush}}))
	for _, name := range []string{"team-a/x", "team-a/y/z"} {
		_, err := e.PutBlob(ctx, name, bytes.NewReader([]byte("x")), "")
		require.NoError(t, err)
		r, err := e.Repository(ctx, name)
		require.NoError(t, err)
		assert.Equal(t, TagImmutable, r.TagMutability)
		assert.Equal(t, []ResourceTag{{Key: "team", Value: "a"}}, r.ResourceTags)
	}
	_, err = e.PutBlob(ctx, "team-ab/x", bytes.NewReader([]byte("x")), "")
	require.NoError(t, err)
	r, err := e.Repository(ctx, "team-ab/x")
	require.NoError(t, err)
	assert.Equal(t, TagMutable, r.TagMutability)
	_ = filepath.Join
}

func TestUploadCloseAfterEnd(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, nil)
	u, err := e.BeginUpload(ctx, "r")
	require.NoError(t, err)
	u.Write([]byte("abc"))
	_, err = u.Commit(ctx, digest.FromBytes([]byte("abc")), 3)
	require.NoError(t, err)
	require.NoError(t, u.Close())
	require.NoError(t, u.Close())
	u, err = e.BeginUpload(ctx, "r")
	require.NoError(t, err)
	require.NoError(t, u.Cancel(ctx))
	require.NoError(t, u.Close())
}
