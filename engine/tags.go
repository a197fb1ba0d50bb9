package engine

// Tags: listing and deleting them, and whether a tag may move (tag
// immutability; the filters are in engine/internal/tagfilter).

import (
	"context"
	"errors"

	"github.com/berthstore/berth/engine/internal/events"
	"github.com/berthstore/berth/engine/internal/tagfilter"
	"github.com/berthstore/berth/index"
)

// DeleteTag removes one tag; the manifest stays.
func (e *Engine) DeleteTag(ctx context.Context, repo, tag string) error {
	if err := ValidateRepositoryName(repo); err != nil {
		return err
	}
	if err := ValidateTag(tag); err != nil {
		return err
	}
	unlock := e.repoLocks.Lock(repo)
	defer unlock()
	d, err := e.db.Tag(repo, tag)
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return e.unknownManifest(repo, tag)
		}
		return storageErr(err)
	}
	m, err := e.db.ManifestMeta(repo, d)
	if err != nil {
		return storageErr(err)
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.DeleteTag(repo, tag, d); err != nil {
		return storageErr(err)
	}
	evq := e.events(b)
	if err := evq.imageActions(repo, events.ActionDelete, d, m.MediaType, m.ArtifactType, []string{tag}, ""); err != nil {
		return err
	}
	if err := b.Commit(true); err != nil {
		return storageErr(err)
	}
	evq.committed()
	return nil
}

// ListTags lists up to n tags of repo after last, in lexical order (n <= 0: all).
func (e *Engine) ListTags(ctx context.Context, repo, last string, n int) ([]string, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, err
	}
	tags, err := e.dbFor(ctx).ListTags(repo, last, n)
	if err != nil {
		return nil, storageErr(err)
	}
	if len(tags) == 0 {
		if _, err := e.cachedRepoState(repo); err != nil {
			return nil, err
		}
	}
	return tags, nil
}

// mutabilityMode decodes a TagMutability setting; an unknown one (which
// validateSettings never lets through) fails closed: every tag immutable.
func mutabilityMode(setting string) tagfilter.Mode {
	switch setting {
	case "", TagMutable:
		return tagfilter.Mutable
	case TagImmutableWithExclusion:
		return tagfilter.ImmutableExcept
	case TagMutableWithExclusion:
		return tagfilter.MutableExcept
	default: // TagImmutable, and unknown values
		return tagfilter.Immutable
	}
}

// tagImmutable reports whether tag, once it exists, may not be moved to
// another digest under settings s:
//
//	"" or MUTABLE              no tag is immutable
//	IMMUTABLE                  every tag is immutable
//	IMMUTABLE_WITH_EXCLUSION   every tag but those matching a filter
//	MUTABLE_WITH_EXCLUSION     only the tags matching a filter
//
// An unknown setting fails closed: the tag is immutable.
func tagImmutable(s RepositorySettings, tag string) bool {
	filters := make([]string, len(s.TagMutabilityExclusions))
	for i, f := range s.TagMutabilityExclusions {
		filters[i] = f.Filter
	}
	return tagfilter.IsImmutable(mutabilityMode(s.TagMutability), filters, tag)
}
