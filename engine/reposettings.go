package engine

// Repository settings that may change after creation (ECR's
// SetRepositoryPolicy, TagResource, PutImageScanningConfiguration).

import (
	"context"
	"fmt"
	"slices"
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

// TagRepository adds resource tags to repo, replacing the values of keys
// it has already (ECR's TagResource). A repository holds at most 50.
func (e *Engine) TagRepository(ctx context.Context, repo string, tags []ResourceTag) error {
	if len(tags) == 0 {
		return fmt.Errorf("%w: tags is empty", ErrInvalidArgument)
	}
	return e.updateSettings(repo, func(s *RepositorySettings) error {
		for _, t := range tags {
			i := slices.IndexFunc(s.ResourceTags, func(o ResourceTag) bool { return o.Key == t.Key })
			if i >= 0 {
				s.ResourceTags[i].Value = t.Value
			} else {
				s.ResourceTags = append(s.ResourceTags, t)
			}
		}
		return nil
	})
}

// UntagRepository removes the resource tags with these keys from repo;
// keys it does not have are ignored (ECR's UntagResource).
func (e *Engine) UntagRepository(ctx context.Context, repo string, keys []string) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: tagKeys is empty", ErrInvalidArgument)
	}
	return e.updateSettings(repo, func(s *RepositorySettings) error {
		s.ResourceTags = slices.DeleteFunc(s.ResourceTags, func(t ResourceTag) bool { return slices.Contains(keys, t.Key) })
		return nil
	})
}

// SetScanOnPush changes whether repo's images are scanned after each push
// (ECR's PutImageScanningConfiguration).
func (e *Engine) SetScanOnPush(ctx context.Context, repo string, scanOnPush bool) error {
	return e.updateSettings(repo, func(s *RepositorySettings) error {
		s.ScanOnPush = scanOnPush
		return nil
	})
}
