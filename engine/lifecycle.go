package engine

// Lifecycle policies: storing them, and previewing and applying them
// (evaluation is package gc's pure function).

import (
	"context"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/gc"
)

// PutLifecyclePolicy validates policy (ECR's rules and messages) and sets
// it as repo's lifecycle policy. An invalid policy fails with an error
// wrapping ErrInvalidArgument and a *gc.PolicyError.
func (e *Engine) PutLifecyclePolicy(ctx context.Context, repo, policy string) error {
	if _, err := gc.ParsePolicy(policy); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return e.updateSettings(repo, func(s *RepositorySettings) error {
		s.LifecyclePolicy = policy
		return nil
	})
}

// GetLifecyclePolicy returns repo's lifecycle policy text, or
// ErrLifecyclePolicyNotFound.
func (e *Engine) GetLifecyclePolicy(ctx context.Context, repo string) (string, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return "", err
	}
	r, err := e.loadRepo(repo)
	if err != nil {
		return "", err
	}
	if r.LifecyclePolicy == "" {
		return "", fmt.Errorf("%w: %s", ErrLifecyclePolicyNotFound, repo)
	}
	return r.LifecyclePolicy, nil
}

// DeleteLifecyclePolicy removes repo's lifecycle policy and returns it.
func (e *Engine) DeleteLifecyclePolicy(ctx context.Context, repo string) (string, error) {
	var old string
	err := e.updateSettings(repo, func(s *RepositorySettings) error {
		if s.LifecyclePolicy == "" {
			return fmt.Errorf("%w: %s", ErrLifecyclePolicyNotFound, repo)
		}
		old, s.LifecyclePolicy = s.LifecyclePolicy, ""
		return nil
	})
	return old, err
}

// lifecyclePolicy returns the policy to evaluate for repo: override when
// not empty, else the stored one.
func (e *Engine) lifecyclePolicy(repo, override string) (*gc.Policy, error) {
	text := override
	if text == "" {
		var err error
		if text, err = e.GetLifecyclePolicy(context.Background(), repo); err != nil {
			return nil, err
		}
	} else if _, err := e.loadRepo(repo); err != nil {
		return nil, err
	}
	p, err := gc.ParsePolicy(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return p, nil
}

// lifecyclePlan is the one function preview and apply share: the images
// the policy expires now and every manifest that goes with them.
func (e *Engine) lifecyclePlan(repo string, p *gc.Policy, now time.Time) ([]gc.Expiry, []digest.Digest, error) {
	g, err := gc.LoadGraph(e.db, repo)
	if err != nil {
		return nil, nil, storageErr(err)
	}
	exp := p.Evaluate(g.Images(), now)
	ds := make([]digest.Digest, len(exp))
	for i, x := range exp {
		ds[i] = x.Digest
	}
	return exp, g.Closure(ds), nil
}

// LifecyclePreview returns the images repo's lifecycle policy (or
// policyOverride, when not empty) would expire now, oldest push first,
// with the rule expiring each. It changes nothing.
func (e *Engine) LifecyclePreview(ctx context.Context, repo, policyOverride string) ([]gc.Expiry, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, err
	}
	p, err := e.lifecyclePolicy(repo, policyOverride)
	if err != nil {
		return nil, err
	}
	exp, _, err := e.lifecyclePlan(repo, p, time.Now())
	return exp, err
}

// LifecycleApply expires what LifecyclePreview lists, computed by the same
// function under the repository's lock: each expired image's manifest and
// tags, its referrers, and its index children that nothing else in the
// repository references, in one synced batch. It returns the expired
// images. Their blobs go at the next collection.
func (e *Engine) LifecycleApply(ctx context.Context, repo, policyOverride string) ([]gc.Expiry, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, err
	}
	p, err := e.lifecyclePolicy(repo, policyOverride)
	if err != nil {
		return nil, err
	}
	unlock := e.repoLocks.Lock(repo)
	defer unlock()
	exp, gone, err := e.lifecyclePlan(repo, p, time.Now())
	if err != nil || len(gone) == 0 {
		return exp, err
	}
	b := e.db.NewBatch()
	defer b.Close()
	for _, d := range gone {
		m, err := e.db.ManifestMeta(repo, d)
		if err != nil {
			return nil, storageErr(err)
		}
		if m.Subject != "" {
			if err := b.DeleteReferrer(repo, m.Subject, d); err != nil {
				return nil, storageErr(err)
			}
		}
		if err := b.DeleteManifest(repo, d); err != nil {
			return nil, storageErr(err)
		}
	}
	if err := b.Commit(true); err != nil {
		return nil, storageErr(err)
	}
	perRule := map[int]int{}
	e.gcs.statsMu.Lock()
	if e.gcs.stats.ImagesExpired == nil {
		e.gcs.stats.ImagesExpired = map[int]int64{}
	}
	for _, x := range exp {
		perRule[x.RulePriority]++
		e.gcs.stats.ImagesExpired[x.RulePriority]++
	}
	e.gcs.statsMu.Unlock()
	e.log.Info("lifecycle applied", "repository", repo, "images", len(exp), "manifests", len(gone), "perRule", perRule)
	return exp, nil
}

// applyAllLifecycles applies the policy of every repository that has one.
func (e *Engine) applyAllLifecycles(ctx context.Context) {
	names, err := e.db.ListRepositories("", 0)
	if err != nil {
		e.log.Warn("scheduled lifecycle: listing repositories", "err", err)
		return
	}
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		r, err := e.loadRepo(name)
		if err != nil || r.LifecyclePolicy == "" {
			continue
		}
		if _, err := e.LifecycleApply(ctx, name, ""); err != nil {
			e.log.Warn("scheduled lifecycle failed", "repository", name, "err", err)
		}
	}
}
