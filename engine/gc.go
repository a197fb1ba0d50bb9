package engine

// Garbage collection, fsck and lifecycle policies: the engine's side of
// package gc (see docs/gc.md). The engine owns the write barrier (shade,
// gcEnter), the digest locks a sweep takes, the schedulers, and the
// batched recording of pull times that sinceImagePulled rules read.

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/gc"
	"github.com/berthstore/berth/index"
)

// ErrLifecyclePolicyNotFound: the repository has no lifecycle policy
// (ECR's LifecyclePolicyNotFoundException).
var ErrLifecyclePolicyNotFound = errors.New("engine: lifecycle policy not found")

// pullFlushInterval is how often recorded pull times reach the index.
const pullFlushInterval = 5 * time.Second

// gcState is the engine's gc and lifecycle machinery.
type gcState struct {
	// running is the collection in progress (nil: none); the write
	// barrier shades through it.
	running atomic.Pointer[gc.Collector]
	// barrier is held for reading by every operation that may add a
	// reference to a blob, from its shade to its commit. A collection
	// takes it for writing once after publishing itself in running, so
	// that every operation that started before (and may not have seen
	// it) has finished before the mark begins.
	barrier sync.RWMutex
	// runMu serialises collections.
	runMu sync.Mutex

	pullMu sync.Mutex
	pulls  map[pullKey]time.Time

	statsMu sync.Mutex
	stats   GCStats
}

// GCStats are cumulative gc and lifecycle figures since Open, for metrics
// (registryd exports them).
type GCStats struct {
	// Collections counts finished collections (dry runs excluded).
	Collections int64
	// BlobsSwept, BytesFreed, OrphanFilesRemoved and UploadsExpired sum
	// the collections' reports.
	BlobsSwept, OrphanFilesRemoved, UploadsExpired int64
	BytesFreed                                     int64
	// Last is the last collection's report (nil before the first).
	Last *gc.Report
	// ImagesExpired counts images expired by lifecycle, by rule priority.
	ImagesExpired map[int]int64
}

// GCStats returns a copy of the cumulative gc and lifecycle figures.
func (e *Engine) GCStats() GCStats {
	e.gcs.statsMu.Lock()
	defer e.gcs.statsMu.Unlock()
	s := e.gcs.stats
	s.ImagesExpired = make(map[int]int64, len(e.gcs.stats.ImagesExpired))
	for k, v := range e.gcs.stats.ImagesExpired {
		s.ImagesExpired[k] = v
	}
	return s
}

type pullKey struct {
	repo string
	d    digest.Digest
}

// gcEnter opens a write-barrier section (see gcState.barrier); call the
// returned function when the operation's index batch is committed or
// abandoned.
func (e *Engine) gcEnter() func() {
	e.gcs.barrier.RLock()
	return e.gcs.barrier.RUnlock
}

// shade tells a running collection that ds are about to be referenced.
// No-op when no collection runs.
func (e *Engine) shade(ds ...digest.Digest) {
	if c := e.gcs.running.Load(); c != nil {
		c.Shade(ds...)
	}
}

// lockMany takes the stripes of several keys, each once, in stripe order
// (no deadlock with callers holding one stripe).
func (s *stripedLocks) lockMany(keys []string) func() {
	idx := make([]int, 0, len(keys))
	for _, k := range keys {
		idx = append(idx, int(maphash.String(s.seed, k)%uint64(len(s.locks))))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		s.locks[i].Lock()
	}
	return func() {
		for _, i := range slices.Backward(idx) {
			s.locks[i].Unlock()
		}
	}
}

func (e *Engine) collectorConfig() gc.Config {
	return gc.Config{
		DB:         e.db,
		Blobs:      e.blobs,
		LockDigest: func(d digest.Digest) func() { return e.digestLocks.lock(digestKey(d)) },
		LockDigests: func(ds []digest.Digest) func() {
			keys := make([]string, len(ds))
			for i, d := range ds {
				keys[i] = digestKey(d)
			}
			return e.digestLocks.lockMany(keys)
		},
		LockUpload: func(id string) func() { return e.digestLocks.lock(uploadLockKey(id)) },
		UploadLive: func(id string) bool {
			e.upMu.Lock()
			defer e.upMu.Unlock()
			return e.uploads[id] != nil
		},
		Logger: e.log,
	}
}

