package engine

// A listing's access decisions: the same question about many
// repositories, decided with what they share evaluated once.

import (
	"context"
	"fmt"
	"strings"

	"github.com/berthstore/berth/engine/internal/iam"
)

// AuthorizeEach decides req about each of repositories, as Authorize
// decides req with its Repository set to each name in turn (the same
// outcome, resource and reason), for a listing that filters thousands
// of repositories by what the caller may see. What the questions share
// is gathered once (the caller's IAM identity, the registry policy and
// whether it applies to the action, the clock); per repository only its
// cached repository policy and resource tags (the per-repository access
// cache) and the evaluation against them. req must name no resource of
// its own (Repository, Key, Secret) nor a RepositoryPolicy to decide
// with: such a request is refused with ErrInvalidArgument. The error is
// otherwise for a store that cannot answer.
func (e *Engine) AuthorizeEach(ctx context.Context, req *AccessRequest, repositories []string) ([]Decision, error) {
	if req.Repository != "" || req.Key != "" || req.Secret != "" || req.RepositoryPolicy != nil {
		return nil, fmt.Errorf("%w: AuthorizeEach decides about the repositories it is given; the request names a resource of its own", ErrInvalidArgument)
	}
	out := make([]Decision, len(repositories))
	if uid, ok := req.Principal.Local(); ok {
		one := *req
		for i, repo := range repositories {
			one.Repository = repo
			out[i] = e.authorizeLocal(&one, uid)
		}
		return out, nil
	}
	who, err := req.Principal.iamPrincipal()
	if err != nil {
		for i := range out {
			out[i] = Decision{Resource: "*", reason: "implicitly denied: " + err.Error()}
		}
		return out, nil
	}
	rp, err := e.loadRegistryPolicy()
	if err != nil {
		return nil, err
	}
	registryRefuses := rp.err != nil && !registryPolicyAdminActions[strings.ToLower(req.Action)]
	applies, err := e.registryPolicyApplies(req.Action)
	if err != nil {
		return nil, err
	}
	var registry *iam.Policy
	if applies {
		registry = rp.policy
	}
	repoPolicyAdmin := policyAdminActions[strings.ToLower(req.Action)]
	identity := req.Principal.Identity.policies()
	ir := iam.Request{
		Principal:       who,
		Action:          req.Action,
		SourceIP:        req.SourceIP,
		SecureTransport: req.SecureTransport,
		Time:            e.opts.Clock.Now(),
	}
	for i, repo := range repositories {
		if repo == "" {
			// Authorize takes an empty name for a registry-level
			// question; a listing has none.
			return nil, fmt.Errorf("%w: AuthorizeEach: repository %d has no name", ErrInvalidArgument, i)
		}
		pe, err := e.repositoryAccess(repo)
		if err != nil {
			return nil, err
		}
		var resource [2]*iam.Policy
		if pe.err != nil {
			if !repoPolicyAdmin {
				out[i] = Decision{Outcome: ExplicitDeny, Resource: pe.arn,
					reason: "explicitly denied: " + pe.err.Error() + "; replace it with SetRepositoryPolicy"}
				continue
			}
		} else {
			resource[0] = pe.policy
		}
		if registryRefuses {
			out[i] = Decision{Outcome: ExplicitDeny, Resource: pe.arn,
				reason: "explicitly denied: the stored registry policy cannot be enforced: " + rp.err.Error() + "; replace it with PutRegistryPolicy"}
			continue
		}
		resource[1] = registry
		ir.Resource = pe.arn
		ir.Context = nil
		if pe.tags != nil || req.RequestTags != nil {
			ir.Context = accessContext{resource: pe.tags, request: req.RequestTags}
		}
		d := iam.Evaluate(&ir, identity, resource[:])
		out[i] = Decision{Resource: pe.arn, d: d}
		switch d.Outcome {
		case iam.Allow:
			out[i].Outcome = Allow
		case iam.ExplicitDeny:
			out[i].Outcome = ExplicitDeny
		}
	}
	return out, nil
}
