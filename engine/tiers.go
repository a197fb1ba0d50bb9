package engine

// The archive tier's blob movements: a second blob store (the archive
// directory, recompressed at zstd's best level, sealed under each blob's
// own data key), and the worker that runs the durable tier jobs archiving
// and restoring write to the index. docs/archive.md states the protocol.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/s3"
	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/engine/internal/events"
	"github.com/berthstore/berth/index"
)

// tierRetryInterval is how long the worker waits before it runs again the
// jobs a pass could not finish (a key out of reach, a full disk).
const tierRetryInterval = time.Minute

// tierState is the archive tier's worker and its bookkeeping.
type tierState struct {
	// wake asks the worker for a pass (buffered: a request made while a
	// pass runs makes one more pass).
	wake chan struct{}
	// hold is held by the worker during each pass; a test holds it to
	// keep the worker from starting one while it looks at a state the
	// worker would change.
	hold sync.Mutex

	mu sync.Mutex
	// passDone is closed when the pass under way (or, when idle, the
	// next one) ends; WaitTierJobs waits on it.
	passDone chan struct{}
	// live are the ids of the writers moving blobs now: their files in a
	// store's uploads directory are no orphans (gc's UploadLive).
	live map[string]bool
	// stats count the moves since Open.
	stats TierStats
	// retry is the pending retry timer's stop, nil when none.
	retry func() bool
	// lastErr is the failure of the last pass (nil: every job it ran
	// finished).
	lastErr error
}

// TierStats count the archive tier's blob moves since the store was
// opened.
type TierStats struct {
	// BlobsArchived and BlobsRestored count blobs moved to the archive
	// tier and back.
	BlobsArchived int64 `json:"blobsArchived"`
	BlobsRestored int64 `json:"blobsRestored"`
	// HotBytesFreed is what the archived blobs took in the hot tier;
	// ArchiveBytesWritten what they take in the archive tier.
	HotBytesFreed       int64 `json:"hotBytesFreed"`
	ArchiveBytesWritten int64 `json:"archiveBytesWritten"`
	// JobsDone counts the tier jobs finished; JobErrors the passes a job
	// failed (it is retried).
	JobsDone  int64 `json:"jobsDone"`
	JobErrors int64 `json:"jobErrors"`
}

// openArchive opens the archive tier's blob store: files in adir, or,
// when the store's blobs are in a bucket, the same bucket under the hot
// tier's prefix plus "archive/" (so that any replica restores what
// another archived), spooled in adir. Frames as large as the format
// allows (zstd finds repeats across a whole frame) at the best level, one
// encoder and one frame in flight (the archive is written in the
// background, and a best-level frame of 16 MiB costs tens of MiB to
// encode), no shared frame cache (nothing reads it but a restore and
// fsck).
func openArchive(ctx context.Context, dir, adir string, o *Options) (blobBackend, error) {
	bo := blob.Options{
		FrameSize: blob.MaxFrameSize, Level: blob.LevelBest,
		Encoders: 1, InFlight: 1, StoreInFlight: 2, SharedFrames: -1, FS: o.FS,
	}
	if o.ObjectStore == nil {
		bs, err := blob.Open(adir, &bo)
		if err != nil {
			return nil, err
		}
		return fileBackend{bs}, nil
	}
	owner, err := storeIdentity(dir)
	if err != nil {
		return nil, err
	}
	ss, err := s3.Open(ctx, objectStoreOptions(o.ObjectStore, o.ObjectStore.Prefix+archivePrefix, adir, bo, owner))
	if err != nil {
		return nil, err
	}
	return objectBackend{ss}, nil
}

// archivePrefix is where the archive tier's objects go, under the hot
// tier's prefix: <prefix>archive/blobs/<alg>/<hex>, apart from the hot
// tier's <prefix>blobs/.
const archivePrefix = "archive/"

// archiveDir is the archive tier's directory of a store in dir. The
// store's own directory is refused: both tiers would be one blob store.
func archiveDir(dir string, o *Options) (string, error) {
	if o.ArchiveDir == "" {
		return filepath.Join(dir, "archive"), nil
	}
	a, aerr := filepath.Abs(o.ArchiveDir)
	d, derr := filepath.Abs(dir)
	if aerr == nil && derr == nil && a == d {
		return "", fmt.Errorf("%w: ArchiveDir %q is the store's own directory; give the archive tier a directory of its own", ErrInvalidArgument, o.ArchiveDir)
	}
	return o.ArchiveDir, nil
}

