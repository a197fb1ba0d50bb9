package engine

// Repository policies (ECR's SetRepositoryPolicy) and the registry
// policy (PutRegistryPolicy): storing them, and the parsed forms that
// Authorize evaluates (access.go).

import (
	"context"
	"errors"
	"fmt"

	"github.com/berthstore/berth/engine/internal/iam"
	"github.com/berthstore/berth/index"
)

// SetRepositoryPolicy sets repo's repository policy (JSON text, at most
// 10,240 characters). A policy Berth could not enforce exactly is refused
// (ErrInvalidArgument, naming the statement and the field).
func (e *Engine) SetRepositoryPolicy(ctx context.Context, repo, policy string) error {
	if policy == "" {
		return fmt.Errorf("%w: policyText is empty", ErrInvalidArgument)
	}
	if ValidateRepositoryName(repo) == nil {
		if err := checkPolicyText("policyText", policy, maxRepoPolicyLen); err != nil {
			return err
		}
		if _, err := parseRepositoryPolicy(repo, policy); err != nil {
			return fmt.Errorf("%w: policyText: %w", ErrInvalidArgument, err)
		}
	}
	return e.updateSettings(repo, func(s *RepositorySettings) error {
		s.RepositoryPolicy = policy
		return nil
	})
}

// GetRepositoryPolicy returns repo's repository policy, or
// ErrRepositoryPolicyNotFound.
func (e *Engine) GetRepositoryPolicy(ctx context.Context, repo string) (string, error) {
	r, err := e.Repository(ctx, repo)
	if err != nil {
		return "", err
	}
	if r.RepositoryPolicy == "" {
		return "", fmt.Errorf("%w: %s", ErrRepositoryPolicyNotFound, repo)
	}
	return r.RepositoryPolicy, nil
}

// DeleteRepositoryPolicy removes repo's repository policy and returns it,
// or fails with ErrRepositoryPolicyNotFound.
func (e *Engine) DeleteRepositoryPolicy(ctx context.Context, repo string) (string, error) {
	var old string
	err := e.updateSettings(repo, func(s *RepositorySettings) error {
		if s.RepositoryPolicy == "" {
			return fmt.Errorf("%w: %s", ErrRepositoryPolicyNotFound, repo)
		}
		old, s.RepositoryPolicy = s.RepositoryPolicy, ""
		return nil
	})
	return old, err
}

// parseRepositoryPolicy parses the repository policy of repo.
func parseRepositoryPolicy(repo, text string) (*iam.Policy, error) {
	return iam.Parse(iam.RepositoryPolicy, "repository/"+repo, text)
}

// repoAccess is what Authorize needs of one repository, cached per
// repository: its ARN, its parsed policy (nil: none) or why the stored
// text cannot be enforced, and its resource tags.
type repoAccess struct {
	arn    string
	policy *iam.Policy
	err    error
	tags   []ResourceTag
	// cached marks the entry of a repository that exists, as the cache
	// holds it (an entry of a name that does not exist is made anew for
	// each decision): decisions on it may be cached (decisions.go).
	cached bool
}

// repositoryAccess returns repo's access entry. Entries are cached;
// updateSettings and DeleteRepository drop the entry under the
// repository's lock, and a miss loads under that lock, so no decision
// sees a policy or tags older than the last committed change. A
// repository that does not exist has no policy and no tags (not cached:
// names that do not exist are unbounded).
func (e *Engine) repositoryAccess(repo string) (*repoAccess, error) {
	if v, ok := e.policies.Load(repo); ok {
		return v.(*repoAccess), nil
	}
	arn := iam.RepositoryARN(e.opts.Region, e.opts.Account, repo)
	if ValidateRepositoryName(repo) != nil {
		return &repoAccess{arn: arn}, nil
	}
	unlock := e.repoLocks.Lock(repo)
	defer unlock()
	g := e.fillGen()
	r, err := e.loadRepo(repo)
	if errors.Is(err, ErrNameUnknown) {
		return &repoAccess{arn: arn}, nil
	}
	if err != nil {
		return nil, err
	}
	ra := &repoAccess{arn: arn, tags: r.ResourceTags, cached: e.fresh(g)}
	if r.RepositoryPolicy != "" {
		if ra.policy, ra.err = parseRepositoryPolicy(repo, r.RepositoryPolicy); ra.err != nil {
			ra.err = fmt.Errorf("repository %s: its stored policy cannot be enforced: %w", repo, ra.err)
		}
	}
	if ra.cached {
		e.policies.Store(repo, ra)
		if !e.fresh(g) {
			e.policies.CompareAndDelete(repo, ra)
		}
	}
	return ra, nil
}

