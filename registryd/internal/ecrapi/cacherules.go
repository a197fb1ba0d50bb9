package ecrapi

// Pull-through cache rules.

import (
	"context"
	"slices"

	"github.com/berthstore/berth/engine"
)

// cacheRuleOps serve the pull-through cache rule operations.
type cacheRuleOps struct {
	reg   registry
	rules CacheRuleStore
}

// CreatePullThroughCacheRuleInput is CreatePullThroughCacheRule's
// request. Berth pulls from upstream registries anonymously: a request
// with credentials or a role is refused.
type CreatePullThroughCacheRuleInput struct {
	registryRef
	ECRRepositoryPrefix      string `json:"ecrRepositoryPrefix"`
	UpstreamRegistryURL      string `json:"upstreamRegistryUrl"`
	UpstreamRepositoryPrefix string `json:"upstreamRepositoryPrefix"`
	CredentialARN            string `json:"credentialArn"`
	CustomRoleARN            string `json:"customRoleArn"`
}

func (o cacheRuleOps) create(ctx context.Context, _ *call, in *CreatePullThroughCacheRuleInput) (*PullThroughCacheRule, error) {
	if in.CredentialARN != "" || in.CustomRoleARN != "" {
		return nil, errorf(ecrUnsupportedUpstream, "credentialArn and customRoleArn are not supported: Berth pulls from upstream registries anonymously")
	}
	r, err := o.rules.CreatePullThroughCacheRule(ctx, engine.PullThroughCacheRule{
		ECRRepositoryPrefix: in.ECRRepositoryPrefix, UpstreamRegistryURL: in.UpstreamRegistryURL,
		UpstreamRepositoryPrefix: in.UpstreamRepositoryPrefix,
	})
	if err != nil {
		return nil, err
	}
	out := cacheRuleFromEngine(o.reg, r)
	return &out, nil
}

// DescribePullThroughCacheRulesInput is DescribePullThroughCacheRules'
// request: the rules of these prefixes, or all, a page at a time.
type DescribePullThroughCacheRulesInput struct {
	registryRef
	ECRRepositoryPrefixes []string `json:"ecrRepositoryPrefixes"`
	NextToken             string   `json:"nextToken"`
	MaxResults            *int     `json:"maxResults"`
}

// DescribePullThroughCacheRulesOutput is DescribePullThroughCacheRules'
// answer.
type DescribePullThroughCacheRulesOutput struct {
	PullThroughCacheRules []PullThroughCacheRule `json:"pullThroughCacheRules"`
	NextToken             string                 `json:"nextToken,omitempty"`
}

func (o cacheRuleOps) describe(ctx context.Context, _ *call, in *DescribePullThroughCacheRulesInput) (*DescribePullThroughCacheRulesOutput, error) {
	n, err := pageSize(in.MaxResults, 1000)
	if err != nil {
		return nil, err
	}
	rules, err := o.rules.PullThroughCacheRules(ctx)
	if err != nil {
		return nil, err
	}
	if len(in.ECRRepositoryPrefixes) > 0 {
		for _, p := range in.ECRRepositoryPrefixes {
			if !slices.ContainsFunc(rules, func(r engine.PullThroughCacheRule) bool { return r.ECRRepositoryPrefix == p }) {
				return nil, errorf(ecrCacheRuleNotFound, "The pull through cache rule with prefix '%s' does not exist in the registry with id '%s'", truncate(p, 100), o.reg.account)
			}
		}
		rules = slices.DeleteFunc(rules, func(r engine.PullThroughCacheRule) bool {
			return !slices.Contains(in.ECRRepositoryPrefixes, r.ECRRepositoryPrefix)
		})
	}
	page, next, err := paginate(rules, func(r engine.PullThroughCacheRule) string { return r.ECRRepositoryPrefix }, in.NextToken, n)
	if err != nil {
		return nil, err
	}
	out := &DescribePullThroughCacheRulesOutput{PullThroughCacheRules: make([]PullThroughCacheRule, len(page)), NextToken: next}
	for i, r := range page {
		out.PullThroughCacheRules[i] = cacheRuleFromEngine(o.reg, r)
	}
	return out, nil
}

// DeletePullThroughCacheRuleInput is DeletePullThroughCacheRule's
// request.
type DeletePullThroughCacheRuleInput struct {
	registryRef
	ECRRepositoryPrefix string `json:"ecrRepositoryPrefix"`
}

func (o cacheRuleOps) delete(ctx context.Context, _ *call, in *DeletePullThroughCacheRuleInput) (*PullThroughCacheRule, error) {
	r, err := o.rules.DeletePullThroughCacheRule(ctx, in.ECRRepositoryPrefix)
	if err != nil {
		return nil, err
	}
	out := cacheRuleFromEngine(o.reg, r)
	return &out, nil
}
