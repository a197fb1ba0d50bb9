package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob/blobtest"
	"github.com/berthstore/berth/index"
)

// waitTiers waits for the archive tier's jobs, failing the test on error.
func waitTiers(t testing.TB, e *Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, e.WaitTierJobs(ctx))
}

// tierOf is the tier blob d's record names.
func tierOf(t testing.TB, e *Engine, d digest.Digest) index.Tier {
	t.Helper()
	rec, err := e.db.Blob(d)
	require.NoError(t, err)
	return rec.Tier
}

// dirBytes is the size of the regular files under dir.
func dirBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	require.NoError(t, err)
	return n
}

// manifestBlobs returns the config and layer digests of an image
// manifest payload.
func manifestBlobs(t testing.TB, payload []byte) []digest.Digest {
	t.Helper()
	var m ocispec.Manifest
	require.NoError(t, json.Unmarshal(payload, &m))
	ds := []digest.Digest{m.Config.Digest}
	for _, l := range m.Layers {
		ds = append(ds, l.Digest)
	}
	return ds
}

// readArchived reads blob d of repo whole.
func readArchived(t testing.TB, e *Engine, repo string, d digest.Digest) []byte {
	t.Helper()
	r, err := e.OpenBlob(context.Background(), repo, d)
	require.NoError(t, err)
	defer r.Close()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b
}

// vendoredSource is a compressible layer: Go source text, then the same
// files again (a module with a vendor/ copy of its dependencies).
func vendoredSource(t testing.TB, n int) []byte {
	src := blobtest.SourceTar(t, n/2)
	return append(src, src...)
}

