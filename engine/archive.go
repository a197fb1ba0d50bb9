package engine

// The archive storage class (ECR's ARCHIVE): archiving and restoring
// images, and what an image's status means for pulls. The blobs move
// between the tiers in the background (tiers.go); docs/archive.md is the
// design.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine/internal/events"
	"github.com/berthstore/berth/gc"
	"github.com/berthstore/berth/index"
)

// ImageStatus is an image's storage status, as ECR names it (imageStatus).
type ImageStatus string

// The image statuses.
const (
	// ImageActive: the image is in the standard storage class and pulls.
	ImageActive ImageStatus = "ACTIVE"
	// ImageArchived: the image is in the archive storage class: it is
	// listed and described but does not pull.
	ImageArchived ImageStatus = "ARCHIVED"
	// ImageActivating: the image is being restored from the archive; it
	// pulls once its status is ImageActive.
	ImageActivating ImageStatus = "ACTIVATING"
)

// imageStatusOf is the engine's name of an index status.
func imageStatusOf(s index.ImageStatus) ImageStatus {
	switch s {
	case index.StatusArchived:
		return ImageArchived
	case index.StatusActivating:
		return ImageActivating
	}
	return ImageActive
}

// StorageClass is the storage class an image is moved to (ECR's
// targetStorageClass).
type StorageClass string

// The storage classes.
const (
	// StorageStandard is the standard class: the hot tier.
	StorageStandard StorageClass = "STANDARD"
	// StorageArchive is the archive class: blobs no active image needs are
	// recompressed into the archive directory.
	StorageArchive StorageClass = "ARCHIVE"
)

// Errors of the archive storage class.
var (
	// ErrImageArchived: the manifest is archived or being restored; it
	// does not pull (MANIFEST_UNKNOWN, HTTP 404, as ECR answers a pull of
	// an archived image). It wraps ErrManifestUnknown.
	ErrImageArchived = fmt.Errorf("%w: the image is archived", ErrManifestUnknown)
	// ErrBlobArchived: the blob is in the archive tier, which no client
	// reads (BLOB_UNKNOWN, HTTP 404). It wraps ErrBlobUnknown.
	ErrBlobArchived = fmt.Errorf("%w: the blob is archived", ErrBlobUnknown)
	// ErrStorageClassUpdate: the image cannot move to that storage class
	// now (already there, being restored, or listed by an active index;
	// ECR's ImageStorageClassUpdateNotSupportedException).
	ErrStorageClassUpdate = errors.New("engine: the requested image storage class update is not supported")
)

// archivedErr is the error a pull of archived manifest m gets.
func archivedErr(m *index.Manifest) error {
	if m.Status == index.StatusActivating {
		return fmt.Errorf("%w: the image with digest '%s' in the repository '%s' is being restored from the archive (imageStatus ACTIVATING) and can be pulled when its restore completes",
			ErrImageArchived, m.Digest, m.Repo)
	}
	return fmt.Errorf("%w: the image with digest '%s' in the repository '%s' is archived (imageStatus ARCHIVED); restore it with UpdateImageStorageClass (targetStorageClass STANDARD) to pull it",
		ErrImageArchived, m.Digest, m.Repo)
}

// StorageClassUpdate is what UpdateImageStorageClass did.
type StorageClassUpdate struct {
	// Digest is the image's manifest digest.
	Digest digest.Digest
	// Status is the image's status after the call: ImageArchived after an
	// archive, ImageActivating after a restore (ImageActive follows once
	// its blobs are back in the hot tier).
	Status ImageStatus
}

// UpdateImageStorageClass moves the image reference names (a tag or a
// digest) to storage class to, as ECR's UpdateImageStorageClass does.
//
// StorageArchive archives it at once: it is listed and described as
// ARCHIVED, and pulls of it fail with ErrImageArchived; its referrers and
// the untagged children no active index lists are archived with it; its
// blobs that no active image needs move to the archive tier in the
// background (a durable job). An image listed by an active index cannot
// be archived on its own.
//
// StorageStandard restores an archived image: it is ACTIVATING until
// its blobs (and its archived children's and referrers') are back in the
// hot tier, in the background (a durable job), then ACTIVE. Restoring an
// image being restored answers ACTIVATING and changes nothing.
//
// An image already in the class asked for fails with
// ErrStorageClassUpdate; an unknown image with ErrManifestUnknown.
func (e *Engine) UpdateImageStorageClass(ctx context.Context, repo, reference string, to StorageClass) (StorageClassUpdate, error) {
	if err := e.checkOpen(); err != nil {
		return StorageClassUpdate{}, err
	}
	if err := ValidateRepositoryName(repo); err != nil {
		return StorageClassUpdate{}, err
	}
	if to != StorageArchive && to != StorageStandard {
		return StorageClassUpdate{}, fmt.Errorf("%w: storage class %q (want %s or %s)", ErrInvalidArgument, to, StorageStandard, StorageArchive)
	}
	unlock := e.repoLocks.Lock(repo)
	defer unlock()
	if _, err := e.loadRepo(repo); err != nil {
		return StorageClassUpdate{}, err
	}
	d, err := e.resolve(ctx, repo, reference)
	if err != nil {
		return StorageClassUpdate{}, err
	}
	g, err := gc.LoadGraph(e.db, repo)
	if err != nil {
		return StorageClassUpdate{}, storageErr(err)
	}
	n := g.Nodes[d]
	if n == nil {
		return StorageClassUpdate{}, e.unknownManifest(repo, reference)
	}
	now := e.now()
	b := e.db.NewBatch()
	defer b.Close()
	evq := e.events(b)
	var out StorageClassUpdate
	if to == StorageArchive {
		switch n.Status {
		case index.StatusArchived:
			return StorageClassUpdate{}, fmt.Errorf("%w: the image with digest '%s' is already archived", ErrStorageClassUpdate, d)
		case index.StatusActivating:
			return StorageClassUpdate{}, fmt.Errorf("%w: the image with digest '%s' is being restored from the archive; archive it once it is active", ErrStorageClassUpdate, d)
		}
		for _, p := range g.ListedBy(d) {
			if g.Nodes[p].Status != index.StatusArchived {
				return StorageClassUpdate{}, fmt.Errorf("%w: the image with digest '%s' is referenced by the manifest list '%s'; archive the manifest list instead",
					ErrStorageClassUpdate, d, p)
			}
		}
		if err := e.archiveImages(b, evq, g, repo, []digest.Digest{d}, now, ""); err != nil {
			return StorageClassUpdate{}, err
		}
		out = StorageClassUpdate{Digest: d, Status: ImageArchived}
	} else {
		switch n.Status {
		case index.StatusActive:
			return StorageClassUpdate{}, fmt.Errorf("%w: the image with digest '%s' is not archived", ErrStorageClassUpdate, d)
		case index.StatusActivating:
			return StorageClassUpdate{Digest: d, Status: ImageActivating}, nil
		}
		if err := e.restoreImage(b, g, repo, d, now); err != nil {
			return StorageClassUpdate{}, err
		}
		out = StorageClassUpdate{Digest: d, Status: ImageActivating}
	}
	if err := b.Commit(true); err != nil {
		return StorageClassUpdate{}, storageErr(err)
	}
	evq.committed()
	e.wakeTiers()
	e.log.Info("image storage class updated", "repository", repo, "digest", d, "status", out.Status)
	return out, nil
}

