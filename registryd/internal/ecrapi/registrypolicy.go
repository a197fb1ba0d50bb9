package ecrapi

// The registry policy (PutRegistryPolicy, GetRegistryPolicy,
// DeleteRegistryPolicy) and DescribeRegistry.

import "context"

// registryOps serve the registry-level operations.
type registryOps struct {
	reg      registry
	policies RegistryPolicyStore
}

// PutRegistryPolicyInput is PutRegistryPolicy's request.
type PutRegistryPolicyInput struct {
	onRegistry
	PolicyText string `json:"policyText"`
}

// GetRegistryPolicyInput is GetRegistryPolicy's request.
type GetRegistryPolicyInput struct {
	onRegistry
}

// DeleteRegistryPolicyInput is DeleteRegistryPolicy's request.
type DeleteRegistryPolicyInput struct {
	onRegistry
}

// RegistryPolicyOutput is the answer of PutRegistryPolicy,
// GetRegistryPolicy and DeleteRegistryPolicy: the policy set, read or
// deleted.
type RegistryPolicyOutput struct {
	RegistryID string `json:"registryId"`
	PolicyText string `json:"policyText"`
}

func (o registryOps) out(text string) *RegistryPolicyOutput {
	return &RegistryPolicyOutput{RegistryID: o.reg.account, PolicyText: text}
}

// validate checks policyText's presence and length.
func (in *PutRegistryPolicyInput) validate() error {
	return checkLength("policyText", len(in.PolicyText), 1, maxPolicyText)
}

func (o registryOps) putPolicy(ctx context.Context, _ *call, in *PutRegistryPolicyInput) (*RegistryPolicyOutput, error) {
	if err := o.policies.SetRegistryPolicy(ctx, in.PolicyText); err != nil {
		return nil, err
	}
	return o.out(in.PolicyText), nil
}

func (o registryOps) getPolicy(ctx context.Context, _ *call, _ *GetRegistryPolicyInput) (*RegistryPolicyOutput, error) {
	text, err := o.policies.RegistryPolicy(ctx)
	if err != nil {
		return nil, err
	}
	return o.out(text), nil
}

func (o registryOps) deletePolicy(ctx context.Context, _ *call, _ *DeleteRegistryPolicyInput) (*RegistryPolicyOutput, error) {
	text, err := o.policies.DeleteRegistryPolicy(ctx)
	if err != nil {
		return nil, err
	}
	return o.out(text), nil
}