// TestArchiveAndRestore: an archived image does not pull (ECR's 404),
// is described ARCHIVED with its archive time, and its blobs move to the
// archive directory in fewer bytes; restored, it is ACTIVATING until its
// blobs are back, then ACTIVE and pulls bit-exact.
func TestArchiveAndRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(dir, &Options{CreateOnPush: true, Logger: quietOptions().Logger})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	layer := vendoredSource(t, 8<<20)
	d, payload := pushImage(t, e, "team/app", "v1", layer)
	blobs := manifestBlobs(t, payload)
	var hotBytes int64
	for _, b := range blobs {
		rec, err := e.db.Blob(b)
		require.NoError(t, err)
		hotBytes += rec.StoredSize
	}

	u, err := e.UpdateImageStorageClass(ctx, "team/app", "v1", StorageArchive)
	require.NoError(t, err)
	assert.Equal(t, StorageClassUpdate{Digest: d, Status: ImageArchived}, u)
	_, err = e.GetManifest(ctx, "team/app", "v1")
	require.ErrorIs(t, err, ErrImageArchived)
	require.ErrorIs(t, err, ErrManifestUnknown, "a pull of an archived image is MANIFEST_UNKNOWN (404), as ECR answers it")
	assert.Contains(t, err.Error(), "is archived (imageStatus ARCHIVED)")
	_, err = e.StatManifest(ctx, "team/app", string(d))
	require.ErrorIs(t, err, ErrImageArchived)
	im, err := e.Image(ctx, "team/app", "v1")
	require.NoError(t, err)
	assert.Equal(t, ImageArchived, im.Status)
	assert.False(t, im.LastArchivedAt.IsZero())
	assert.Equal(t, []string{"v1"}, im.Tags, "an archived image keeps its tags")

	waitTiers(t, e)
	for _, b := range blobs {
		assert.Equal(t, index.TierArchive, tierOf(t, e, b))
		_, err := e.StatBlob(ctx, "team/app", b)
		require.ErrorIs(t, err, ErrBlobArchived)
		require.ErrorIs(t, err, ErrBlobUnknown)
		_, err = e.OpenBlob(ctx, "team/app", b)
		require.ErrorIs(t, err, ErrBlobArchived)
	}
	archived := dirBytes(t, filepath.Join(dir, "archive", "blobs"))
	assert.Zero(t, dirBytes(t, filepath.Join(dir, "blobs")), "nothing of the image is left in the hot tier")
	t.Logf("archive: %d logical bytes, %d in the hot tier, %d in the archive tier: %.1f%% fewer",
		len(layer), hotBytes, archived, 100*(1-float64(archived)/float64(hotBytes)))
	assert.Less(t, float64(archived), 0.7*float64(hotBytes), "at least 30%% fewer bytes in the archive tier")
	st := e.TierStats()
	assert.Equal(t, int64(len(blobs)), st.BlobsArchived)
	assert.Equal(t, hotBytes, st.HotBytesFreed)
	assert.Equal(t, archived, st.ArchiveBytesWritten)

	u, err = e.UpdateImageStorageClass(ctx, "team/app", string(d), StorageStandard)
	require.NoError(t, err)
	assert.Equal(t, ImageActivating, u.Status)
	_, err = e.GetManifest(ctx, "team/app", "v1")
	require.ErrorIs(t, err, ErrImageArchived, "an image being restored does not pull yet")
	assert.Contains(t, err.Error(), "ACTIVATING")
	waitTiers(t, e)
	im, err = e.Image(ctx, "team/app", "v1")
	require.NoError(t, err)
	assert.Equal(t, ImageActive, im.Status)
	assert.False(t, im.LastActivatedAt.IsZero())
	assert.False(t, im.LastActivatedAt.Before(im.LastArchivedAt))
	m, err := e.GetManifest(ctx, "team/app", "v1")
	require.NoError(t, err)
	assert.Equal(t, payload, m.Payload)
	assert.True(t, bytes.Equal(layer, readArchived(t, e, "team/app", blobs[1])), "the layer pulls bit-exact after its restore")
	assert.Zero(t, dirBytes(t, filepath.Join(dir, "archive", "blobs")), "a restore leaves nothing in the archive")
	r, err := e.Fsck(ctx, FsckOptions{Verify: true})
	require.NoError(t, err)
	assert.True(t, r.Clean(), "%v", r.Corrupt)
	assert.Empty(t, r.Orphans)

	// The worker's two jobs are in the audit log, as the engine's own
	// work; so are the image's events as they were routed: archived
	// (target ARCHIVE) at the request, restored (target STANDARD, with the
	// time it became active) when the restore job finished.
	for { // route what is queued now (the router may not have yet)
		n, err := e.routeOnce(ctx)
		require.NoError(t, err)
		if n == 0 {
			break
		}
	}
	var recs, evs []AuditRecord
	require.NoError(t, e.AuditRecords(ctx, AuditQuery{Principal: AuditSystemUser, Repository: "team/app", OldestFirst: true},
		func(r AuditRecord) error {
			switch {
			case r.Action == "ecr:UpdateImageStorageClass":
				recs = append(recs, r)
			case r.Parameters["action-type"] == "UPDATE_STORAGE_CLASS":
				evs = append(evs, r)
			}
			return nil
		}))
	require.Len(t, evs, 2)
	assert.Equal(t, "ARCHIVE", evs[0].Parameters["target-storage-class"])
	assert.Equal(t, "v1", evs[0].Parameters["image-tag"])
	assert.Empty(t, evs[0].Parameters["last-activated-at"])
	assert.Equal(t, "STANDARD", evs[1].Parameters["target-storage-class"])
	assert.Equal(t, string(d), evs[1].Parameters["image-digest"])
	assert.Equal(t, im.LastActivatedAt.UTC().Format(time.RFC3339Nano), evs[1].Parameters["last-activated-at"])
	require.Len(t, recs, 2)
	for i, job := range []string{"archive", "restore"} {
		assert.Equal(t, AuditLocal, recs[i].PrincipalType)
		assert.Equal(t, AuditAPIEngine, recs[i].API)
		assert.Equal(t, "ecr:UpdateImageStorageClass", recs[i].Action)
		assert.Equal(t, e.RepositoryARN("team/app"), recs[i].Resource)
		assert.True(t, recs[i].Mutating)
		assert.Equal(t, job, recs[i].Parameters["job"])
		assert.Equal(t, string(d), recs[i].Parameters["imageDigest"])
	}
	assert.Equal(t, "1", recs[1].Parameters["activated"])
}