// CollectGarbage runs one online mark-and-sweep collection (docs/gc.md):
// pushes and pulls go on meanwhile. With opts.DryRun it only plans and the
// report's Plan lists what would go. A second call while one runs fails
// with gc.ErrRunning.
func (e *Engine) CollectGarbage(ctx context.Context, opts gc.Options) (gc.Report, error) {
	if err := e.checkOpen(); err != nil {
		return gc.Report{}, err
	}
	if !e.gcs.runMu.TryLock() {
		return gc.Report{}, gc.ErrRunning
	}
	defer e.gcs.runMu.Unlock()
	if opts.UploadTTL == 0 {
		opts.UploadTTL = e.opts.UploadTTL
	}
	c := gc.NewCollector(e.collectorConfig(), opts)
	if !opts.DryRun {
		e.gcs.running.Store(c)
		defer e.gcs.running.Store(nil)
		// Wait for the operations that may have missed the barrier.
		e.gcs.barrier.Lock()
		e.gcs.barrier.Unlock() //nolint:staticcheck // an empty critical section is the point
	}
	// Crypto-shredded blobs (every wrap under a destroyed key) go first:
	// no read can succeed, whatever references them.
	shredded := 0
	if opts.DryRun {
		err := e.ShreddedBlobs(ctx, func(digest.Digest) error { shredded++; return nil })
		if err != nil {
			return gc.Report{}, err
		}
	} else {
		n, err := e.SweepShredded(ctx)
		if err != nil {
			return gc.Report{}, err
		}
		shredded = n
	}
	r, err := c.Run(ctx)
	r.ShreddedBlobs = shredded
	if err == nil && !r.DryRun {
		e.gcs.statsMu.Lock()
		st := &e.gcs.stats
		st.Collections++
		st.BlobsSwept += int64(r.BlobsSwept)
		st.BytesFreed += r.BytesFreed + r.OrphanBytesFreed
		st.OrphanFilesRemoved += int64(r.OrphanFilesRemoved)
		st.UploadsExpired += int64(r.UploadsExpired)
		last := r
		st.Last = &last
		e.gcs.statsMu.Unlock()
	}
	return r, storageErr(err)
}

// Fsck checks the store (gc.Fsck), unsealing blobs with the store's keys
// when opts.Verify asks for their digests to be re-verified.
func (e *Engine) Fsck(ctx context.Context, opts gc.FsckOptions) (*gc.FsckReport, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	opts.AllowSparse = opts.AllowSparse || e.opts.AllowSparse
	cfg := gc.FsckConfig{DB: e.db, Blobs: e.blobs, Logger: e.log, OpenBlob: e.openBlobAnyKey}
	return gc.Fsck(ctx, cfg, opts)
}

// openBlobAnyKey opens a blob through whichever of its wraps unwraps.
func (e *Engine) openBlobAnyKey(ctx context.Context, rec *index.Blob) (io.ReadCloser, error) {
	var dk []byte
	if len(rec.Wraps) > 0 {
		var errs []error
		for _, w := range rec.Wraps {
			k, err := e.blobDataKey(ctx, rec, w.KeyID)
			if err == nil {
				dk = k
				break
			}
			errs = append(errs, err)
		}
		if dk == nil {
			return nil, errors.Join(errs...)
		}
	}
	r, err := e.blobs.Open(ctx, rec.Digest, dk)
	if err != nil {
		return nil, blobErr(err)
	}
	return r, nil
}

// PutLifecyclePolicy validates policy (ECR's rules and messages) and sets
// it as repo's lifecycle policy. An invalid policy fails with an error
// wrapping ErrInvalidArgument and a *gc.PolicyError.
func (e *Engine) PutLifecyclePolicy(ctx context.Context, repo, policy string) error {
	if _, err := gc.ParsePolicy(policy); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return e.updateSettings(repo, func(s *RepositorySettings) error {
		s.LifecyclePolicy = policy
		return nil
	})
}

