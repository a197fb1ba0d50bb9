package ecrapi

// Repository policies: set, get, delete.

import (
	"context"
	"errors"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// policyOps serve the repository policy operations.
type policyOps struct {
	reg      registry
	policies PolicyStore
}

// SetRepositoryPolicyInput is SetRepositoryPolicy's request. Without
// force, a policy that would refuse the caller ecr:SetRepositoryPolicy
// on the repository (locking it out of setting another) is refused, as
// ECR refuses it.
type SetRepositoryPolicyInput struct {
	repositoryRef
	PolicyText string `json:"policyText"`
	Force      bool   `json:"force"`
}

// GetRepositoryPolicyInput is GetRepositoryPolicy's request.
type GetRepositoryPolicyInput struct {
	repositoryRef
}

// DeleteRepositoryPolicyInput is DeleteRepositoryPolicy's request.
type DeleteRepositoryPolicyInput struct {
	repositoryRef
}

// RepositoryPolicyOutput is the answer of SetRepositoryPolicy,
// GetRepositoryPolicy and DeleteRepositoryPolicy: the policy set, read or
// deleted.
type RepositoryPolicyOutput struct {
	RegistryID     string `json:"registryId"`
	RepositoryName string `json:"repositoryName"`
	PolicyText     string `json:"policyText"`
}

func (o policyOps) out(repo, text string) *RepositoryPolicyOutput {
	return &RepositoryPolicyOutput{RegistryID: o.reg.account, RepositoryName: repo, PolicyText: text}
}

// validate checks policyText's presence and length (ECR: at most 10,240
// characters).
func (in *SetRepositoryPolicyInput) validate() error {
	return checkLength("policyText", len(in.PolicyText), 1, maxPolicyText)
}

// maxPolicyText is ECR's longest repository or registry policy.
const maxPolicyText = 10240

func (o policyOps) set(ctx context.Context, c *call, in *SetRepositoryPolicyInput) (*RepositoryPolicyOutput, error) {
	if !in.Force {
		// The caller's right to set a policy after this one, decided
		// under this one (asked, and audited, as any decision).
		err := c.authz.Authorize(authz.WithRepositoryPolicy(ctx, in.PolicyText), c.who, authz.SetRepositoryPolicy, authz.Repository(in.RepositoryName))
		switch {
		case errors.Is(err, engine.ErrAccessDenied):
			return nil, invalidParameter("policyText", "The repository policy would prevent you from setting another policy in the future "+
				"(ecr:SetRepositoryPolicy would be refused to you); set force to set it anyway")
		case err != nil:
			return nil, err
		}
	}
	if err := o.policies.SetRepositoryPolicy(ctx, in.RepositoryName, in.PolicyText); err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	return o.out(in.RepositoryName, in.PolicyText), nil
}

func (o policyOps) get(ctx context.Context, _ *call, in *GetRepositoryPolicyInput) (*RepositoryPolicyOutput, error) {
	p, err := o.policies.GetRepositoryPolicy(ctx, in.RepositoryName)
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	return o.out(in.RepositoryName, p), nil
}

func (o policyOps) delete(ctx context.Context, _ *call, in *DeleteRepositoryPolicyInput) (*RepositoryPolicyOutput, error) {
	p, err := o.policies.DeleteRepositoryPolicy(ctx, in.RepositoryName)
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	return o.out(in.RepositoryName, p), nil
}