// TestArchiveSharedLayerStaysHot: a layer an active image also uses stays
// in the hot tier (and pulls through the active image); the archived
// image's own layer moves. Dedupe holds across the tiers: one record, one
// file, in the tier the active images need.
func TestArchiveSharedLayerStaysHot(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	shared, own := rnd(200<<10), rnd(100<<10)
	_, p1 := pushImage(t, e, "team/app", "old", shared, own)
	_, p2 := pushImage(t, e, "team/other", "v1", shared)
	b1, b2 := manifestBlobs(t, p1), manifestBlobs(t, p2)
	require.Equal(t, b1[1], b2[1])

	_, err := e.UpdateImageStorageClass(ctx, "team/app", "old", StorageArchive)
	require.NoError(t, err)
	waitTiers(t, e)
	assert.Equal(t, index.TierHot, tierOf(t, e, b1[1]), "the shared layer stays hot")
	assert.Equal(t, index.TierArchive, tierOf(t, e, b1[2]), "the archived image's own layer moves")
	assert.Equal(t, index.TierArchive, tierOf(t, e, b1[0]))
	assert.True(t, bytes.Equal(shared, readArchived(t, e, "team/other", b2[1])))
	_, err = e.GetManifest(ctx, "team/other", "v1")
	require.NoError(t, err)

	// Archived too, the other image lets the shared layer go.
	_, err = e.UpdateImageStorageClass(ctx, "team/other", "v1", StorageArchive)
	require.NoError(t, err)
	waitTiers(t, e)
	assert.Equal(t, index.TierArchive, tierOf(t, e, b1[1]))
	// And a restore of one of them brings it back.
	_, err = e.UpdateImageStorageClass(ctx, "team/other", "v1", StorageStandard)
	require.NoError(t, err)
	waitTiers(t, e)
	assert.Equal(t, index.TierHot, tierOf(t, e, b1[1]))
	assert.Equal(t, index.TierArchive, tierOf(t, e, b1[2]))
	r, err := e.Fsck(ctx, FsckOptions{Verify: true})
	require.NoError(t, err)
	assert.True(t, r.Clean(), "%v", r.Corrupt)
}

// TestArchivePushRestores: a push of an archived image restores it at once
// (ECR: "When you push an image that is currently archived, that image
// will be immediately restored"): the manifest is active when the push
// answers, with its blobs hot; a layer pushed again comes back from the
// archive, its data key and wraps unchanged.
func TestArchivePushRestores(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	layer := rnd(150 << 10)
	d, payload := pushImage(t, e, "team/app", "v1", layer)
	blobs := manifestBlobs(t, payload)
	_, err := e.UpdateImageStorageClass(ctx, "team/app", "v1", StorageArchive)
	require.NoError(t, err)
	waitTiers(t, e)

	// The layer is uploaded again (a client's HEAD said 404): back now.
	_, err = e.PutBlob(ctx, "team/app", bytes.NewReader(layer), blobs[1])
	require.NoError(t, err)
	assert.Equal(t, index.TierHot, tierOf(t, e, blobs[1]))
	assert.Equal(t, index.TierArchive, tierOf(t, e, blobs[0]))

	res, err := e.PutManifest(ctx, "team/app", "v1", ocispec.MediaTypeImageManifest, payload)
	require.NoError(t, err)
	assert.Equal(t, d, res.Digest)
	for _, b := range blobs {
		assert.Equal(t, index.TierHot, tierOf(t, e, b))
	}
	im, err := e.Image(ctx, "team/app", "v1")
	require.NoError(t, err)
	assert.Equal(t, ImageActive, im.Status)
	assert.False(t, im.LastActivatedAt.IsZero())
	assert.True(t, bytes.Equal(layer, readArchived(t, e, "team/app", blobs[1])))
	waitTiers(t, e) // the archive job left over has nothing to move back
	assert.Equal(t, index.TierHot, tierOf(t, e, blobs[1]))

	// A mount of an archived blob brings it back too.
	_, err = e.UpdateImageStorageClass(ctx, "team/app", "v1", StorageArchive)
	require.NoError(t, err)
	waitTiers(t, e)
	_, err = e.MountBlob(ctx, "team/copy", "team/app", blobs[1])
	require.NoError(t, err)
	assert.Equal(t, index.TierHot, tierOf(t, e, blobs[1]))
	assert.True(t, bytes.Equal(layer, readArchived(t, e, "team/copy", blobs[1])))
	r, err := e.Fsck(ctx, FsckOptions{Verify: true})
	require.NoError(t, err)
	assert.True(t, r.Clean(), "%v", r.Corrupt)
}