// GetLifecyclePolicy returns repo's lifecycle policy text, or
// ErrLifecyclePolicyNotFound.
func (e *Engine) GetLifecyclePolicy(ctx context.Context, repo string) (string, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return "", err
	}
	r, err := e.loadRepo(repo)
	if err != nil {
		return "", err
	}
	if r.LifecyclePolicy == "" {
		return "", fmt.Errorf("%w: %s", ErrLifecyclePolicyNotFound, repo)
	}
	return r.LifecyclePolicy, nil
}

// DeleteLifecyclePolicy removes repo's lifecycle policy and returns it.
func (e *Engine) DeleteLifecyclePolicy(ctx context.Context, repo string) (string, error) {
	var old string
	err := e.updateSettings(repo, func(s *RepositorySettings) error {
		if s.LifecyclePolicy == "" {
			return fmt.Errorf("%w: %s", ErrLifecyclePolicyNotFound, repo)
		}
		old, s.LifecyclePolicy = s.LifecyclePolicy, ""
		return nil
	})
	return old, err
}

// updateSettings changes a repository's settings under its lock (as
// SetTagMutability does).
func (e *Engine) updateSettings(repo string, change func(*RepositorySettings) error) error {
	if err := ValidateRepositoryName(repo); err != nil {
		return err
	}
	unlock := e.repoLocks.lock(repo)
	defer unlock()
	r, err := e.loadRepo(repo)
	if err != nil {
		return err
	}
	if err := change(&r.RepositorySettings); err != nil {
		return err
	}
	if err := validateSettings(r.RepositorySettings); err != nil {
		return err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := e.putRepo(b, &r.Repository); err != nil {
		return storageErr(err)
	}
	defer e.policies.Delete(repo)
	return storageErr(b.Commit(true))
}

// lifecyclePolicy returns the policy to evaluate for repo: override when
// not empty, else the stored one.
func (e *Engine) lifecyclePolicy(repo, override string) (*gc.Policy, error) {
	text := override
	if text == "" {
		var err error
		if text, err = e.GetLifecyclePolicy(context.Background(), repo); err != nil {
			return nil, err
		}
	} else if _, err := e.loadRepo(repo); err != nil {
		return nil, err
	}
	p, err := gc.ParsePolicy(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return p, nil
}

// lifecyclePlan is the one function preview and apply share: the images
// the policy expires now and every manifest that goes with them.
func (e *Engine) lifecyclePlan(repo string, p *gc.Policy, now time.Time) ([]gc.Expiry, []digest.Digest, error) {
	g, err := gc.LoadGraph(e.db, repo)
	if err != nil {
		return nil, nil, storageErr(err)
	}
	exp := p.Evaluate(g.Images(), now)
	ds := make([]digest.Digest, len(exp))
	for i, x := range exp {
		ds[i] = x.Digest
	}
	return exp, g.Closure(ds), nil
}

// LifecyclePreview returns the images repo's lifecycle policy (or
// policyOverride, when not empty) would expire now, oldest push first,
// with the rule expiring each. It changes nothing.
func (e *Engine) LifecyclePreview(ctx context.Context, repo, policyOverride string) ([]gc.Expiry, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, err
	}
	p, err := e.lifecyclePolicy(repo, policyOverride)
	if err != nil {
		return nil, err
	}
	exp, _, err := e.lifecyclePlan(repo, p, time.Now())
	return exp, err
}

// LifecycleApply expires what LifecyclePreview lists, computed by the same
// function under the repository's lock: each expired image's manifest and
// tags, its referrers, and its index children that nothing else in the
// repository references, in one synced batch. It returns the expired
// images. Their blobs go at the next collection.
func (e *Engine) LifecycleApply(ctx context.Context, repo, policyOverride string) ([]gc.Expiry, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, err
	}
	p, err := e.lifecyclePolicy(repo, policyOverride)
	if err != nil {
		return nil, err
	}
	unlock := e.repoLocks.lock(repo)
	defer unlock()
	exp, gone, err := e.lifecyclePlan(repo, p, time.Now())
	if err != nil || len(gone) == 0 {
		return exp, err
	}
	b := e.db.NewBatch()
	defer b.Close()
	for _, d := range gone {
		m, err := e.db.ManifestMeta(repo, d)
		if err != nil {
			return nil, storageErr(err)
		}
		if m.Subject != "" {
			if err := b.DeleteReferrer(repo, m.Subject, d); err != nil {
				return nil, storageErr(err)
			}
		}
		if err := b.DeleteManifest(repo, d); err != nil {
			return nil, storageErr(err)
		}
	}
	if err := b.Commit(true); err != nil {
		return nil, storageErr(err)
	}
	perRule := map[int]int{}
	e.gcs.statsMu.Lock()
	if e.gcs.stats.ImagesExpired == nil {
		e.gcs.stats.ImagesExpired = map[int]int64{}
	}
	for _, x := range exp {
		perRule[x.RulePriority]++
		e.gcs.stats.ImagesExpired[x.RulePriority]++
	}
	e.gcs.statsMu.Unlock()
	e.log.Info("lifecycle applied", "repository", repo, "images", len(exp), "manifests", len(gone), "perRule", perRule)
	return exp, nil
}

