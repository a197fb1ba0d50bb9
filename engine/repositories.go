package engine

// Repositories: creating (directly or on push, from a creation
// template), describing, listing and deleting them.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/index"
)

// Repository describes one repository.
type Repository struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
	RepositorySettings
	// KeyState is the state of the repository's key-encryption key
	// (enabled, disabled, destroyed; unavailable when its provider
	// cannot be reached, unknown when no provider holds it), as of the
	// call that returned the Repository. Not stored.
	KeyState KeyState `json:"keyState,omitempty"`
}

// repoState is a repository as the engine uses it: record plus decoded settings.
type repoState struct {
	Repository
	kek string
}

func (e *Engine) loadRepo(name string) (*repoState, error) {
	rec, err := e.db.Repository(name)
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrNameUnknown, name)
		}
		return nil, storageErr(err)
	}
	r := &repoState{Repository: Repository{Name: rec.Name, CreatedAt: rec.CreatedAt}}
	if len(rec.Settings) > 0 {
		if r.RepositorySettings, err = decodeSettings(rec.Settings); err != nil {
			return nil, fmt.Errorf("%w: repository %s settings: %v", ErrCorrupt, name, err)
		}
	}
	r.kek = kekName(&r.RepositorySettings)
	return r, nil
}

func (e *Engine) putRepo(b *index.Batch, r *Repository) error {
	s, err := encodeSettings(r.RepositorySettings)
	if err != nil {
		return err
	}
	return b.PutRepository(&index.Repository{Name: r.Name, CreatedAt: r.CreatedAt, Settings: s})
}

// CreateRepository creates a repository with the given settings.
func (e *Engine) CreateRepository(ctx context.Context, name string, s RepositorySettings) (*Repository, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	if err := ValidateRepositoryName(name); err != nil {
		return nil, err
	}
	unlock := e.repoLocks.Lock(name)
	defer unlock()
	if _, err := e.db.Repository(name); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrRepositoryExists, name)
	} else if !errors.Is(err, index.ErrNotFound) {
		return nil, storageErr(err)
	}
	return e.createRepoLocked(ctx, name, s)
}

func (e *Engine) createRepoLocked(ctx context.Context, name string, s RepositorySettings) (*Repository, error) {
	if s.TagMutability == "" {
		s.TagMutability = TagMutable
	}
	if s.Encryption.EncryptionType == "" {
		s.Encryption.EncryptionType = EncryptionAES256
	}
	if err := validateSettings(s); err != nil {
		return nil, err
	}
	if err := e.checkKEK(ctx, kekName(&s)); err != nil {
		return nil, err
	}
	r := &Repository{Name: name, CreatedAt: e.now(), RepositorySettings: s}
	b := e.db.NewBatch()
	defer b.Close()
	if err := e.putRepo(b, r); err != nil {
		return nil, storageErr(err)
	}
	if err := b.Commit(true); err != nil {
		return nil, storageErr(err)
	}
	e.log.Info("repository created", "repository", name, "mutability", s.TagMutability, "kek", kekName(&s))
	return r, nil
}

// ensureRepo returns repository name, creating it for a push when a
// creation template with CREATE_ON_PUSH matches (or Options.CreateOnPush).
// created tells whether this call created it.
func (e *Engine) ensureRepo(ctx context.Context, name string) (r *repoState, created bool, err error) {
	return e.ensureRepoFor(ctx, name, AppliedForCreateOnPush, e.opts.CreateOnPush)
}

// ensureRepoFor returns repository name, creating it when it does not
// exist with the settings of the creation template that matches it for
// the scenario appliedFor, or with defaults when none does and
// withoutTemplate allows it (else ErrNameUnknown).
func (e *Engine) ensureRepoFor(ctx context.Context, name, appliedFor string, withoutTemplate bool) (r *repoState, created bool, err error) {
	if err := ValidateRepositoryName(name); err != nil {
		return nil, false, err
	}
	if r, err := e.loadRepo(name); !errors.Is(err, ErrNameUnknown) {
		return r, false, err
	}
	unlock := e.repoLocks.Lock(name)
	defer unlock()
	if r, err := e.loadRepo(name); !errors.Is(err, ErrNameUnknown) {
		return r, false, err
	}
	templates, err := e.CreationTemplates(ctx)
	if err != nil {
		return nil, false, err
	}
	var s RepositorySettings
	if t, ok := matchTemplate(templates, name, appliedFor); ok {
		s = t.RepositorySettings
	} else if !withoutTemplate {
		return nil, false, fmt.Errorf("%w: %s (no creation template allows create on push)", ErrNameUnknown, name)
	}
	if _, err := e.createRepoLocked(ctx, name, s); err != nil {
		return nil, false, err
	}
	r, err = e.loadRepo(name)
	return r, true, err
}

// Repository returns a repository's description.
func (e *Engine) Repository(ctx context.Context, name string) (*Repository, error) {
	if err := ValidateRepositoryName(name); err != nil {
		return nil, err
	}
	r, err := e.loadRepo(name)
	if err != nil {
		return nil, err
	}
	r.KeyState = e.keyState(ctx, r.kek)
	return &r.Repository, nil
}

// ListRepositories lists up to n repository names after last, in lexical
// order (n <= 0: all).
func (e *Engine) ListRepositories(ctx context.Context, last string, n int) ([]string, error) {
	names, err := e.db.ListRepositories(last, n)
	return names, storageErr(err)
}

// DeleteRepository deletes a repository. Without force it must hold no
// manifests; with force its manifests, tags, referrers and blob links go
// with it (the blobs themselves at the next gc).
func (e *Engine) DeleteRepository(ctx context.Context, name string, force bool) error {
	if err := ValidateRepositoryName(name); err != nil {
		return err
	}
	unlock := e.repoLocks.Lock(name)
	defer unlock()
	if _, err := e.loadRepo(name); err != nil {
		return err
	}
	b := e.db.NewBatch()
	defer b.Close()
	var manifests int
	err := e.db.ListManifests(name, func(m *index.Manifest) error {
		manifests++
		if !force {
			return ErrRepositoryNotEmpty
		}
		if err := b.DeleteManifest(name, m.Digest); err != nil {
			return err
		}
		if m.Subject != "" {
			return b.DeleteReferrer(name, m.Subject, m.Digest)
		}
		return nil
	})
	if errors.Is(err, ErrRepositoryNotEmpty) {
		return fmt.Errorf("%w: %s holds images", ErrRepositoryNotEmpty, name)
	}
	if err != nil {
		return storageErr(err)
	}
	tags, err := e.db.ListTags(name, "", 0)
	if err != nil {
		return storageErr(err)
	}
	for _, t := range tags {
		d, err := e.db.Tag(name, t)
		if err != nil {
			return storageErr(err)
		}
		if err := b.DeleteTag(name, t, d); err != nil {
			return storageErr(err)
		}
	}
	if err := e.db.ListLinks(name, func(d digest.Digest) error { return b.DeleteLink(name, d) }); err != nil {
		return storageErr(err)
	}
	if err := b.DeleteRepository(name); err != nil {
		return storageErr(err)
	}
	if err := b.Commit(true); err != nil {
		return storageErr(err)
	}
	e.policies.Delete(name)
	e.log.Info("repository deleted", "repository", name, "manifests", manifests)
	return nil
}