// storeOf returns the blob store of tier t.
func (e *Engine) storeOf(t index.Tier) blobBackend {
	if t == index.TierArchive {
		return e.archive
	}
	return e.hot
}

// deleteBlobFiles removes blob d's file from every tier (a missing one
// is no error).
func (e *Engine) deleteBlobFiles(ctx context.Context, d digest.Digest) error {
	var errs []error
	for _, s := range []blobBackend{e.hot, e.archive} {
		if err := s.Delete(ctx, d); err != nil && !errors.Is(err, blob.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// startTiers starts the worker, which first runs the jobs a previous
// process left (a crash in the middle of one resumes it).
func (e *Engine) startTiers() {
	e.tiers.wake = make(chan struct{}, 1)
	e.tiers.passDone = make(chan struct{})
	e.tiers.live = map[string]bool{}
	e.wakeTiers()
	e.goBackground(func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				e.tiers.mu.Lock()
				if e.tiers.retry != nil {
					e.tiers.retry()
				}
				e.tiers.mu.Unlock()
				return
			case <-e.tiers.wake:
			}
			e.tiers.hold.Lock()
			err := e.tierPass(ctx)
			e.tiers.hold.Unlock()
			e.tiers.mu.Lock()
			e.tiers.lastErr = err
			close(e.tiers.passDone)
			e.tiers.passDone = make(chan struct{})
			if err != nil && e.tiers.retry == nil && ctx.Err() == nil {
				e.tiers.retry = e.clock.AfterFunc(tierRetryInterval, func() {
					e.tiers.mu.Lock()
					e.tiers.retry = nil
					e.tiers.mu.Unlock()
					e.wakeTiers()
				})
			}
			e.tiers.mu.Unlock()
		}
	})
}

// wakeTiers asks the worker for a pass.
func (e *Engine) wakeTiers() {
	select {
	case e.tiers.wake <- struct{}{}:
	default:
	}
}

// WaitTierJobs waits until no tier job is pending (every archived image's
// blobs that no active image needs are in the archive tier, every restore
// has finished), or ctx is done, or a pass of the worker fails: then it
// returns that pass's error (a key out of reach, an archived file that
// does not read back); the failed jobs stay, and the worker runs them
// again every minute of the engine's clock.
func (e *Engine) WaitTierJobs(ctx context.Context) error {
	for {
		if err := e.checkOpen(); err != nil {
			return err
		}
		e.tiers.mu.Lock()
		done := e.tiers.passDone
		e.tiers.mu.Unlock()
		pending, err := e.pendingTierJobs()
		if err != nil {
			return err
		}
		if pending == 0 {
			return nil
		}
		e.wakeTiers()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
		}
		e.tiers.mu.Lock()
		err = e.tiers.lastErr
		e.tiers.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// pendingTierJobs counts the tier jobs in the index.
func (e *Engine) pendingTierJobs() (int, error) {
	n := 0
	err := e.db.WalkTierJobs(func(*index.TierJob) error { n++; return nil })
	return n, storageErr(err)
}

// TierStats returns the archive tier's counters since Open.
func (e *Engine) TierStats() TierStats {
	e.tiers.mu.Lock()
	defer e.tiers.mu.Unlock()
	return e.tiers.stats
}

// tierPass runs every pending job once, and returns the failures.
func (e *Engine) tierPass(ctx context.Context) error {
	// One replica at a time runs the jobs (the next poll finds what is
	// left when another replica held them).
	ctx, release, err := e.tryLease(ctx, "tiers")
	if errors.Is(err, errLeaseHeld) {
		return nil
	}
	if err != nil {
		return err
	}
	defer release()
	var jobs []*index.TierJob
	if err := e.db.WalkTierJobs(func(j *index.TierJob) error { jobs = append(jobs, j); return nil }); err != nil {
		e.log.Warn("archive tier: listing jobs", "err", err)
		return storageErr(err)
	}
	var errs []error
	for _, j := range jobs {
		if ctx.Err() != nil {
			return nil
		}
		if err := e.runTierJob(ctx, j); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			errs = append(errs, fmt.Errorf("%s job of %s@%s: %w", j.Kind, j.Repo, j.Digest, err))
			e.tiers.mu.Lock()
			e.tiers.stats.JobErrors++
			e.tiers.mu.Unlock()
			e.log.Warn("archive tier: job failed; retried later", "repository", j.Repo, "image", j.Digest, "job", j.Kind, "err", err)
		}
	}
	return errors.Join(errs...)
}

