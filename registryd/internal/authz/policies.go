package authz

import (
	"context"
	"errors"
	"fmt"

	"github.com/berthstore/berth/engine"
)

// PolicyChecker is the store's repository policy decision.
type PolicyChecker interface {
	CheckRepositoryPolicy(ctx context.Context, who engine.Principal, repo, action string) error
}

var _ PolicyChecker = (*engine.Engine)(nil)

// RepositoryPolicies is the Authorizer of a registry without IAM: every
// caller that authentication let through holds every ECR action by
// identity, so an action on a repository is refused only by a Deny of
// that repository's policy (engine.CheckRepositoryPolicy;
// docs/policies.md), and registry-level and admin actions are allowed. An
// action it does not know is refused.
type RepositoryPolicies struct {
	policies PolicyChecker
}

var _ Authorizer = (*RepositoryPolicies)(nil)

// NewRepositoryPolicies returns the Authorizer over the store's
// repository policies.
func NewRepositoryPolicies(policies PolicyChecker) (*RepositoryPolicies, error) {
	if policies == nil {
		return nil, errors.New("authz: no repository policy checker")
	}
	return &RepositoryPolicies{policies: policies}, nil
}

// Authorize implements Authorizer.
func (p *RepositoryPolicies) Authorize(ctx context.Context, who engine.Principal, action Action, resource Resource) error {
	if !action.Known() {
		return fmt.Errorf("%w: %w %q", engine.ErrAccessDenied, ErrUnknownAction, action)
	}
	if !resource.valid() {
		return fmt.Errorf("%w: %w: %s", engine.ErrAccessDenied, ErrNoResource, action)
	}
	if admin[action] {
		return nil // the admin API is open to every authenticated caller
	}
	repo, ok := resource.Repository()
	if !ok {
		return nil // registry-level: every authenticated caller
	}
	return p.policies.CheckRepositoryPolicy(ctx, who, repo, string(action))
}
