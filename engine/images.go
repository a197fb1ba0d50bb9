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
}

// Images describes every manifest of repo (image manifests, indexes, the
// children of indexes and referrers, as ECR lists them), in digest order.
func (e *Engine) Images(ctx context.Context, repo string) ([]ImageDetail, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, err
	}
	if _, err := e.loadRepo(repo); err != nil {
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
	sizes := map[digest.Digest]int64{}
	blobSize := func(d digest.Digest) (int64, error) {
		if n, ok := sizes[d]; ok {
			return n, nil
		}
		b, err := e.db.Blob(d)
		if errors.Is(err, index.ErrNotFound) {
			return 0, nil // swept or never stored (a foreign layer): counts nothing
		}
		if err != nil {
			return 0, storageErr(err)
		}
		sizes[d] = b.Size
		return b.Size, nil
	}
	out := make([]ImageDetail, 0, len(ms))
	for _, m := range ms {
		tags, err := e.db.TagsOf(repo, m.Digest)
		if err != nil {
			return nil, storageErr(err)
		}
		size, err := sumSizes(m.Blobs, blobSize)
		if err != nil {
			return nil, err
		}
		for _, c := range m.Children {
			if cm := byDigest[c]; cm != nil {
				n, err := sumSizes(cm.Blobs, blobSize)
				if err != nil {
					return nil, err
				}
				size = max(size, n)
			}
		}
		out = append(out, ImageDetail{
			Digest: m.Digest, MediaType: m.MediaType, ArtifactType: m.ArtifactType, Subject: m.Subject,
			Tags: tags, Size: size, ManifestSize: m.PayloadSize, PushedAt: m.PushedAt, LastPulledAt: m.LastPulledAt,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out, nil
}

// sumSizes adds up the sizes of blobs, each distinct digest once.
func sumSizes(blobs []digest.Digest, size func(digest.Digest) (int64, error)) (int64, error) {
	seen := make(map[digest.Digest]bool, len(blobs))
	var total int64
	for _, d := range blobs {
		if seen[d] {
			continue
		}
		seen[d] = true
		n, err := size(d)
		if err != nil {
			return 0, err
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
	unlock := e.repoLocks.lock(repo)
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
	return d, deleteManifest, storageErr(b.Commit(true))
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
	unlock := e.repoLocks.lock(repo)
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