// runTierJob moves the blobs of the job's manifests to the tier their
// images need, then finishes the job.
func (e *Engine) runTierJob(ctx context.Context, j *index.TierJob) error {
	var blobs []digest.Digest
	for _, md := range j.Manifests {
		m, err := e.db.ManifestMeta(j.Repo, md)
		if errors.Is(err, index.ErrNotFound) {
			continue // deleted since: nothing of it to move
		}
		if err != nil {
			return storageErr(err)
		}
		for _, d := range m.Blobs {
			if !slices.Contains(blobs, d) {
				blobs = append(blobs, d)
			}
		}
	}
	for _, d := range blobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := e.reconcileBlob(ctx, d); err != nil {
			return fmt.Errorf("blob %s: %w", d, err)
		}
	}
	return e.finishTierJob(j)
}

// errNotHot: a restore job found a blob of an activating manifest still
// outside the hot tier (moved back meanwhile); the next pass moves it.
var errNotHot = errors.New("engine: a blob of an activating image is not in the hot tier yet")

// finishTierJob deletes the job, unless it was replaced since it was read
// (the new one runs at the next pass); a restore job first makes its
// activating manifests active, once every blob of theirs is hot. Under
// the repository's lock, so that no status change lands in between.
func (e *Engine) finishTierJob(j *index.TierJob) error {
	unlock := e.repoLocks.Lock(j.Repo)
	defer unlock()
	cur, err := e.db.TierJob(j.Repo, j.Digest)
	if errors.Is(err, index.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storageErr(err)
	}
	if cur.Kind != j.Kind || !cur.CreatedAt.Equal(j.CreatedAt) {
		return nil
	}
	b := e.db.NewBatch()
	defer b.Close()
	evq := e.events(b)
	activated := 0
	if j.Kind == index.JobRestore {
		now := e.now()
		for _, md := range j.Manifests {
			m, err := e.db.Manifest(j.Repo, md)
			if errors.Is(err, index.ErrNotFound) {
				continue
			}
			if err != nil {
				return storageErr(err)
			}
			if m.Status != index.StatusActivating {
				continue
			}
			for _, d := range m.Blobs {
				rec, err := e.db.Blob(d)
				if errors.Is(err, index.ErrNotFound) {
					continue
				}
				if err != nil {
					return storageErr(err)
				}
				if rec.Tier != index.TierHot {
					return fmt.Errorf("%w: %s", errNotHot, d)
				}
			}
			m.Status, m.LastActivatedAt = index.StatusActive, now
			if err := b.PutManifest(m); err != nil {
				return storageErr(err)
			}
			activated++
			if md == j.Digest {
				// The image restored is active: its UPDATE_STORAGE_CLASS
				// events (target STANDARD), with the time it became so.
				if err := e.storageClassEvents(evq, j.Repo, md, events.StorageClassStandard, now, ""); err != nil {
					return err
				}
			}
		}
	}
	if err := b.DeleteTierJob(j.Repo, j.Digest); err != nil {
		return storageErr(err)
	}
	// Recorded before the commit: a record that cannot be written leaves
	// the job pending (retried), so no finished job goes unrecorded.
	if err := e.recordTierJob(j, activated); err != nil {
		return err
	}
	if err := b.Commit(true); err != nil {
		return storageErr(err)
	}
	evq.committed()
	e.tiers.mu.Lock()
	e.tiers.stats.JobsDone++
	e.tiers.mu.Unlock()
	e.log.Info("archive tier: job done", "repository", j.Repo, "image", j.Digest, "job", j.Kind,
		"manifests", len(j.Manifests), "activated", activated)
	return nil
}

