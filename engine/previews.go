package engine

// Lifecycle policy previews as ECR keeps them (StartLifecyclePolicyPreview,
// GetLifecyclePolicyPreview): one a repository, stored in the index (a
// header and one key per image it lists; record.Preview), evaluated in the
// background (IN_PROGRESS, then COMPLETE or FAILED), kept for
// PreviewRetention after they finish (then EXPIRED) and forgotten after
// PreviewForget. They survive a restart; one a restart cut short is
// evaluated again when it is next read. docs/gc.md, "Previews".

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine/internal/record"
	"github.com/berthstore/berth/gc"
	"github.com/berthstore/berth/index"
)

// The statuses of a preview (ECR's LifecyclePolicyPreviewStatus).
const (
	PreviewInProgress = "IN_PROGRESS"
	PreviewComplete   = "COMPLETE"
	PreviewExpired    = "EXPIRED"
	PreviewFailed     = "FAILED"
)

// Retention of previews, on the engine's clock.
const (
	// PreviewRetention is how long a finished preview's results are kept:
	// after it, the preview reads EXPIRED, without results, and its
	// results are deleted.
	PreviewRetention = 24 * time.Hour
	// PreviewForget is how long after it finished a preview is kept at
	// all: after it, the repository has no preview
	// (ErrLifecyclePreviewNotFound).
	PreviewForget = 7 * 24 * time.Hour
)

// previewSweepInterval is how often expired previews are swept.
const previewSweepInterval = time.Hour

// ErrLifecyclePreviewNotFound is returned for a repository without a
// lifecycle policy preview (none started, or forgotten).
var ErrLifecyclePreviewNotFound = errors.New("engine: lifecycle policy preview not found")

// ErrLifecyclePreviewInProgress is returned by StartLifecyclePolicyPreview
// while the repository's previous preview is still being evaluated.
var ErrLifecyclePreviewInProgress = errors.New("engine: the previous lifecycle policy preview has not completed")

// testHookPreview, when set (tests only), is called before a preview is
// evaluated.
var testHookPreview func(repo string)

// LifecyclePolicyPreview is a repository's stored lifecycle policy
// preview.
type LifecyclePolicyPreview struct {
	// Repository is the repository previewed; Policy the policy text.
	Repository string
	Policy     string
	// Status is PreviewInProgress, PreviewComplete, PreviewExpired or
	// PreviewFailed.
	Status string
	// StartedAt and FinishedAt bound the evaluation (FinishedAt zero
	// while it runs).
	StartedAt, FinishedAt time.Time
	// ExpiringImages is the number of images it expires, and
	// TransitioningImages the number it transitions, by target storage
	// class (COMPLETE only; ECR's summary).
	ExpiringImages      int
	TransitioningImages map[StorageClass]int
	// Error says why a FAILED preview failed.
	Error string
}

// LifecyclePreviewResult is one image a preview lists: the image, the
// rule, its action (Expiry.Action: LifecycleExpire, or
// LifecycleTransition with its target storage class) and the image's
// storage class before it (Expiry.StorageClass).
type LifecyclePreviewResult struct {
	Expiry
}

// previewState is the engine's previews in progress.
type previewState struct {
	// mu orders the writes of preview headers and results (Lock) and
	// makes a reader's header and results one version (RLock).
	mu sync.RWMutex
	// running has a done channel for each repository whose preview is
	// being evaluated in this process (guarded by runMu).
	runMu   sync.Mutex
	running map[string]chan struct{}
	// sweepMu runs this process's sweeps one at a time: a sweep asked for
	// while the periodic one runs waits for it, rather than finding the
	// replicas' lease taken (by this very process) and sweeping nothing.
	sweepMu sync.Mutex
}

