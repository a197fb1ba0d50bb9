package engine

// Repository policies (ECR's SetRepositoryPolicy): storing them and
// deciding requests by them (engine/internal/policy evaluates them).

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/berthstore/berth/engine/internal/policy"
)

// SetRepositoryPolicy sets repo's repository policy (JSON text, at most
// 10,240 characters).
func (e *Engine) SetRepositoryPolicy(ctx context.Context, repo, policy string) error {
	if policy == "" {
		return fmt.Errorf("%w: policyText is empty", ErrInvalidArgument)
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

// policyEntry is a cached repository policy: the parsed policy (nil when
// the repository has none) or why the stored text cannot be enforced.
type policyEntry struct {
	policy *policy.Policy
	err    error
}

// Principal is who makes a request, for repository policies: a user of
// the registry's account (an IAM-style user; Berth has no IAM), or an
// anonymous caller (User empty).
type Principal struct {
	// Account is the registry ID (a 12-digit account).
	Account string
	// User is the user name; empty for an anonymous caller.
	User string
}

// ARN is the principal's ARN, arn:aws:iam::<account>:user/<name>, or ""
// for an anonymous caller.
func (p Principal) ARN() string { return p.internal().ARN() }

func (p Principal) internal() policy.Principal {
	return policy.Principal{Account: p.Account, User: p.User}
}

// policyAdminActions stay open under a stored policy that cannot be
// enforced, so that it can be read and replaced.
var policyAdminActions = map[string]bool{
	"ecr:getrepositorypolicy":    true,
	"ecr:setrepositorypolicy":    true,
	"ecr:deleterepositorypolicy": true,
}

// CheckRepositoryPolicy refuses, with an error wrapping ErrAccessDenied
// that names who, what and where, an action ("ecr:PutImage") that repo's
// repository policy denies to who. Every authenticated user is allowed by
// identity (Berth has no IAM), so a policy takes effect through its Deny
// statements, which win as an explicit Deny does in AWS. A repository
// that does not exist has no policy. A stored policy that cannot be
// enforced (written before Berth enforced policies) denies everything but
// reading, replacing and deleting it.
func (e *Engine) CheckRepositoryPolicy(ctx context.Context, who Principal, repo, action string) error {
	p, err := e.repositoryPolicy(repo)
	if errors.Is(err, policy.ErrInvalid) {
		if policyAdminActions[strings.ToLower(action)] {
			return nil
		}
		return fmt.Errorf("%w: %v; replace it with SetRepositoryPolicy", ErrAccessDenied, err)
	}
	if err != nil {
		return err
	}
	if p.Evaluate(who.internal(), action) == policy.Denied {
		name := "anonymous caller"
		if who.User != "" {
			name = who.ARN()
		}
		return fmt.Errorf("%w: %s may not %s on repository %s (its repository policy denies it)", ErrAccessDenied, name, action, repo)
	}
	return nil
}

// repositoryPolicy returns repo's parsed repository policy: nil when the
// repository has none or does not exist, an error wrapping
// policy.ErrInvalid when the stored text cannot be enforced. Parsed
// policies are cached; updateSettings and DeleteRepository drop the entry
// under the repository's lock, and a miss loads under that lock, so no
// request sees a policy older than the last committed change.
func (e *Engine) repositoryPolicy(repo string) (*policy.Policy, error) {
	if v, ok := e.policies.Load(repo); ok {
		pe := v.(policyEntry)
		return pe.policy, pe.err
	}
	if ValidateRepositoryName(repo) != nil {
		return nil, nil
	}
	unlock := e.repoLocks.Lock(repo)
	defer unlock()
	r, err := e.loadRepo(repo)
	if errors.Is(err, ErrNameUnknown) {
		return nil, nil // not cached: names that do not exist are unbounded
	}
	if err != nil {
		return nil, err
	}
	var pe policyEntry
	if r.RepositoryPolicy != "" {
		if pe.policy, pe.err = policy.Parse(r.RepositoryPolicy); pe.err != nil {
			pe.err = fmt.Errorf("repository %s: its stored policy cannot be enforced: %w", repo, pe.err)
		}
	}
	e.policies.Store(repo, pe)
	return pe.policy, pe.err
}
