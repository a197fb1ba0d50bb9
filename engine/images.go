package engine

// The image listing behind ECR's ListImages and DescribeImages, and ECR's
// untagging delete (BatchDeleteImage by tag).

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine/internal/events"
	"github.com/berthstore/berth/index"
)

// ImageDetail describes one manifest of a repository, as ECR's
// DescribeImages does.
type ImageDetail struct {
	// Digest is the manifest's digest.
	Digest digest.Digest
	// MediaType is the manifest's media type.
	MediaType string
	// ArtifactType is its artifactType or config media type, if any.
	ArtifactType string
	// Subject is the manifest it refers to (OCI 1.1), if any.
	Subject digest.Digest
	// Tags are the tags pointing at it, in lexical order.
	Tags []string
	// Size is what ECR calls imageSizeInBytes: the sum of the sizes of
	// the blobs an image manifest references (config and layers, as
	// stored: compressed layers count compressed), and for an index the
	// largest of its children's (ECR's rule for manifest lists).
	Size int64
	// ManifestSize is the size of the manifest itself.
	ManifestSize int64
	// PushedAt is when it was pushed to the repository.
	PushedAt time.Time
	// LastPulledAt is when it was last pulled (zero if never).
	LastPulledAt time.Time
	// Status is the image's storage status: ImageActive, ImageArchived or
	// ImageActivating.
	Status ImageStatus
	// LastArchivedAt is when it was last archived; LastActivatedAt when
	// it was last restored from the archive (zero if never).
	LastArchivedAt, LastActivatedAt time.Time
}

// Images describes every manifest of repo (image manifests, indexes, the
// children of indexes and referrers, as ECR lists them), in digest order,
// whatever its storage status (ImageDetail.Status).
func (e *Engine) Images(ctx context.Context, repo string) ([]ImageDetail, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, err
	}
	if _, err := e.cachedRepoState(repo); err != nil {
		return nil, err
	}
	var ms []*index.Manifest
	if err := e.db.ListManifests(repo, func(m *index.Manifest) error {
		ms = append(ms, m)
		return ctx.Err()
	}); err != nil {
		return nil, storageErr(err)
	}
	byDigest := make(map[digest.Digest]*index.Manifest, len(ms))
	for _, m := range ms {
		byDigest[m.Digest] = m
	}
	id := e.newImageDescriber(repo, func(d digest.Digest) (*index.Manifest, error) { return byDigest[d], nil })
	out := make([]ImageDetail, 0, len(ms))
	for _, m := range ms {
		im, err := id.describe(m)
		if err != nil {
			return nil, err
		}
		out = append(out, im)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out, nil
}

// Image describes the manifest that reference (a tag or a digest) names
// in repo, or fails with ErrManifestUnknown: one image without listing
// the repository. Archived images are described too.
func (e *Engine) Image(ctx context.Context, repo, reference string) (*ImageDetail, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, err
	}
	if _, err := e.cachedRepoState(repo); err != nil {
		return nil, err
	}
	d, err := e.resolve(ctx, repo, reference)
	if err != nil {
		return nil, err
	}
	m, err := e.db.ManifestMeta(repo, d)
	if errors.Is(err, index.ErrNotFound) {
		return nil, e.unknownManifest(repo, reference)
	}
	if err != nil {
		return nil, storageErr(err)
	}
	id := e.newImageDescriber(repo, func(c digest.Digest) (*index.Manifest, error) {
		cm, err := e.db.ManifestMeta(repo, c)
		if errors.Is(err, index.ErrNotFound) {
			return nil, nil
		}
		return cm, storageErr(err)
	})
	im, err := id.describe(m)
	if err != nil {
		return nil, err
	}
	return &im, nil
}

// imageDescriber builds ImageDetails, with the blob sizes it has read.
type imageDescriber struct {
	e        *Engine
	repo     string
	manifest func(digest.Digest) (*index.Manifest, error) // nil, nil: not in the repository
	sizes    map[digest.Digest]int64
}

func (e *Engine) newImageDescriber(repo string, manifest func(digest.Digest) (*index.Manifest, error)) *imageDescriber {
	return &imageDescriber{e: e, repo: repo, manifest: manifest, sizes: map[digest.Digest]int64{}}
}