// registryPolicyKey is the registry setting that holds the registry
// policy's text.
const registryPolicyKey = "registryPolicy"

// registryPolicyEntry is the cached registry policy: nil when there is
// none.
type registryPolicyEntry struct {
	text   string
	policy *iam.Policy
	err    error
}

// SetRegistryPolicy sets the registry policy (ECR's PutRegistryPolicy):
// a resource policy on the registry, which grants (or denies) the
// registry-level actions ECR enforces there (ecr:ReplicateImage,
// ecr:BatchImportUpstreamImage, ecr:CreateRepository) to principals,
// other accounts among them. A policy Berth could not enforce exactly is
// refused (ErrInvalidArgument).
func (e *Engine) SetRegistryPolicy(ctx context.Context, text string) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	if text == "" {
		return fmt.Errorf("%w: policyText is empty", ErrInvalidArgument)
	}
	if err := checkPolicyText("policyText", text, iam.MaxRepositoryPolicySize); err != nil {
		return err
	}
	p, err := iam.Parse(iam.RegistryPolicy, "registry", text)
	if err != nil {
		return fmt.Errorf("%w: policyText: %w", ErrInvalidArgument, err)
	}
	e.registryMu.Lock()
	defer e.registryMu.Unlock()
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutRegistrySetting(registryPolicyKey, []byte(text)); err != nil {
		return storageErr(err)
	}
	if err := b.Commit(true); err != nil {
		return storageErr(err)
	}
	e.registryPolicy.Store(&registryPolicyEntry{text: text, policy: p})
	return nil
}

// RegistryPolicy returns the registry policy's text, or
// ErrRegistryPolicyNotFound.
func (e *Engine) RegistryPolicy(ctx context.Context) (string, error) {
	rp, err := e.loadRegistryPolicy()
	if err != nil {
		return "", err
	}
	if rp.text == "" {
		return "", ErrRegistryPolicyNotFound
	}
	return rp.text, nil
}

// DeleteRegistryPolicy removes the registry policy and returns it, or
// fails with ErrRegistryPolicyNotFound.
func (e *Engine) DeleteRegistryPolicy(ctx context.Context) (string, error) {
	if err := e.checkOpen(); err != nil {
		return "", err
	}
	e.registryMu.Lock()
	defer e.registryMu.Unlock()
	rp, err := e.loadRegistryPolicyLocked()
	if err != nil {
		return "", err
	}
	if rp.text == "" {
		return "", ErrRegistryPolicyNotFound
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRegistrySetting(registryPolicyKey); err != nil {
		return "", storageErr(err)
	}
	if err := b.Commit(true); err != nil {
		return "", storageErr(err)
	}
	e.registryPolicy.Store(&registryPolicyEntry{})
	return rp.text, nil
}

// loadRegistryPolicy returns the cached registry policy, loading it on
// first use.
func (e *Engine) loadRegistryPolicy() (*registryPolicyEntry, error) {
	if rp := e.registryPolicy.Load(); rp != nil {
		return rp, nil
	}
	e.registryMu.Lock()
	defer e.registryMu.Unlock()
	return e.loadRegistryPolicyLocked()
}

// loadRegistryPolicyLocked is loadRegistryPolicy under registryMu.
func (e *Engine) loadRegistryPolicyLocked() (*registryPolicyEntry, error) {
	if rp := e.registryPolicy.Load(); rp != nil {
		return rp, nil
	}
	g := e.fillGen()
	v, err := e.db.RegistrySetting(registryPolicyKey)
	rp := &registryPolicyEntry{}
	switch {
	case errors.Is(err, index.ErrNotFound):
	case err != nil:
		return nil, storageErr(err)
	default:
		rp.text = string(v)
		rp.policy, rp.err = iam.Parse(iam.RegistryPolicy, "registry", rp.text)
	}
	if e.fresh(g) {
		e.registryPolicy.Store(rp)
		if !e.fresh(g) {
			e.registryPolicy.CompareAndSwap(rp, nil)
		}
	}
	return rp, nil
}