// TestArchiveRefusals: what UpdateImageStorageClass refuses, and how.
func TestArchiveRefusals(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	c1, _ := pushImage(t, e, "team/app", "c1", rnd(10))
	idx := pushIndex(t, e, "team/app", "multi", map[digest.Digest]int{c1: manifestSize(t, e, "team/app", c1)})
	_, gone, err := e.UntagImage(ctx, "team/app", "c1")
	require.NoError(t, err)
	require.False(t, gone, "listed by the index, the child stays, untagged")
	_, err = e.UpdateImageStorageClass(ctx, "team/app", string(c1), StorageArchive)
	require.ErrorIs(t, err, ErrStorageClassUpdate, "a child of an active index")
	assert.Contains(t, err.Error(), string(idx))
	_, err = e.UpdateImageStorageClass(ctx, "team/app", "multi", StorageStandard)
	require.ErrorIs(t, err, ErrStorageClassUpdate, "not archived")
	_, err = e.UpdateImageStorageClass(ctx, "team/app", "multi", "GLACIER")
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = e.UpdateImageStorageClass(ctx, "team/app", "nope", StorageArchive)
	require.ErrorIs(t, err, ErrManifestUnknown)
	_, err = e.UpdateImageStorageClass(ctx, "team/none", "v1", StorageArchive)
	require.ErrorIs(t, err, ErrNameUnknown)

	// The index goes with its untagged child.
	_, err = e.UpdateImageStorageClass(ctx, "team/app", "multi", StorageArchive)
	require.NoError(t, err)
	ci, err := e.Image(ctx, "team/app", string(c1))
	require.NoError(t, err)
	assert.Equal(t, ImageArchived, ci.Status, "the untagged child is archived with its index")
	_, err = e.UpdateImageStorageClass(ctx, "team/app", "multi", StorageArchive)
	require.ErrorIs(t, err, ErrStorageClassUpdate, "already archived")
	// The worker is held while the restore is under way, so that it
	// cannot finish the restore between the calls that look at it.
	e.tiers.hold.Lock()
	held := true
	defer func() {
		if held {
			e.tiers.hold.Unlock()
		}
	}()
	u, err := e.UpdateImageStorageClass(ctx, "team/app", "multi", StorageStandard)
	require.NoError(t, err)
	assert.Equal(t, ImageActivating, u.Status)
	u, err = e.UpdateImageStorageClass(ctx, "team/app", "multi", StorageStandard)
	require.NoError(t, err, "restoring an image being restored changes nothing")
	assert.Equal(t, ImageActivating, u.Status)
	_, err = e.UpdateImageStorageClass(ctx, "team/app", "multi", StorageArchive)
	require.ErrorIs(t, err, ErrStorageClassUpdate, "archiving an image being restored")
	held = false
	e.tiers.hold.Unlock()
	waitTiers(t, e)
	ci, err = e.Image(ctx, "team/app", string(c1))
	require.NoError(t, err)
	assert.Equal(t, ImageActive, ci.Status, "the child is restored with its index")
	ci, err = e.Image(ctx, "team/app", "multi")
	require.NoError(t, err)
	assert.Equal(t, ImageActive, ci.Status)
	_, err = e.UpdateImageStorageClass(ctx, "team/app", "multi", StorageStandard)
	require.ErrorIs(t, err, ErrStorageClassUpdate, "not archived once restored")
}