// recordTierJob records, durably, that the worker finished tier job j
// (its blobs moved; for a restore, activated manifests made ACTIVE): the
// end of an UpdateImageStorageClass or a lifecycle transition, done by the
// engine by itself, hence recorded as its own work (recordSystem).
func (e *Engine) recordTierJob(j *index.TierJob, activated int) error {
	action := "archive"
	if j.Kind == index.JobRestore {
		action = "restore"
	}
	id := "tier-" + j.CreatedAt.UTC().Format("20060102T150405.000000000Z") + "-" + j.Digest.Encoded()[:12]
	return e.recordSystem(context.Background(), id, "ecr:UpdateImageStorageClass", j.Repo, map[string]string{
		"job": action, "imageDigest": string(j.Digest), "phase": "completed",
		"manifests": strconv.Itoa(len(j.Manifests)), "activated": strconv.Itoa(activated),
	})
}

// wantTier returns the tier blob d belongs in: hot when a manifest that
// references it in a repository linking it is active or activating,
// archive when every such manifest is archived. ok is false when no
// manifest references it (it stays where it is; gc collects it).
func (e *Engine) wantTier(d digest.Digest) (t index.Tier, ok bool, err error) {
	var repos []string
	if err := e.db.LinkedRepositories(d, func(repo string) error { repos = append(repos, repo); return nil }); err != nil {
		return 0, false, storageErr(err)
	}
	referenced, hot := false, false
	for _, repo := range repos {
		err := e.db.ListManifests(repo, func(m *index.Manifest) error {
			if !slices.Contains(m.Blobs, d) {
				return nil
			}
			referenced = true
			if m.Status != index.StatusArchived {
				hot = true
				return io.EOF
			}
			return nil
		})
		if err != nil {
			return 0, false, storageErr(err)
		}
		if hot {
			return index.TierHot, true, nil
		}
	}
	if !referenced {
		return 0, false, nil
	}
	return index.TierArchive, true, nil
}

// reconcileBlob moves blob d to the tier its images need, if it is not
// there.
func (e *Engine) reconcileBlob(ctx context.Context, d digest.Digest) error {
	rec, err := e.db.Blob(d)
	if errors.Is(err, index.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storageErr(err)
	}
	want, ok, err := e.wantTier(d)
	if err != nil || !ok || want == rec.Tier {
		return err
	}
	return e.moveBlob(ctx, d, want, false)
}

// ensureHot brings blob d back to the hot tier, now, if it is in the
// archive: what a push of an archived image does (ECR: it "will be
// immediately restored"). It reads d's record under d's lock, the lock
// the worker holds from its check that no active image needs d to its
// switch of d's record to the archive: a caller that committed an active
// manifest referencing d before calling either made the worker leave d
// hot or sees d in the archive here and brings it back.
func (e *Engine) ensureHot(ctx context.Context, d digest.Digest) error {
	unlock := e.digestLocks.Lock(digestKey(d))
	defer unlock()
	return e.ensureHotLocked(ctx, d)
}

// ensureHotLocked is ensureHot for a caller holding d's lock.
func (e *Engine) ensureHotLocked(ctx context.Context, d digest.Digest) error {
	rec, err := e.db.Blob(d)
	if errors.Is(err, index.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storageErr(err)
	}
	if rec.Tier == index.TierHot {
		return nil
	}
	return e.moveBlob(ctx, d, index.TierHot, true)
}