// notePull records that manifest d of repo was pulled now; the time
// reaches the index at the next flush (every few seconds, unsynced: a
// crash may lose the last seconds of pull times, which only makes
// sinceImagePulled rules see an older pull).
func (e *Engine) notePull(repo string, d digest.Digest) {
	now := time.Now().UTC()
	e.gcs.pullMu.Lock()
	if e.gcs.pulls == nil {
		e.gcs.pulls = map[pullKey]time.Time{}
	}
	e.gcs.pulls[pullKey{repo, d}] = now
	e.gcs.pullMu.Unlock()
}

// flushPulls writes the recorded pull times into the manifest records.
func (e *Engine) flushPulls() {
	e.gcs.pullMu.Lock()
	pulls := e.gcs.pulls
	e.gcs.pulls = nil
	e.gcs.pullMu.Unlock()
	for k, t := range pulls {
		if err := e.writePull(k, t); err != nil {
			e.log.Debug("recording pull time", "repository", k.repo, "digest", k.d, "err", err)
		}
	}
}

func (e *Engine) writePull(k pullKey, t time.Time) error {
	unlock := e.repoLocks.lock(k.repo)
	defer unlock()
	m, err := e.db.Manifest(k.repo, k.d)
	if err != nil {
		return err // deleted meanwhile: nothing to record
	}
	if !m.LastPulledAt.Before(t) {
		return nil
	}
	m.LastPulledAt = t
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutManifest(m); err != nil {
		return err
	}
	return b.Commit(false)
}

// startGC starts the background loops: pull-time flushing always, and the
// gc and lifecycle schedulers when their intervals are set.
func (e *Engine) startGC() {
	ctx, cancel := context.WithCancel(context.Background())
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		<-e.stop
		cancel()
	}()
	e.every(pullFlushInterval, e.flushPulls, e.flushPulls)
	if e.opts.GCInterval > 0 {
		e.every(e.opts.GCInterval, func() {
			if _, err := e.CollectGarbage(ctx, gc.Options{Grace: e.opts.GCGrace}); err != nil && !errors.Is(err, gc.ErrRunning) && ctx.Err() == nil {
				e.log.Warn("scheduled gc failed", "err", err)
			}
		}, nil)
	}
	if e.opts.LifecycleInterval > 0 {
		e.every(e.opts.LifecycleInterval, func() { e.applyAllLifecycles(ctx) }, nil)
	}
}

// every runs fn every d until the engine stops, then final once.
func (e *Engine) every(d time.Duration, fn, final func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-e.stop:
				if final != nil {
					final()
				}
				return
			case <-t.C:
				fn()
			}
		}
	}()
}

// applyAllLifecycles applies the policy of every repository that has one.
func (e *Engine) applyAllLifecycles(ctx context.Context) {
	names, err := e.db.ListRepositories("", 0)
	if err != nil {
		e.log.Warn("scheduled lifecycle: listing repositories", "err", err)
		return
	}
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		r, err := e.loadRepo(name)
		if err != nil || r.LifecyclePolicy == "" {
			continue
		}
		if _, err := e.LifecycleApply(ctx, name, ""); err != nil {
			e.log.Warn("scheduled lifecycle failed", "repository", name, "err", err)
		}
	}
}
