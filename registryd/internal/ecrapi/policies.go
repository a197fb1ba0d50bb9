package ecrapi

// Repository policies: set, get, delete.

import "context"

// policyOps serve the repository policy operations.
type policyOps struct {
	reg      registry
	policies PolicyStore
}

// SetRepositoryPolicyInput is SetRepositoryPolicy's request.
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

func (o policyOps) set(ctx context.Context, _ *call, in *SetRepositoryPolicyInput) (*RepositoryPolicyOutput, error) {
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
