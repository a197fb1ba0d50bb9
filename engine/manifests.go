package engine

// Manifests: pushing, reading and deleting them. What a manifest may hold
// is checked by engine/internal/manifest.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine/internal/events"
	"github.com/berthstore/berth/engine/internal/manifest"
	"github.com/berthstore/berth/engine/internal/record"
	"github.com/berthstore/berth/index"
)

// Descriptor identifies stored content: its digest, size and, for
// manifests, its media type.
type Descriptor struct {
	MediaType string        `json:"mediaType,omitempty"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

// Manifest is a stored manifest with its exact bytes.
type Manifest struct {
	Descriptor
	// Payload is the manifest exactly as pushed.
	Payload []byte
	// ArtifactType is the manifest's artifactType, or its config media
	// type for an image manifest with no artifactType.
	ArtifactType string
	// Subject is the digest of the manifest this one refers to (OCI 1.1), or "".
	Subject digest.Digest
	// Annotations are the manifest's annotations.
	Annotations map[string]string
	// PushedAt is when the manifest was first stored in the repository.
	PushedAt time.Time
	// LastPulledAt is when it was last pulled (zero if never).
	LastPulledAt time.Time
}

// PutManifestResult reports what PutManifest stored.
type PutManifestResult struct {
	Descriptor
	// Subject is the manifest's subject digest, if it had one; registryd
	// answers it as OCI-Subject.
	Subject digest.Digest
	// Created is true when the repository was created by this push.
	Created bool
}

// PutManifest validates and stores a manifest under reference (a tag, or
// the manifest's own digest) and under every extra tag. Every blob an
// image manifest references must be linked to the repository, and every
// child of an index present in it (unless Options.AllowSparse).
// Moving a tag the repository's mutability setting protects fails with
// ErrTagImmutable. The repository is created on push if a template allows.
func (e *Engine) PutManifest(ctx context.Context, repo, reference, mediaType string, payload []byte, tags ...string) (PutManifestResult, error) {
	return e.putManifest(ctx, repo, reference, mediaType, payload, false, tags)
}

// PutCachedManifest is PutManifest for a pull-through cache fill: it
// writes only into a repository that a pull-through cache created
// (creating it, as EnsureCacheRepository does, when it does not exist),
// checked under the repository's lock, and fails with
// ErrNotPullThroughCache for any other: a fill never moves a tag of a
// repository that was pushed to.
func (e *Engine) PutCachedManifest(ctx context.Context, repo, reference, mediaType string, payload []byte) (PutManifestResult, error) {
	return e.putManifest(ctx, repo, reference, mediaType, payload, true, nil)
}

func (e *Engine) putManifest(ctx context.Context, repo, reference, mediaType string, payload []byte, cacheFill bool, tags []string) (PutManifestResult, error) {
	db := e.dbFor(ctx)
	defer e.pushes.begin()()
	if err := e.checkOpen(); err != nil {
		return PutManifestResult{}, err
	}
	if err := ValidateRepositoryName(repo); err != nil {
		return PutManifestResult{}, err
	}
	tag, refDigest, err := ParseReference(reference)
	if err != nil {
		return PutManifestResult{}, err
	}
	if tag != "" {
		tags = append([]string{tag}, tags...)
	}
	for _, t := range tags {
		if err := ValidateTag(t); err != nil {
			return PutManifestResult{}, err
		}
	}
	if int64(len(payload)) > e.opts.MaxManifestSize {
		return PutManifestResult{}, fmt.Errorf("%w: manifest of %d bytes, limit %d", ErrTooLarge, len(payload), e.opts.MaxManifestSize)
	}
	d := digest.SHA256.FromBytes(payload)
	if refDigest != "" {
		d = refDigest.Algorithm().FromBytes(payload)
		if d != refDigest {
			return PutManifestResult{}, fmt.Errorf("%w: manifest is %s, reference says %s", ErrDigestInvalid, d, refDigest)
		}
	}
	pm, err := manifest.Parse(mediaType, payload, e.opts.MaxManifestSize)
	if err != nil {
		return PutManifestResult{}, err
	}
	var (
		r       *repoState
		created bool
	)
	if cacheFill {
		r, _, err = e.ensureCacheRepo(ctx, repo)
	} else if r, created, err = e.ensureRepo(ctx, repo); err == nil {
		err = refusePush(r)
	}
	if err != nil {
		return PutManifestResult{}, err
	}
	// The repository's lock orders this push against others (tag
	// immutability, tag history); the write barrier keeps a collection's
	// mark from missing it. Both are held until the batch is applied, not
	// until it is durable: the fsync comes after (see the end), so that
	// pushes into one repository share fsyncs as pushes into several do.
	e.putsInFlight.Add(1)
	defer e.putsInFlight.Add(-1)
	unlock := e.repoLocks.Lock(repo)
	leave := e.gcEnter() // write barrier: see engine/gc.go and docs/gc.md
	locked := true
	unlockBlobs := func() {}
	release := func() {
		if locked {
			locked = false
			unlockBlobs()
			leave()
			unlock()
		}
	}
	defer release()
	if cacheFill {
		// Deleted and pushed to since ensureCacheRepo: not the cache's.
		cur, err := e.loadRepo(repo)
		if err != nil {
			return PutManifestResult{}, err
		}
		if cur.CreatedByCacheRule == "" {
			return PutManifestResult{}, fmt.Errorf("%w: %s", ErrNotPullThroughCache, repo)
		}
		r = cur
	}
	for _, bd := range pm.Blobs {
		e.shade(bd.Digest)
	}
	if e.coordinated() && len(pm.Blobs) > 0 {
		// The write barrier across replicas: the blobs' locks from their
		// check to the commit, which marks them (putShades), so that a
		// sweep on another replica either sees the mark or has removed
		// the blob before the check below.
		keys := make([]string, len(pm.Blobs))
		for i, bd := range pm.Blobs {
			keys[i] = digestKey(bd.Digest)
		}
		unlockBlobs = e.digestLocks.LockMany(keys)
	}

	rec := &index.Manifest{
		Repo: repo, Digest: d, MediaType: pm.MediaType, ArtifactType: pm.ArtifactType,
		Subject: pm.Subject, Annotations: pm.Annotations, Payload: payload, PushedAt: e.now(),
	}
	for i, bd := range pm.Blobs {
		ok, err := db.Linked(repo, bd.Digest)
		if err != nil {
			return PutManifestResult{}, storageErr(err)
		}
		sparseOK := e.opts.AllowSparse && (pm.Config == nil || i > 0 || bd.Digest != pm.Config.Digest)
		if !ok && !sparseOK {
			return PutManifestResult{}, &UnknownReferenceError{Digest: bd.Digest}
		}
		rec.Blobs = append(rec.Blobs, bd.Digest)
	}
	b := db.NewBatch()
	defer b.Close()
	// A push of an archived image restores it at once, as ECR does: the
	// manifest is active again (and so are the archived children an index
	// lists), and its blobs come back to the hot tier before the push
	// returns (hot, below).
	hot := slices.Clone(rec.Blobs)
	now := e.now()
	for _, c := range pm.Children {
		if !e.opts.AllowSparse {
			ok, err := db.HasManifest(repo, c.Digest)
			if err != nil {
				return PutManifestResult{}, storageErr(err)
			}
			if !ok {
				return PutManifestResult{}, &UnknownReferenceError{Digest: c.Digest, Child: true}
			}
		}
		rec.Children = append(rec.Children, c.Digest)
		cm, err := db.Manifest(repo, c.Digest)
		if err == nil && cm.Status != index.StatusActive && c.Digest != d {
			cm.Status, cm.LastActivatedAt = index.StatusActive, now
			if err := b.PutManifest(cm); err != nil {
				return PutManifestResult{}, storageErr(err)
			}
			hot = append(hot, cm.Blobs...)
		} else if err != nil && !errors.Is(err, index.ErrNotFound) {
			return PutManifestResult{}, storageErr(err)
		}
	}
	old, err := db.ManifestMeta(repo, d)
	switch {
	case err == nil:
		rec.PushedAt, rec.LastPulledAt = old.PushedAt, old.LastPulledAt
		rec.LastArchivedAt, rec.LastActivatedAt = old.LastArchivedAt, old.LastActivatedAt
		if old.Status != index.StatusActive {
			rec.LastActivatedAt = now
		}
	case errors.Is(err, index.ErrNotFound):
	default:
		return PutManifestResult{}, storageErr(err)
	}
	if err := b.PutManifest(rec); err != nil {
		return PutManifestResult{}, storageErr(err)
	}
	for _, t := range tags {
		prev, err := db.Tag(repo, t)
		if err != nil && !errors.Is(err, index.ErrNotFound) {
			return PutManifestResult{}, storageErr(err)
		}
		if prev == d {
			continue // the same tag to the same digest is no overwrite
		}
		if prev != "" && tagImmutable(r.RepositorySettings, t) {
			return PutManifestResult{}, fmt.Errorf("%w: %w: The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the repository is immutable.",
				ErrTagImmutable, ErrTagInvalid, t, repo)
		}
		if err := b.PutTag(repo, t, d, prev); err != nil {
			return PutManifestResult{}, storageErr(err)
		}
	}
	if pm.Subject != "" {
		ref := &index.Referrer{Subject: pm.Subject, Digest: d, MediaType: pm.MediaType, ArtifactType: pm.ArtifactType, Size: int64(len(payload)), Annotations: pm.Annotations}
		if err := b.PutReferrer(repo, ref); err != nil {
			return PutManifestResult{}, storageErr(err)
		}
	}
	// The push's events, in its batch: an acknowledged push has them.
	evq := e.events(b)
	src, replicated := replicationSource(ctx)
	switch {
	case cacheFill:
		err = evq.pullThroughSuccess(repo, d, tags)
	case replicated:
		err = evq.replicationActions(repo, d, tags, src)
	default:
		err = evq.imageActions(repo, events.ActionPush, d, pm.MediaType, pm.ArtifactType, tags, "")
	}
	if err != nil {
		return PutManifestResult{}, err
	}
	// Its replication, in its batch too: an acknowledged push is
	// replicated. A replicated push is not replicated further (ECR
	// replicates only what was pushed to the registry itself).
	var repl *replicationPlan
	if !cacheFill && !replicated {
		if repl, err = e.queueReplication(b, repo, d, tags); err != nil {
			return PutManifestResult{}, err
		}
	}
	scanQueued := false
	if old == nil && scannable(pm) {
		// Scan on push: the job is queued in the push's own batch (one
		// key more, no fsync more); the scan runs from the queue.
		on, err := e.scansOnPush(repo, r.ScanOnPush)
		if err != nil {
			return PutManifestResult{}, err
		}
		if on {
			if err := e.putScanJob(b, repo, d, "scan", record.Scan{}); err != nil {
				return PutManifestResult{}, err
			}
			scanQueued = true
		}
	}
	if err := e.putShades(b, rec.Blobs...); err != nil {
		return PutManifestResult{}, err
	}
	if e.putsInFlight.Load() == 1 {
		// Alone: nothing to share an fsync with, so one synced commit.
		if err := b.Commit(true); err != nil {
			return PutManifestResult{}, storageErr(err)
		}
	} else {
		if err := b.Commit(false); err != nil {
			return PutManifestResult{}, storageErr(err)
		}
		release()
		// Durable before it is acknowledged: a crash before this fsync
		// loses a push nobody was told succeeded (readers may have seen it).
		if err := db.SyncWAL(); err != nil {
			return PutManifestResult{}, storageErr(err)
		}
	}
	release()
	evq.committed()
	e.replicationQueued(repo, repl)
	// Blobs of the manifest in the archive tier (it was archived, or it
	// shares a layer with an archived image) come back now, under each
	// blob's lock: the archive tier's worker, which moves a blob only
	// when no active manifest needs it, checks under that lock too, so a
	// blob is never left in the archive under an active manifest.
	for _, bd := range hot {
		if err := e.ensureHot(ctx, bd); err != nil {
			return PutManifestResult{}, fmt.Errorf("restoring blob %s from the archive tier: %w", bd, err)
		}
	}
	e.queuePrepare(repo, d)
	if scanQueued {
		e.wakeScanner()
	}
	return PutManifestResult{
		Descriptor: Descriptor{MediaType: pm.MediaType, Digest: d, Size: int64(len(payload))},
		Subject:    pm.Subject, Created: created,
	}, nil
}

// resolve turns a reference into a digest.
func (e *Engine) resolve(ctx context.Context, repo, reference string) (digest.Digest, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return "", err
	}
	tag, d, err := ParseReference(reference)
	if err != nil {
		return "", err
	}
	if tag == "" {
		return d, nil
	}
	d, err = e.dbFor(ctx).Tag(repo, tag)
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return "", e.unknownManifest(repo, reference)
		}
		return "", storageErr(err)
	}
	return d, nil
}

// unknownManifest is ErrNameUnknown when repo does not exist, else ErrManifestUnknown.
func (e *Engine) unknownManifest(repo, reference string) error {
	if _, err := e.cachedRepoState(repo); err != nil {
		return err
	}
	return fmt.Errorf("%w: %s:%s", ErrManifestUnknown, repo, reference)
}

func (e *Engine) manifestRecord(ctx context.Context, repo, reference string, payload bool) (*index.Manifest, error) {
	if h := e.shared.heads; h != nil {
		return e.sharedManifestRecord(ctx, h, repo, reference, payload)
	}
	d, err := e.resolve(ctx, repo, reference)
	if err != nil {
		return nil, err
	}
	var m *index.Manifest
	if payload {
		m, err = e.dbFor(ctx).Manifest(repo, d)
	} else {
		m, err = e.dbFor(ctx).ManifestMeta(repo, d)
	}
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return nil, e.unknownManifest(repo, reference)
		}
		return nil, storageErr(err)
	}
	if m.Status != index.StatusActive {
		return nil, archivedErr(m)
	}
	return m, nil
}

// sharedManifestRecord is manifestRecord on a shared index: the tag and,
// without payload, the manifest's metadata come from the head cache
// (sharedcaches.go).
func (e *Engine) sharedManifestRecord(ctx context.Context, h *headCache, repo, reference string, payload bool) (*index.Manifest, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, err
	}
	tag, d, err := ParseReference(reference)
	if err != nil {
		return nil, err
	}
	rh := h.repo(repo)
	if tag != "" {
		if d, err = e.cachedTag(ctx, rh, repo, tag); err != nil {
			if errors.Is(err, index.ErrNotFound) {
				return nil, e.unknownManifest(repo, reference)
			}
			return nil, storageErr(err)
		}
	}
	var m *index.Manifest
	if payload {
		m, err = e.dbFor(ctx).Manifest(repo, d)
	} else {
		m, err = e.cachedManifestMeta(ctx, rh, repo, d)
	}
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return nil, e.unknownManifest(repo, reference)
		}
		return nil, storageErr(err)
	}
	if m.Status != index.StatusActive {
		return nil, archivedErr(m)
	}
	return m, nil
}

// GetManifest returns the manifest that reference (tag or digest) names.
// An archived image (or one being restored) does not pull: it fails with
// ErrImageArchived, which wraps ErrManifestUnknown.
func (e *Engine) GetManifest(ctx context.Context, repo, reference string) (*Manifest, error) {
	m, err := e.manifestRecord(ctx, repo, reference, true)
	if err != nil {
		return nil, err
	}
	e.notePull(repo, m.Digest)
	return &Manifest{
		Descriptor:   Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: int64(len(m.Payload))},
		Payload:      m.Payload,
		ArtifactType: m.ArtifactType, Subject: m.Subject, Annotations: m.Annotations,
		PushedAt: m.PushedAt, LastPulledAt: m.LastPulledAt,
	}, nil
}

// StatManifest returns the descriptor of the manifest reference names (a
// HEAD request): one tag lookup and one metadata read. An archived image
// fails as GetManifest says.
func (e *Engine) StatManifest(ctx context.Context, repo, reference string) (Descriptor, error) {
	m, err := e.manifestRecord(ctx, repo, reference, false)
	if err != nil {
		return Descriptor{}, err
	}
	return Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.PayloadSize}, nil
}

// DeleteManifest deletes manifest d, every tag that points to it and its
// entry in its subject's referrers.
func (e *Engine) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	if err := ValidateRepositoryName(repo); err != nil {
		return err
	}
	if _, err := ParseDigest(string(d)); err != nil {
		return err
	}
	unlock := e.repoLocks.Lock(repo)
	defer unlock()
	return e.deleteManifestLocked(repo, d)
}

// deleteManifestLocked is DeleteManifest under the repository's lock.
func (e *Engine) deleteManifestLocked(repo string, d digest.Digest) error {
	m, err := e.db.ManifestMeta(repo, d)
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return e.unknownManifest(repo, string(d))
		}
		return storageErr(err)
	}
	tags, err := e.db.TagsOf(repo, d)
	if err != nil {
		return storageErr(err)
	}
	b := e.db.NewBatch()
	defer b.Close()
	for _, t := range tags {
		if err := b.DeleteTag(repo, t, d); err != nil {
			return storageErr(err)
		}
	}
	if m.Subject != "" {
		if err := b.DeleteReferrer(repo, m.Subject, d); err != nil {
			return storageErr(err)
		}
	}
	if err := b.DeleteManifest(repo, d); err != nil {
		return storageErr(err)
	}
	evq := e.events(b)
	if err := evq.imageActions(repo, events.ActionDelete, d, m.MediaType, m.ArtifactType, tags, ""); err != nil {
		return err
	}
	if err := b.Commit(true); err != nil {
		return storageErr(err)
	}
	evq.committed()
	return nil
}

// descriptorOf is the engine's Descriptor of a descriptor manifest.Parse
// checked.
func descriptorOf(d manifest.Descriptor) Descriptor {
	return Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
}