// describe describes m: its tags and its size (its blobs, or for an
// index its largest child's).
func (id *imageDescriber) describe(m *index.Manifest) (ImageDetail, error) {
	tags, err := id.e.db.TagsOf(id.repo, m.Digest)
	if err != nil {
		return ImageDetail{}, storageErr(err)
	}
	size, err := id.sumSizes(m.Blobs)
	if err != nil {
		return ImageDetail{}, err
	}
	for _, c := range m.Children {
		cm, err := id.manifest(c)
		if err != nil {
			return ImageDetail{}, err
		}
		if cm != nil {
			n, err := id.sumSizes(cm.Blobs)
			if err != nil {
				return ImageDetail{}, err
			}
			size = max(size, n)
		}
	}
	return ImageDetail{
		Digest: m.Digest, MediaType: m.MediaType, ArtifactType: m.ArtifactType, Subject: m.Subject,
		Tags: tags, Size: size, ManifestSize: m.PayloadSize, PushedAt: m.PushedAt, LastPulledAt: m.LastPulledAt,
		Status: imageStatusOf(m.Status), LastArchivedAt: m.LastArchivedAt, LastActivatedAt: m.LastActivatedAt,
	}, nil
}

// sumSizes adds up the sizes of blobs, each distinct digest once; a blob
// with no record (swept, or never stored: a foreign layer) counts nothing.
func (id *imageDescriber) sumSizes(blobs []digest.Digest) (int64, error) {
	seen := make(map[digest.Digest]bool, len(blobs))
	var total int64
	for _, d := range blobs {
		if seen[d] {
			continue
		}
		seen[d] = true
		n, ok := id.sizes[d]
		if !ok {
			b, err := id.e.db.Blob(d)
			switch {
			case errors.Is(err, index.ErrNotFound):
			case err != nil:
				return 0, storageErr(err)
			default:
				n = b.Size
			}
			id.sizes[d] = n
		}
		total += n
	}
	return total, nil
}

// UntagImage removes tag from repo as ECR's BatchDeleteImage does: when it
// was the last tag of its manifest and no index of the repository lists
// that manifest, the manifest goes too (with its referrers entry). It
// returns the manifest's digest and whether the manifest was deleted.
func (e *Engine) UntagImage(ctx context.Context, repo, tag string) (digest.Digest, bool, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return "", false, err
	}
	if err := ValidateTag(tag); err != nil {
		return "", false, err
	}
	unlock := e.repoLocks.Lock(repo)
	defer unlock()
	d, err := e.db.Tag(repo, tag)
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return "", false, e.unknownManifest(repo, tag)
		}
		return "", false, storageErr(err)
	}
	tags, err := e.db.TagsOf(repo, d)
	if err != nil {
		return "", false, storageErr(err)
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.DeleteTag(repo, tag, d); err != nil {
		return "", false, storageErr(err)
	}
	deleteManifest := len(tags) == 1
	if deleteManifest {
		listed, err := e.listedAsChild(repo, d)
		if err != nil {
			return "", false, err
		}
		deleteManifest = !listed
	}
	if deleteManifest {
		m, err := e.db.ManifestMeta(repo, d)
		if err != nil {
			return "", false, storageErr(err)
		}
		if m.Subject != "" {
			if err := b.DeleteReferrer(repo, m.Subject, d); err != nil {
				return "", false, storageErr(err)
			}
		}
		if err := b.DeleteManifest(repo, d); err != nil {
			return "", false, storageErr(err)
		}
	}
	m, err := e.db.ManifestMeta(repo, d)
	if err != nil {
		return "", false, storageErr(err)
	}
	evq := e.events(b)
	if err := evq.imageActions(repo, events.ActionDelete, d, m.MediaType, m.ArtifactType, []string{tag}, ""); err != nil {
		return "", false, err
	}
	if err := b.Commit(true); err != nil {
		return "", false, storageErr(err)
	}
	evq.committed()
	return d, deleteManifest, nil
}

// DeleteImage deletes manifest d and its tags as ECR's BatchDeleteImage by
// digest does: it refuses, with ErrImageReferenced, a manifest that an
// index of the repository lists.
func (e *Engine) DeleteImage(ctx context.Context, repo string, d digest.Digest) error {
	if err := ValidateRepositoryName(repo); err != nil {
		return err
	}
	if _, err := ParseDigest(string(d)); err != nil {
		return err
	}
	unlock := e.repoLocks.Lock(repo)
	defer unlock()
	listed, err := e.listedAsChild(repo, d)
	if err != nil {
		return err
	}
	if listed {
		return fmt.Errorf("%w: %s is listed by an index of %s", ErrImageReferenced, d, repo)
	}
	return e.deleteManifestLocked(repo, d)
}

// listedAsChild reports whether another manifest of repo lists d as a
// child. The caller holds the repository's lock, so that no index that
// lists d can land between the check and what the caller does.
func (e *Engine) listedAsChild(repo string, d digest.Digest) (bool, error) {
	errFound := errors.New("found")
	err := e.db.ListManifests(repo, func(m *index.Manifest) error {
		if m.Digest != d {
			for _, c := range m.Children {
				if c == d {
					return errFound
				}
			}
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return true, nil
	}
	return false, storageErr(err)
}