// manifestSize is the payload size of manifest d of repo.
func manifestSize(t testing.TB, e *Engine, repo string, d digest.Digest) int {
	m, err := e.db.ManifestMeta(repo, d)
	require.NoError(t, err)
	return int(m.PayloadSize)
}

// TestLifecycleTransition: a transition rule archives what it selects
// (preview and apply agree, TRANSITION with target ARCHIVE), an archive
// rule expires archived images only after their minimum 90 days, and a
// collection then takes their bytes from the archive tier.
func TestLifecycleTransition(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	o := quietOptions()
	o.Clock = clk
	dir := t.TempDir()
	e, err := Open(dir, o)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	_, pOld := pushImage(t, e, "team/app", "old", rnd(50<<10))
	clk.Advance(40 * 24 * time.Hour)
	dNew, _ := pushImage(t, e, "team/app", "new", rnd(50<<10))
	policy := `{"rules":[
 {"rulePriority":1,"description":"Archive images older than 30 days","selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"transition","targetStorageClass":"archive"}},
 {"rulePriority":2,"description":"Expire images archived for more than 365 days","selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365},"action":{"type":"expire"}}]}`
	require.NoError(t, e.PutLifecyclePolicy(ctx, "team/app", policy))

	prev, err := e.LifecyclePreview(ctx, "team/app", "")
	require.NoError(t, err)
	require.Len(t, prev, 1)
	assert.Equal(t, LifecycleAction{Type: LifecycleTransition, TargetStorageClass: StorageArchive}, prev[0].Action)
	assert.Equal(t, StorageStandard, prev[0].StorageClass)
	applied, err := e.LifecycleApply(ctx, "team/app", "")
	require.NoError(t, err)
	assert.Equal(t, prev, applied, "apply does what the preview listed")
	waitTiers(t, e)
	old, err := e.Image(ctx, "team/app", "old")
	require.NoError(t, err)
	assert.Equal(t, ImageArchived, old.Status)
	for _, b := range manifestBlobs(t, pOld) {
		assert.Equal(t, index.TierArchive, tierOf(t, e, b))
	}
	_, err = e.GetManifest(ctx, "team/app", "new")
	require.NoError(t, err, "the new image stays active")
	assert.Equal(t, int64(1), e.GCStats().ImagesArchived[1])

	// 364 days later the archived image stays; 366 days later it expires.
	clk.Advance(364 * 24 * time.Hour)
	// (The new image, archived meanwhile by rule 1, is not yet old enough
	// in the archive to go.)
	applied, err = e.LifecycleApply(ctx, "team/app", "")
	require.NoError(t, err)
	require.Len(t, applied, 1)
	assert.Equal(t, dNew, applied[0].Digest)
	assert.Equal(t, LifecycleTransition, applied[0].Action.Type)
	clk.Advance(2 * 24 * time.Hour)
	applied, err = e.LifecycleApply(ctx, "team/app", "")
	require.NoError(t, err)
	require.Len(t, applied, 1)
	assert.Equal(t, old.Digest, applied[0].Digest)
	assert.Equal(t, LifecycleAction{Type: LifecycleExpire}, applied[0].Action)
	assert.Equal(t, StorageArchive, applied[0].StorageClass)
	_, err = e.Image(ctx, "team/app", "old")
	require.ErrorIs(t, err, ErrManifestUnknown)
	waitTiers(t, e)
	before := dirBytes(t, filepath.Join(dir, "archive", "blobs"))
	gr, err := e.CollectGarbage(ctx, noGrace)
	require.NoError(t, err)
	assert.Equal(t, 2, gr.BlobsSwept, "the expired archived image's config and layer")
	after := dirBytes(t, filepath.Join(dir, "archive", "blobs"))
	assert.Less(t, after, before, "gc sweeps unreferenced blobs of the archive tier")
	r, err := e.Fsck(ctx, FsckOptions{Verify: true})
	require.NoError(t, err)
	assert.True(t, r.Clean(), "%v", r.Corrupt)
	assert.Empty(t, r.Orphans)
}