// archiveImages archives images of repo (graph g, read under the
// repository's lock) in batch b: each image's archive closure is marked
// ARCHIVED at now and gets a tier job that moves its blobs, and each
// image archived gets its ECR Image Action UPDATE_STORAGE_CLASS events
// (target ARCHIVE, one per tag) in evq, with cause ("" for a request,
// events.CauseLifecycle for a rule's transition). g is updated, so that
// images archived earlier in the call count as archived parents.
func (e *Engine) archiveImages(b *index.Batch, evq *eventQueue, g *gc.Graph, repo string, images []digest.Digest, now time.Time, cause string) error {
	for _, d := range images {
		ds := g.ArchiveClosure([]digest.Digest{d})
		if len(ds) == 0 {
			continue
		}
		if err := e.storageClassEvents(evq, repo, d, events.StorageClassArchive, time.Time{}, cause); err != nil {
			return err
		}
		for _, md := range ds {
			m, err := e.db.Manifest(repo, md)
			if err != nil {
				return storageErr(err)
			}
			m.Status, m.LastArchivedAt = index.StatusArchived, now
			if err := b.PutManifest(m); err != nil {
				return storageErr(err)
			}
			g.Nodes[md].Status = index.StatusArchived
		}
		job := &index.TierJob{Repo: repo, Digest: d, Kind: index.JobArchive, Manifests: ds, CreatedAt: now}
		if err := b.PutTierJob(job); err != nil {
			return storageErr(err)
		}
	}
	return nil
}

// storageClassEvents queues in evq the ECR Image Action
// UPDATE_STORAGE_CLASS events of image d of repo moved to class target
// (events.StorageClassArchive or events.StorageClassStandard), one per
// tag or one without a tag; activated is when a restored image became
// active (zero for an archive).
func (e *Engine) storageClassEvents(evq *eventQueue, repo string, d digest.Digest, target string, activated time.Time, cause string) error {
	m, err := e.db.ManifestMeta(repo, d)
	if err != nil {
		return storageErr(err)
	}
	tags, err := e.db.TagsOf(repo, d)
	if err != nil {
		return storageErr(err)
	}
	ia := events.ImageAction{
		Result: events.ResultSuccess, RepositoryName: repo, ImageDigest: string(d), ActionType: events.ActionUpdateStorageClass,
		TargetStorageClass: target, ManifestMediaType: m.MediaType, ArtifactMediaType: m.ArtifactType,
	}
	if !activated.IsZero() {
		ia.LastActivatedAt = activated.UTC().Format(time.RFC3339Nano)
	}
	if len(tags) == 0 {
		return evq.add(ia, cause)
	}
	for _, t := range tags {
		ia.ImageTag = t
		if err := evq.add(ia, cause); err != nil {
			return err
		}
	}
	return nil
}

// restoreImage marks image d of repo and its restore closure ACTIVATING
// in batch b, with the tier job that brings their blobs back.
func (e *Engine) restoreImage(b *index.Batch, g *gc.Graph, repo string, d digest.Digest, now time.Time) error {
	ds := g.RestoreClosure([]digest.Digest{d})
	for _, md := range ds {
		if g.Nodes[md].Status != index.StatusArchived {
			continue // activating already: its own job brings it back
		}
		m, err := e.db.Manifest(repo, md)
		if err != nil {
			return storageErr(err)
		}
		m.Status = index.StatusActivating
		if err := b.PutManifest(m); err != nil {
			return storageErr(err)
		}
		g.Nodes[md].Status = index.StatusActivating
	}
	job := &index.TierJob{Repo: repo, Digest: d, Kind: index.JobRestore, Manifests: ds, CreatedAt: now}
	return storageErr(b.PutTierJob(job))
}
