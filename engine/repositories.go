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
	// CreatedByCacheRule is the prefix (or ROOT) of the pull-through
	// cache rule whose fill created the repository; empty for one created
	// any other way. Only such repositories (and names with no repository
	// yet) are ever filled from an upstream registry: a rule never takes
	// over a repository that was pushed to. Stored, set at creation only.
	CreatedByCacheRule string `json:"createdByCacheRule,omitempty"`
	// LifecycleEvaluatedAt is when LifecycleApply last evaluated the
	// repository's lifecycle policy; zero for never (ECR's
	// lastEvaluatedAt). Stored.
	LifecycleEvaluatedAt time.Time `json:"lifecycleEvaluatedAt,omitzero"`
	// KeyState is the state of the repository's key-encryption key
	// (enabled, disabled, destroyed; unavailable when its provider
	// cannot be reached, unknown when no provider holds it), as of the
	// call that returned the Repository. Not stored.
	KeyState KeyState `json:"keyState,omitempty"`
	// Public reports that the repository serves anonymous pulls: its
	// policies allow the anonymous principal ("*") both pull actions
	// (ecr:BatchGetImage and ecr:GetDownloadUrlForLayer), as of the call
	// that returned the Repository. Computed from the policies, not
	// stored.
	Public bool `json:"public"`
}

// repoState is a repository as the engine uses it: record plus decoded settings.
type repoState struct {
	Repository
	kek string
}

// putRepo adds repository r's record to b. A batch that changes the
// record of an existing repository commits with commitRepoChange, which
// drops the cached record; creating one needs not (names that do not
// exist are not cached).
func (e *Engine) putRepo(b *index.Batch, r *Repository) error {
	s, err := encodeRepository(r)
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
	return e.createRepoLocked(ctx, name, s, "")
}

// createRepoLocked creates repository name, under its lock; cacheRule is
// the pull-through cache rule creating it ("" for none).
func (e *Engine) createRepoLocked(ctx context.Context, name string, s RepositorySettings, cacheRule string) (*Repository, error) {
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
	r := &Repository{Name: name, CreatedAt: e.now(), RepositorySettings: s, CreatedByCacheRule: cacheRule}
	b := e.db.NewBatch()
	defer b.Close()
	if err := e.putRepo(b, r); err != nil {
		return nil, storageErr(err)
	}
	// A pull-through cache's repository is committed without waiting for
	// the disk: it is on a first pull's path (the manifest is answered
	// once it exists), the first synced commit after it (the fill's
	// blobs and manifest, in the write-ahead log's order) makes it
	// durable, and a crash before that loses only an empty cache
	// repository, which the next pull creates again.
	if err := b.Commit(cacheRule == ""); err != nil {
		return nil, storageErr(err)
	}
	e.log.Info("repository created", "repository", name, "mutability", s.TagMutability, "kek", kekName(&s))
	return r, nil
}

// ensureRepo returns repository name, creating it for a push when a
// creation template with CREATE_ON_PUSH matches (or Options.CreateOnPush).
// created tells whether this call created it.
func (e *Engine) ensureRepo(ctx context.Context, name string) (r *repoState, created bool, err error) {
	if _, ok := replicationSource(ctx); ok {
		// A replicated push: the REPLICATION template, or ECR's defaults.
		return e.ensureRepoFor(ctx, name, AppliedForReplication, "", true)
	}
	return e.ensureRepoFor(ctx, name, AppliedForCreateOnPush, "", e.opts.CreateOnPush)
}

// ensureRepoFor returns repository name, creating it when it does not
// exist with the settings of the creation template that matches it for
// the scenario appliedFor, or with defaults when none does and
// withoutTemplate allows it (else ErrNameUnknown). cacheRule, for a
// pull-through cache fill, is recorded on the repository it creates. The
// creation check of ctx (WithCreationCheck) decides first, without a
// lock held (it may ask Authorize, which takes the repository's lock);
// if what would be created changed meanwhile, it decides again.
func (e *Engine) ensureRepoFor(ctx context.Context, name, appliedFor, cacheRule string, withoutTemplate bool) (r *repoState, created bool, err error) {
	if err := ValidateRepositoryName(name); err != nil {
		return nil, false, err
	}
	check := creationCheck(ctx)
	for range maxCreationAttempts {
		if r, err := e.loadRepo(name); !errors.Is(err, ErrNameUnknown) {
			return r, false, err
		}
		plan, err := e.creationPlan(ctx, name, appliedFor, cacheRule, withoutTemplate)
		if err != nil {
			return nil, false, err
		}
		if check != nil {
			if err := check(ctx, plan); err != nil {
				return nil, false, err
			}
		}
		r, created, retry, err := e.createPlanned(ctx, &plan)
		if !retry {
			return r, created, err
		}
	}
	return nil, false, fmt.Errorf("%w: %s: its creation template kept changing while the creation was checked; retry", ErrNameUnknown, name)
}

// createPlanned creates the repository plan describes, under its lock,
// unless it exists by now (then it returns it). retry is true when the
// plan no longer holds (a template changed): the caller checks again.
func (e *Engine) createPlanned(ctx context.Context, plan *RepositoryCreation) (r *repoState, created, retry bool, err error) {
	unlock := e.repoLocks.Lock(plan.Name)
	defer unlock()
	if r, err := e.loadRepo(plan.Name); !errors.Is(err, ErrNameUnknown) {
		return r, false, false, err
	}
	now, err := e.creationPlan(ctx, plan.Name, plan.AppliedFor, plan.CacheRule, true)
	if err != nil {
		return nil, false, false, err
	}
	if !samePlan(plan, &now) {
		return nil, false, true, nil
	}
	if _, err := e.createRepoLocked(ctx, plan.Name, plan.Settings, plan.CacheRule); err != nil {
		return nil, false, false, err
	}
	r, err = e.loadRepo(plan.Name)
	return r, true, false, err
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
	if r.Public, err = e.public(ctx, name); err != nil {
		return nil, err
	}
	return &r.Repository, nil
}

// pullActions are the actions a pull performs; a repository whose
// policies allow the anonymous principal both is public.
var pullActions = [...]string{"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"}

// public reports whether an anonymous caller may pull from repo: its
// repository policy allows Principal "*" the pull actions and no policy
// denies them (a condition on the caller's address or transport, which
// an anonymous caller in general does not meet, leaves it not public).
func (e *Engine) public(ctx context.Context, repo string) (bool, error) {
	anon := Principal{Account: e.opts.Account}
	for _, a := range pullActions {
		d, err := e.Authorize(ctx, &AccessRequest{Principal: anon, Action: a, Repository: repo})
		if err != nil {
			return false, err
		}
		if !d.Allowed() {
			return false, nil
		}
	}
	return true, nil
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
	err = e.commitRepoChange(b, name)
	e.policies.Delete(name)
	if err != nil {
		return storageErr(err)
	}
	e.log.Info("repository deleted", "repository", name, "manifests", manifests)
	return nil
}
