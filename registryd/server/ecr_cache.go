package server

// ECR API: pull-through cache rules.

import (
	"context"
	"slices"

	"github.com/berthstore/berth/engine"
)

// ruleStore is what the pull-through cache rule calls need.
type ruleStore interface {
	CreatePullThroughCacheRule(ctx context.Context, r engine.PullThroughCacheRule) (engine.PullThroughCacheRule, error)
	DeletePullThroughCacheRule(ctx context.Context, prefix string) (engine.PullThroughCacheRule, error)
	PullThroughCacheRules(ctx context.Context) ([]engine.PullThroughCacheRule, error)
}

var _ ruleStore = (*engine.Engine)(nil)

// ecrCacheRule is a PullThroughCacheRule of the ECR API.
type ecrCacheRule struct {
	ECRRepositoryPrefix      string  `json:"ecrRepositoryPrefix"`
	UpstreamRegistryURL      string  `json:"upstreamRegistryUrl"`
	UpstreamRepositoryPrefix string  `json:"upstreamRepositoryPrefix,omitempty"`
	RegistryID               string  `json:"registryId"`
	CreatedAt                awsTime `json:"createdAt,omitzero"`
	UpdatedAt                awsTime `json:"updatedAt,omitzero"`
}

func (s *Server) ecrRule(r engine.PullThroughCacheRule) ecrCacheRule {
	return ecrCacheRule{
		ECRRepositoryPrefix: r.ECRRepositoryPrefix, UpstreamRegistryURL: r.UpstreamRegistryURL,
		UpstreamRepositoryPrefix: r.UpstreamRepositoryPrefix, RegistryID: s.ecrAccountID(),
		CreatedAt: awsTime(r.CreatedAt), UpdatedAt: awsTime(r.UpdatedAt),
	}
}

// ruleStoreOf returns the store's rule calls.
func ruleStoreOf(st ecrStore) (ruleStore, error) {
	rs, ok := st.(ruleStore)
	if !ok {
		return nil, ecrErrf(ecrUnknownOperation, "this store has no pull-through cache")
	}
	return rs, nil
}

func ecrCreatePullThroughCacheRule(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		ECRRepositoryPrefix      string `json:"ecrRepositoryPrefix"`
		UpstreamRegistryURL      string `json:"upstreamRegistryUrl"`
		UpstreamRepositoryPrefix string `json:"upstreamRepositoryPrefix"`
		RegistryID               string `json:"registryId"`
		CredentialARN            string `json:"credentialArn"`
		CustomRoleARN            string `json:"customRoleArn"`
	}
	if err := s.decodeRegistryInput(c, &in, &in.RegistryID); err != nil {
		return nil, err
	}
	if in.CredentialARN != "" || in.CustomRoleARN != "" {
		return nil, ecrErrf(ecrUnsupportedUpstream, "credentialArn and customRoleArn are not supported: Berth pulls from upstream registries anonymously")
	}
	rs, err := ruleStoreOf(st)
	if err != nil {
		return nil, err
	}
	r, err := rs.CreatePullThroughCacheRule(c.r.Context(), engine.PullThroughCacheRule{
		ECRRepositoryPrefix: in.ECRRepositoryPrefix, UpstreamRegistryURL: in.UpstreamRegistryURL,
		UpstreamRepositoryPrefix: in.UpstreamRepositoryPrefix,
	})
	if err != nil {
		return nil, err
	}
	return s.ecrRule(r), nil
}

func ecrDescribePullThroughCacheRules(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		RegistryID            string   `json:"registryId"`
		ECRRepositoryPrefixes []string `json:"ecrRepositoryPrefixes"`
		NextToken             string   `json:"nextToken"`
		MaxResults            *int     `json:"maxResults"`
	}
	if err := s.decodeRegistryInput(c, &in, &in.RegistryID); err != nil {
		return nil, err
	}
	n, err := pageSize(in.MaxResults, 1000)
	if err != nil {
		return nil, err
	}
	rs, err := ruleStoreOf(st)
	if err != nil {
		return nil, err
	}
	rules, err := rs.PullThroughCacheRules(c.r.Context())
	if err != nil {
		return nil, err
	}
	if len(in.ECRRepositoryPrefixes) > 0 {
		for _, p := range in.ECRRepositoryPrefixes {
			if !slices.ContainsFunc(rules, func(r engine.PullThroughCacheRule) bool { return r.ECRRepositoryPrefix == p }) {
				return nil, ecrErrf(ecrCacheRuleNotFound, "The pull-through cache rule with prefix '%s' does not exist in the registry with id '%s'", truncate(p, 100), s.ecrAccountID())
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
	list := make([]ecrCacheRule, len(page))
	for i, r := range page {
		list[i] = s.ecrRule(r)
	}
	return withNextToken(map[string]any{"pullThroughCacheRules": list}, next), nil
}

func ecrDeletePullThroughCacheRule(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		ECRRepositoryPrefix string `json:"ecrRepositoryPrefix"`
		RegistryID          string `json:"registryId"`
	}
	if err := s.decodeRegistryInput(c, &in, &in.RegistryID); err != nil {
		return nil, err
	}
	rs, err := ruleStoreOf(st)
	if err != nil {
		return nil, err
	}
	r, err := rs.DeletePullThroughCacheRule(c.r.Context(), in.ECRRepositoryPrefix)
	if err != nil {
		return nil, err
	}
	return s.ecrRule(r), nil
}