// TestArchivedImageDeletes: BatchDeleteImage deletes an archived image at
// any time (ECR: "use the batch-delete-image API"), and a collection
// takes its archived blobs.
func TestArchivedImageDeletes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(dir, quietOptions())
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	d, _ := pushImage(t, e, "team/app", "v1", rnd(20<<10))
	_, err = e.UpdateImageStorageClass(ctx, "team/app", "v1", StorageArchive)
	require.NoError(t, err)
	waitTiers(t, e)
	require.NoError(t, e.DeleteImage(ctx, "team/app", d))
	_, err = e.CollectGarbage(ctx, noGrace)
	require.NoError(t, err)
	assert.Zero(t, dirBytes(t, filepath.Join(dir, "archive", "blobs")))
}

// TestArchiveConcurrentPushes: while the archive tier's worker moves the
// blobs of archived images, pushes of new images that share their layers
// go on; no active image is ever left with a blob in the archive (every
// one pulls, fsck is clean), whatever the interleaving.
func TestArchiveConcurrentPushes(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	const images = 12
	layers := make([][]byte, images)
	for i := range layers {
		layers[i] = rnd(64<<10 + i)
	}
	for i := range images {
		pushImage(t, e, "team/a", fmt.Sprint("v", i), layers[i])
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*images)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range images {
			if _, err := e.UpdateImageStorageClass(ctx, "team/a", fmt.Sprint("v", i), StorageArchive); err != nil {
				errs <- err
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range images {
			// The same layer, in another repository: linked by a mount
			// (which brings it back if it was archived already) or
			// uploaded again, then its manifest.
			if i%2 == 0 {
				if _, err := e.MountBlob(ctx, "team/b", "team/a", digest.FromBytes(layers[i])); err != nil {
					errs <- err
				}
			}
			if _, err := e.PutBlob(ctx, "team/b", bytes.NewReader(layers[i]), ""); err != nil {
				errs <- err
			}
			pushImage(t, e, "team/b", fmt.Sprint("v", i), layers[i])
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	waitTiers(t, e)
	for i := range images {
		d := digest.FromBytes(layers[i])
		assert.Equal(t, index.TierHot, tierOf(t, e, d), "layer %d is used by the active team/b:v%d", i, i)
		assert.True(t, bytes.Equal(layers[i], readArchived(t, e, "team/b", d)))
		im, err := e.Image(ctx, "team/a", fmt.Sprint("v", i))
		require.NoError(t, err)
		assert.Equal(t, ImageArchived, im.Status)
	}
	r, err := e.Fsck(ctx, FsckOptions{Verify: true})
	require.NoError(t, err)
	assert.True(t, r.Clean(), "%v", r.Corrupt)
}

// TestArchiveJobsSurviveReopen: tier jobs are durable: a store closed
// with jobs pending runs them when it is opened again.
func TestArchiveJobsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(dir, quietOptions())
	require.NoError(t, err)
	_, payload := pushImage(t, e, "team/app", "v1", rnd(30<<10))
	// Written as UpdateImageStorageClass writes it, with no worker to run
	// it: the store is closed at once.
	m, err := e.db.Manifest("team/app", digest.FromBytes(payload))
	require.NoError(t, err)
	m.Status, m.LastArchivedAt = index.StatusArchived, e.now()
	b := e.db.NewBatch()
	require.NoError(t, b.PutManifest(m))
	require.NoError(t, b.PutTierJob(&index.TierJob{Repo: "team/app", Digest: m.Digest, Kind: index.JobArchive,
		Manifests: []digest.Digest{m.Digest}, CreatedAt: e.now()}))
	require.NoError(t, b.Commit(true))
	require.NoError(t, b.Close())
	require.NoError(t, e.Close())

	e, err = Open(dir, quietOptions())
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	waitTiers(t, e)
	for _, d := range manifestBlobs(t, payload) {
		assert.Equal(t, index.TierArchive, tierOf(t, e, d))
	}
	n, err := e.pendingTierJobs()
	require.NoError(t, err)
	assert.Zero(t, n)
	_, err = os.Stat(filepath.Join(dir, "archive", "blobs"))
	require.NoError(t, err)
	_, err = e.Fsck(ctx, FsckOptions{})
	require.NoError(t, err)
}

// TestArchiveDirOption: Options.ArchiveDir puts the archive tier
// elsewhere (another file system); nothing of it is under the store.
func TestArchiveDirOption(t *testing.T) {
	ctx := context.Background()
	dir, adir := t.TempDir(), t.TempDir()
	o := quietOptions()
	o.ArchiveDir = adir
	e, err := Open(dir, o)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	pushImage(t, e, "team/app", "v1", rnd(10<<10))
	_, err = e.UpdateImageStorageClass(ctx, "team/app", "v1", StorageArchive)
	require.NoError(t, err)
	waitTiers(t, e)
	assert.NotZero(t, dirBytes(t, filepath.Join(adir, "blobs")))
	_, err = os.Stat(filepath.Join(dir, "archive"))
	assert.True(t, errors.Is(err, fs.ErrNotExist), "no archive directory in the store: %v", err)

	// The store's own directory is no archive directory.
	o = quietOptions()
	same := t.TempDir()
	o.ArchiveDir = same + "/."
	_, err = Open(same, o)
	require.ErrorIs(t, err, ErrInvalidArgument)
}

// TestScheduledLifecycleTransition: a scheduled lifecycle run and a
// stored preview know transition rules: the preview lists the image as a
// TRANSITION to ARCHIVE (summary counts it as transitioning, not
// expiring); the run archives it with its tier job, records TRANSITION in
// the audit log, counts it archived (not expired), and emits its
// UPDATE_STORAGE_CLASS event with cause lifecycle.
func TestScheduledLifecycleTransition(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	o := quietOptions()
	o.Clock = clk
	e := openTestEngine(t, o)
	dOld, pOld := pushImage(t, e, "team/app", "old", rnd(50<<10))
	clk.Advance(40 * 24 * time.Hour)
	pushImage(t, e, "team/app", "new", rnd(50<<10))
	require.NoError(t, e.PutLifecyclePolicy(ctx, "team/app", `{"rules":[
 {"rulePriority":1,"description":"Archive images older than 30 days","selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"transition","targetStorageClass":"archive"}}]}`))

	p, err := e.StartLifecyclePolicyPreview(ctx, "team/app", "")
	require.NoError(t, err)
	require.Equal(t, PreviewComplete, p.Status)
	assert.Zero(t, p.ExpiringImages)
	assert.Equal(t, map[StorageClass]int{StorageArchive: 1}, p.TransitioningImages)
	var results []LifecyclePreviewResult
	_, err = e.LifecyclePolicyPreview(ctx, "team/app", "", func(r LifecyclePreviewResult) error { results = append(results, r); return nil })
	require.NoError(t, err)
	require.Len(t, results, 1)
	assert.Equal(t, dOld, results[0].Digest)
	assert.Equal(t, LifecycleAction{Type: LifecycleTransition, TargetStorageClass: StorageArchive}, results[0].Action)
	assert.Equal(t, StorageStandard, results[0].StorageClass)

	require.Equal(t, RunOK, e.scheduledLifecycle(ctx, TriggerSchedule))
	rep := e.GCStats().LastLifecycleRun
	require.NotNil(t, rep)
	assert.Equal(t, 1, rep.ImagesArchived)
	assert.Zero(t, rep.ImagesExpired)
	assert.Zero(t, rep.ManifestsDeleted)
	assert.Equal(t, int64(1), e.GCStats().ImagesArchived[1])
	assert.Empty(t, e.GCStats().ImagesExpired)
	im, err := e.Image(ctx, "team/app", "old")
	require.NoError(t, err)
	assert.Equal(t, ImageArchived, im.Status)
	waitTiers(t, e)
	for _, b := range manifestBlobs(t, pOld) {
		assert.Equal(t, index.TierArchive, tierOf(t, e, b), "the run's tier job moved the blob")
	}
	_, err = e.GetManifest(ctx, "team/app", "new")
	require.NoError(t, err, "the new image stays active")

	for { // route what is queued now (the router may not have yet)
		n, err := e.routeOnce(ctx)
		require.NoError(t, err)
		if n == 0 {
			break
		}
	}
	var acts, evs []AuditRecord
	require.NoError(t, e.AuditRecords(ctx, AuditQuery{Principal: AuditSystemUser, Repository: "team/app", OldestFirst: true},
		func(r AuditRecord) error {
			switch {
			case r.Action == ActionPolicyExecution:
				acts = append(acts, r)
			case r.Parameters["action-type"] == "UPDATE_STORAGE_CLASS":
				evs = append(evs, r)
			}
			return nil
		}))
	require.Len(t, acts, 1)
	assert.Equal(t, string(dOld), acts[0].Parameters["imageDigest"])
	assert.Equal(t, LifecycleTransition, acts[0].Parameters["action"])
	assert.Equal(t, "ARCHIVE", acts[0].Parameters["targetStorageClass"])
	assert.Equal(t, "STANDARD", acts[0].Parameters["storageClass"])
	assert.Equal(t, "1", acts[0].Parameters["rulePriority"])
	require.Len(t, evs, 1)
	assert.Equal(t, string(dOld), evs[0].Parameters["image-digest"])
	assert.Equal(t, "ARCHIVE", evs[0].Parameters["target-storage-class"])
	assert.Equal(t, "old", evs[0].Parameters["image-tag"])
	assert.Equal(t, EventCauseLifecycle, evs[0].Parameters["cause"])
}

// TestArchivedReferrers: a referrer archived with its subject leaves
// Referrers (it does not pull) and is listed by AllReferrers with its
// status, ARCHIVED, then ACTIVE again after the restore.
func TestArchivedReferrers(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	subj, payload := pushImage(t, e, "team/app", "v1", rnd(10<<10))
	cfg := []byte(`{}`)
	cd, err := e.PutBlob(ctx, "team/app", bytes.NewReader(cfg), digest.FromBytes(cfg))
	require.NoError(t, err)
	sbom := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/vnd.example.sbom",
		Config:  ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: cd.Digest, Size: cd.Size},
		Layers:  []ocispec.Descriptor{{MediaType: ocispec.MediaTypeEmptyJSON, Digest: cd.Digest, Size: cd.Size}},
		Subject: &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subj, Size: int64(len(payload))}}
	sbom.SchemaVersion = 2
	sp, _ := json.Marshal(sbom)
	res, err := e.PutManifest(ctx, "team/app", digest.FromBytes(sp).String(), ocispec.MediaTypeImageManifest, sp)
	require.NoError(t, err)

	statuses := func() map[digest.Digest]ImageStatus {
		refs, err := e.AllReferrers(ctx, "team/app", subj, "")
		require.NoError(t, err)
		out := map[digest.Digest]ImageStatus{}
		for _, r := range refs {
			out[r.Digest] = r.Status
		}
		return out
	}
	require.Equal(t, map[digest.Digest]ImageStatus{res.Digest: ImageActive}, statuses())
	_, err = e.UpdateImageStorageClass(ctx, "team/app", "v1", StorageArchive)
	require.NoError(t, err)
	refs, err := e.Referrers(ctx, "team/app", subj, "")
	require.NoError(t, err)
	assert.Empty(t, refs, "an archived referrer does not pull")
	assert.Equal(t, map[digest.Digest]ImageStatus{res.Digest: ImageArchived}, statuses())
	_, err = e.UpdateImageStorageClass(ctx, "team/app", "v1", StorageStandard)
	require.NoError(t, err)
	waitTiers(t, e)
	assert.Equal(t, map[digest.Digest]ImageStatus{res.Digest: ImageActive}, statuses())
}
