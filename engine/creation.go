package engine

// Repositories the engine creates on a caller's behalf (create on push,
// a pull-through cache fill), and the check that an embedder puts in the
// operation's context to decide whether that caller may create them.

import (
	"context"
	"errors"
	"fmt"
)

// RepositoryCreation is a repository the engine is about to create on
// behalf of the operation under way: a push into a repository that does
// not exist (create on push), or a pull-through cache fill.
type RepositoryCreation struct {
	// Name is the repository's name.
	Name string
	// AppliedFor is why it is created: AppliedForCreateOnPush or
	// AppliedForPullThroughCache.
	AppliedFor string
	// Template is the prefix of the creation template whose settings it
	// gets; empty when it gets the defaults.
	Template string
	// Settings are the settings it would be created with (its template's):
	// its KMS key (Encryption.KMSKey), resource tags, policies.
	Settings RepositorySettings
	// CacheRule is, for a pull-through cache fill, the prefix of the rule
	// that creates it; empty otherwise.
	CacheRule string
}

// CreationCheck decides whether the operation under way may create a
// repository: an embedder's authorization (registryd asks for
// ecr:CreateRepository on it, and kms:CreateGrant and kms:DescribeKey on
// the key its template names). A non-nil error refuses: the operation
// fails with it (wrapped as it is) and nothing is created.
type CreationCheck func(ctx context.Context, c RepositoryCreation) error

type creationCheckKey struct{}

// WithCreationCheck returns ctx carrying check: every operation run with
// the context (BeginUpload, PutBlob, MountBlob, PutManifest,
// PutCachedManifest, EnsureCacheRepository) calls it before it creates a
// repository, and creates none when it refuses. The check runs without
// any engine lock held, so it may call Authorize; when a concurrent
// change (a template put meanwhile) alters what would be created, the
// check runs again. Without a check, creation follows the templates and
// Options.CreateOnPush alone.
func WithCreationCheck(ctx context.Context, check CreationCheck) context.Context {
	return context.WithValue(ctx, creationCheckKey{}, check)
}

// creationCheck returns the check ctx carries, or nil.
func creationCheck(ctx context.Context) CreationCheck {
	c, _ := ctx.Value(creationCheckKey{}).(CreationCheck)
	return c
}

// ErrNotPullThroughCache: a pull-through cache fill would write into a
// repository that no pull-through cache rule created (one that was pushed
// to or created directly): the cache never takes it over.
var ErrNotPullThroughCache = errors.New("engine: repository was not created by a pull-through cache")

// maxCreationAttempts bounds how often ensureRepoFor plans a creation
// again when what it would create changed while its check ran.
const maxCreationAttempts = 4

// creationPlan returns what creating repository name for appliedFor
// would make: its template's settings, or the defaults when none matches
// and withoutTemplate allows it (false and ErrNameUnknown otherwise).
func (e *Engine) creationPlan(ctx context.Context, name, appliedFor, cacheRule string, withoutTemplate bool) (RepositoryCreation, error) {
	c := RepositoryCreation{Name: name, AppliedFor: appliedFor, CacheRule: cacheRule}
	templates, err := e.CreationTemplates(ctx)
	if err != nil {
		return c, err
	}
	if t, ok := matchTemplate(templates, name, appliedFor); ok {
		c.Template, c.Settings = t.Prefix, t.RepositorySettings
	} else if !withoutTemplate {
		return c, fmt.Errorf("%w: %s (no creation template allows create on push)", ErrNameUnknown, name)
	}
	return c, nil
}

// samePlan reports whether two plans create the same repository.
func samePlan(a, b *RepositoryCreation) bool {
	if a.Template != b.Template || a.CacheRule != b.CacheRule {
		return false
	}
	ae, err1 := encodeRepository(&Repository{RepositorySettings: a.Settings})
	be, err2 := encodeRepository(&Repository{RepositorySettings: b.Settings})
	return err1 == nil && err2 == nil && string(ae) == string(be)
}