// moveBlob rewrites blob d into tier to and switches its record there.
// The copy is made without d's lock (a move to the archive recompresses
// at zstd's best level: seconds a large layer); under the lock the record
// is read again (a blob pushed again, swept or moved meanwhile is left
// alone) and, for a move to the archive, whether an active image needs
// it (a push that referenced it since keeps it hot); then the copy is
// renamed into place, the record switched in one synced batch, and the
// old file removed. locked says the caller holds d's lock already (an
// upload commit, a mount): the whole move runs under it.
//
// The copy is sealed under the blob's own data key (unwrapped through any
// of its wraps): the wraps in the record stay as they are. A crash leaves
// the record naming one complete file and, at most, a copy in the other
// tier that gc removes as an orphan.
func (e *Engine) moveBlob(ctx context.Context, d digest.Digest, to index.Tier, locked bool) error {
	rec, err := e.db.Blob(d)
	if errors.Is(err, index.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storageErr(err)
	}
	if rec.Tier == to {
		return nil
	}
	dk, err := e.anyDataKey(ctx, rec)
	if err != nil {
		if errors.Is(err, ErrKeyDestroyed) {
			// Shredded: nothing can read it; the shred sweep removes it.
			return nil
		}
		return err
	}
	src, dst := e.storeOf(rec.Tier), e.storeOf(to)
	r, err := src.Open(ctx, d, dk)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			return fmt.Errorf("%w: %s: its file is missing from the %s tier", ErrCorrupt, d, rec.Tier)
		}
		return blobErr(err)
	}
	defer r.Close()
	id := "tier-" + newUploadID()
	e.tiers.mu.Lock()
	e.tiers.live[id] = true
	e.tiers.mu.Unlock()
	defer func() {
		e.tiers.mu.Lock()
		delete(e.tiers.live, id)
		e.tiers.mu.Unlock()
	}()
	w, err := dst.NewWriter(ctx, id, blob.WriterOptions{DataKey: dk, Algorithm: d.Algorithm()})
	if err != nil {
		return blobErr(err)
	}
	committed := false
	defer func() {
		if !committed {
			w.Cancel()
		}
	}()
	if _, err := r.WriteTo(w); err != nil {
		return blobErr(err)
	}
	if !locked {
		unlock := e.digestLocks.Lock(digestKey(d))
		defer unlock()
	}
	cur, err := e.db.Blob(d)
	if errors.Is(err, index.ErrNotFound) {
		return nil // swept meanwhile
	}
	if err != nil {
		return storageErr(err)
	}
	if cur.Tier != rec.Tier || string(cur.FileID) != string(rec.FileID) {
		return nil // moved or pushed again meanwhile
	}
	if to == index.TierArchive && !locked {
		want, ok, err := e.wantTier(d)
		if err != nil {
			return err
		}
		if !ok || want != index.TierArchive {
			return nil // an active image needs it now
		}
	}
	info, err := w.Commit(ctx, d, rec.Size)
	if err != nil {
		return blobErr(err)
	}
	committed = true
	cur.Tier, cur.FileID, cur.StoredSize = to, info.FileID[:], info.StoredSize
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutBlob(cur); err != nil {
		dst.Delete(ctx, d)
		return storageErr(err)
	}
	if err := b.Commit(true); err != nil {
		// The new copy is unnamed; d's lock keeps every other writer of
		// d out, so it goes now (a crash first leaves it to gc).
		dst.Delete(ctx, d)
		return storageErr(err)
	}
	if err := src.Delete(ctx, d); err != nil && !errors.Is(err, blob.ErrNotFound) {
		e.log.Warn("archive tier: removing the moved blob's old file; gc removes it", "blob", d, "tier", rec.Tier, "err", err)
	}
	e.tiers.mu.Lock()
	if to == index.TierArchive {
		e.tiers.stats.BlobsArchived++
		e.tiers.stats.HotBytesFreed += rec.StoredSize
		e.tiers.stats.ArchiveBytesWritten += info.StoredSize
	} else {
		e.tiers.stats.BlobsRestored++
	}
	e.tiers.mu.Unlock()
	e.log.Debug("archive tier: blob moved", "blob", d, "to", to, "size", rec.Size, "from bytes", rec.StoredSize, "to bytes", info.StoredSize)
	return nil
}

// anyDataKey is rec's data key unwrapped through whichever of its wraps
// unwraps (nil for a plain blob); ErrKeyDestroyed when every key that
// wraps it is destroyed.
func (e *Engine) anyDataKey(ctx context.Context, rec *index.Blob) ([]byte, error) {
	if len(rec.Wraps) == 0 {
		return nil, nil
	}
	var errs []error
	destroyed := 0
	for _, w := range rec.Wraps {
		k, err := e.blobDataKey(ctx, rec, w.KeyID)
		if err == nil {
			return k, nil
		}
		if errors.Is(err, ErrKeyDestroyed) || errors.Is(err, crypt.ErrKeyDestroyed) {
			destroyed++
		}
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	if destroyed == len(rec.Wraps) {
		return nil, fmt.Errorf("%w: %w", ErrKeyDestroyed, err)
	}
	return nil, err
}