// StartLifecyclePolicyPreview starts a preview of repo's lifecycle policy
// (or policyOverride, when not empty) in the background, replacing the
// repository's previous preview, and waits for it until it completes or
// ctx is done: a small repository answers COMPLETE (or FAILED), a large
// one IN_PROGRESS, and LifecyclePolicyPreview reads it later. An invalid
// policy fails at once, as PutLifecyclePolicy says; so does a repository
// without a policy when none is given (ErrLifecyclePolicyNotFound), and a
// preview still in progress (ErrLifecyclePreviewInProgress). ctx bounds
// the wait only: the evaluation goes on.
func (e *Engine) StartLifecyclePolicyPreview(ctx context.Context, repo, policyOverride string) (LifecyclePolicyPreview, error) {
	if err := e.checkOpen(); err != nil {
		return LifecyclePolicyPreview{}, err
	}
	if err := ValidateRepositoryName(repo); err != nil {
		return LifecyclePolicyPreview{}, err
	}
	text := policyOverride
	if text == "" {
		var err error
		if text, err = e.GetLifecyclePolicy(ctx, repo); err != nil {
			return LifecyclePolicyPreview{}, err
		}
	} else if _, err := e.loadRepo(repo); err != nil {
		return LifecyclePolicyPreview{}, err
	}
	if _, err := gc.ParsePolicy(text); err != nil {
		return LifecyclePolicyPreview{}, policyErr(err)
	}
	ps := &e.gcs.previews
	ps.runMu.Lock()
	if ps.running[repo] != nil {
		ps.runMu.Unlock()
		return LifecyclePolicyPreview{}, fmt.Errorf("%w: %s", ErrLifecyclePreviewInProgress, repo)
	}
	hdr := record.Preview{Policy: text, Status: PreviewInProgress, StartedAt: e.now()}
	ps.mu.Lock()
	err := e.writePreview(repo, hdr, nil, true)
	ps.mu.Unlock()
	if err != nil {
		ps.runMu.Unlock()
		return LifecyclePolicyPreview{}, err
	}
	done, ok := e.evaluatePreviewLocked(repo, hdr)
	ps.runMu.Unlock()
	if !ok {
		return LifecyclePolicyPreview{}, ErrClosed
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	return e.readPreview(repo, "", nil)
}

// LifecyclePolicyPreview returns repo's preview and calls fn with the
// images it lists (when it is COMPLETE), in digest order, starting after
// the digest after ("" for the first), until fn returns an error (io.EOF
// stops without one). Header and results are of one preview. A preview
// that a restart cut short is evaluated again (it reads IN_PROGRESS).
// Errors: ErrLifecyclePreviewNotFound, ErrNameUnknown.
func (e *Engine) LifecyclePolicyPreview(ctx context.Context, repo string, after digest.Digest, fn func(LifecyclePreviewResult) error) (LifecyclePolicyPreview, error) {
	if err := e.checkOpen(); err != nil {
		return LifecyclePolicyPreview{}, err
	}
	if err := ValidateRepositoryName(repo); err != nil {
		return LifecyclePolicyPreview{}, err
	}
	if _, err := e.loadRepo(repo); err != nil {
		return LifecyclePolicyPreview{}, err
	}
	return e.readPreview(repo, after, fn)
}

// readPreview reads repo's preview header and, with fn, its results.
func (e *Engine) readPreview(repo string, after digest.Digest, fn func(LifecyclePreviewResult) error) (LifecyclePolicyPreview, error) {
	ps := &e.gcs.previews
	ps.mu.RLock()
	hdr, v, err := e.loadPreview(repo)
	if err != nil {
		ps.mu.RUnlock()
		return LifecyclePolicyPreview{}, err
	}
	out := e.previewOf(repo, hdr)
	if out.Status == PreviewComplete && fn != nil {
		err = e.db.PreviewResults(repo, after, func(d digest.Digest, b []byte) error {
			r, err := record.DecodePreviewResult(b, v)
			if err != nil {
				return fmt.Errorf("%w: lifecycle preview result %s@%s: %v", ErrCorrupt, repo, d, err)
			}
			x := Expiry{Digest: d, Tags: r.Tags, PushedAt: r.PushedAt, LastPulledAt: r.LastPulledAt,
				Action:       LifecycleAction{Type: r.Action, TargetStorageClass: StorageClass(r.TargetStorageClass)},
				StorageClass: StorageClass(r.StorageClass), RulePriority: r.RulePriority, Description: r.Description}
			if x.StorageClass == "" {
				x.StorageClass = StorageStandard // version 1: no archive tier
			}
			return fn(LifecyclePreviewResult{Expiry: x})
		})
	}
	ps.mu.RUnlock()
	if err != nil {
		return LifecyclePolicyPreview{}, storageErr(err)
	}
	if hdr.Status == PreviewInProgress {
		// Evaluated in this process, or cut short by a restart: then
		// evaluated again now.
		ps.runMu.Lock()
		if ps.running[repo] == nil {
			e.log.Info("lifecycle preview cut short by a restart; evaluating it again", "repository", repo)
			e.evaluatePreviewLocked(repo, hdr)
		}
		ps.runMu.Unlock()
	}
	return out, nil
}

// previewOf is the preview a stored header says, as of now (EXPIRED past
// its retention).
func (e *Engine) previewOf(repo string, h record.Preview) LifecyclePolicyPreview {
	out := LifecyclePolicyPreview{Repository: repo, Policy: h.Policy, Status: h.Status, StartedAt: h.StartedAt,
		FinishedAt: h.FinishedAt, ExpiringImages: h.Expiring, Error: h.Error}
	for c, n := range h.Transitioning {
		if out.TransitioningImages == nil {
			out.TransitioningImages = map[StorageClass]int{}
		}
		out.TransitioningImages[StorageClass(c)] = n
	}
	if h.Status != PreviewInProgress && e.clock.Now().Sub(h.FinishedAt) > PreviewRetention {
		out.Status, out.ExpiringImages, out.TransitioningImages, out.Error = PreviewExpired, 0, nil, ""
	}
	return out
}

// loadPreview reads repo's preview header and its version.
func (e *Engine) loadPreview(repo string) (record.Preview, int, error) {
	b, err := e.db.Preview(repo)
	if errors.Is(err, index.ErrNotFound) {
		return record.Preview{}, 0, fmt.Errorf("%w: %s", ErrLifecyclePreviewNotFound, repo)
	}
	if err != nil {
		return record.Preview{}, 0, storageErr(err)
	}
	h, v, err := record.DecodePreview(b)
	if err != nil {
		return record.Preview{}, 0, fmt.Errorf("%w: lifecycle preview of %s: %v", ErrCorrupt, repo, err)
	}
	return h, v, nil
}

// writePreview replaces repo's preview with hdr and results, in one
// batch (previewState.mu held).
func (e *Engine) writePreview(repo string, hdr record.Preview, results []LifecyclePreviewResult, sync bool) error {
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.DeletePreviewResults(repo); err != nil {
		return storageErr(err)
	}
	for _, r := range results {
		v, err := record.EncodePreviewResult(record.PreviewResult{
			Tags: r.Tags, PushedAt: r.PushedAt, LastPulledAt: r.LastPulledAt,
			RulePriority: r.RulePriority, Description: r.Description,
			Action: r.Action.Type, TargetStorageClass: string(r.Action.TargetStorageClass), StorageClass: string(r.StorageClass),
		})
		if err != nil {
			return err
		}
		if err := b.PutPreviewResult(repo, r.Digest, v); err != nil {
			return storageErr(err)
		}
	}
	v, err := record.EncodePreview(hdr)
	if err != nil {
		return err
	}
	if err := b.PutPreview(repo, v); err != nil {
		return storageErr(err)
	}
	return storageErr(b.Commit(sync))
}

// evaluatePreviewLocked evaluates the preview hdr of repo in the
// background (previewState.runMu held) and returns the channel closed
// when it is stored; false when the engine is closed.
func (e *Engine) evaluatePreviewLocked(repo string, hdr record.Preview) (<-chan struct{}, bool) {
	ps := &e.gcs.previews
	done := make(chan struct{})
	if ps.running == nil {
		ps.running = map[string]chan struct{}{}
	}
	ps.running[repo] = done
	ok := e.goBackground(func(ctx context.Context) {
		defer func() {
			ps.runMu.Lock()
			delete(ps.running, repo)
			ps.runMu.Unlock()
			close(done)
		}()
		e.evaluatePreview(repo, hdr)
	})
	if !ok {
		delete(ps.running, repo)
	}
	return done, ok
}

// evaluatePreview evaluates preview hdr of repo and stores its outcome,
// unless the preview was replaced or deleted meanwhile.
func (e *Engine) evaluatePreview(repo string, hdr record.Preview) {
	if testHookPreview != nil {
		testHookPreview(repo)
	}
	var results []LifecyclePreviewResult
	p, err := gc.ParsePolicy(hdr.Policy)
	if err == nil {
		var pl *lifecyclePlan
		if pl, err = e.planLifecycle(repo, p, e.clock.Now()); err == nil {
			for _, x := range expiriesOf(pl.exp) {
				x.Tags = slices.Clone(x.Tags)
				slices.Sort(x.Tags)
				results = append(results, LifecyclePreviewResult{Expiry: x})
			}
		}
	}
	out := hdr
	out.FinishedAt = e.now()
	if err != nil {
		out.Status, out.Error, results = PreviewFailed, err.Error(), nil
	} else {
		out.Status = PreviewComplete
		for _, r := range results {
			if r.Action.Type != LifecycleTransition {
				out.Expiring++
				continue
			}
			if out.Transitioning == nil {
				out.Transitioning = map[string]int{}
			}
			out.Transitioning[string(r.Action.TargetStorageClass)]++
		}
	}
	// Under the repository's lock, so that a deletion of the repository
	// is either before (the preview went with it) or after (it goes).
	unlock := e.repoLocks.Lock(repo)
	defer unlock()
	ps := &e.gcs.previews
	ps.mu.Lock()
	defer ps.mu.Unlock()
	cur, _, lerr := e.loadPreview(repo)
	if lerr != nil || cur.Status != PreviewInProgress || !cur.StartedAt.Equal(hdr.StartedAt) {
		return // replaced, or deleted with its repository
	}
	if werr := e.writePreview(repo, out, results, true); werr != nil {
		e.log.Warn("lifecycle preview not stored", "repository", repo, "err", werr)
		return
	}
	e.log.Debug("lifecycle preview evaluated", "repository", repo, "status", out.Status, "expiring", out.Expiring,
		"transitioning", out.Transitioning)
}

// sweepPreviews deletes the results of the previews past PreviewRetention
// and the previews past PreviewForget.
func (e *Engine) sweepPreviews() {
	e.gcs.previews.sweepMu.Lock()
	defer e.gcs.previews.sweepMu.Unlock()
	// One replica at a time sweeps.
	_, release, err := e.tryLease(context.Background(), "previews-sweep")
	if err != nil {
		return
	}
	defer release()
	now := e.clock.Now()
	type stale struct {
		repo   string
		forget bool
	}
	var todo []stale
	err = e.db.ListPreviews(func(repo string, b []byte) error {
		h, _, err := record.DecodePreview(b)
		if err != nil || h.Status == PreviewInProgress {
			return nil
		}
		switch age := now.Sub(h.FinishedAt); {
		case age > PreviewForget:
			todo = append(todo, stale{repo, true})
		case age > PreviewRetention && (h.Expiring > 0 || len(h.Transitioning) > 0):
			todo = append(todo, stale{repo, false})
		}
		return nil
	})
	if err != nil {
		e.log.Warn("lifecycle previews not swept", "err", err)
		return
	}
	ps := &e.gcs.previews
	for _, s := range todo {
		ps.mu.Lock()
		err := e.sweepPreview(s.repo, s.forget, now)
		ps.mu.Unlock()
		if err != nil && !errors.Is(err, ErrLifecyclePreviewNotFound) {
			e.log.Warn("lifecycle preview not swept", "repository", s.repo, "err", err)
		}
	}
}

// sweepPreview forgets repo's preview, or deletes its results (keeping
// the header, which reads EXPIRED), if it is still stale (the
// previewState.mu held).
func (e *Engine) sweepPreview(repo string, forget bool, now time.Time) error {
	h, _, err := e.loadPreview(repo)
	if err != nil || h.Status == PreviewInProgress || now.Sub(h.FinishedAt) <= PreviewRetention {
		return err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if forget {
		err = b.DeletePreview(repo)
	} else {
		h.Expiring, h.Transitioning = 0, nil
		var v []byte
		if v, err = record.EncodePreview(h); err == nil {
			err = b.DeletePreviewResults(repo)
		}
		if err == nil {
			err = b.PutPreview(repo, v)
		}
	}
	if err != nil {
		return storageErr(err)
	}
	return storageErr(b.Commit(false))
}
