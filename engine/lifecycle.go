package engine

// Lifecycle policies: storing them, and previewing and applying them
// (evaluation is package gc's pure function).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine/internal/events"
	"github.com/berthstore/berth/gc"
)

// ErrInvalidPolicy is wrapped, with ErrInvalidArgument and a
// *LifecyclePolicyError, by every error about a lifecycle policy that does
// not validate.
var ErrInvalidPolicy = errors.New("engine: invalid lifecycle policy")

// LifecyclePolicyError is a lifecycle policy validation failure. Its Error
// text is the message ECR answers (InvalidParameterException), so that the
// ECR API and the command line can show it unchanged; it unwraps to
// ErrInvalidPolicy.
type LifecyclePolicyError struct {
	// Message is ECR's message for the failure.
	Message string
}

// Error returns ECR's message for the failure.
func (e *LifecyclePolicyError) Error() string { return e.Message }

// Unwrap returns ErrInvalidPolicy.
func (e *LifecyclePolicyError) Unwrap() error { return ErrInvalidPolicy }

// policyErr translates an error of gc.ParsePolicy.
func policyErr(err error) error {
	var pe *gc.PolicyError
	if errors.As(err, &pe) {
		err = &LifecyclePolicyError{Message: pe.Error()}
	}
	return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
}

// Expiry is one image a lifecycle policy expires and the rule that
// expires it. Its JSON is ECR's lifecycle policy preview result.
type Expiry struct {
	// Digest is the image's manifest digest.
	Digest digest.Digest `json:"imageDigest"`
	// Tags are the image's tags, any order.
	Tags []string `json:"imageTags,omitempty"`
	// PushedAt is when the image was pushed.
	PushedAt time.Time `json:"imagePushedAt"`
	// LastPulledAt is when it was last pulled; zero if never.
	LastPulledAt time.Time `json:"lastRecordedPullTime,omitzero"`
	// RulePriority is the priority of the rule that expires the image
	// (ECR's appliedRulePriority).
	RulePriority int `json:"appliedRulePriority"`
	// Description is that rule's description.
	Description string `json:"description,omitempty"`
}

func expiriesOf(exp []gc.Expiry) []Expiry {
	if exp == nil {
		return nil
	}
	out := make([]Expiry, len(exp))
	for i, x := range exp {
		out[i] = Expiry{Digest: x.Digest, Tags: x.Tags, PushedAt: x.PushedAt, LastPulledAt: x.LastPulledAt,
			RulePriority: x.RulePriority, Description: x.Description}
	}
	return out
}

// PutLifecyclePolicy validates policy (ECR's rules and messages) and sets
// it as repo's lifecycle policy. An invalid policy fails with an error
// wrapping ErrInvalidArgument, ErrInvalidPolicy and a
// *LifecyclePolicyError.
func (e *Engine) PutLifecyclePolicy(ctx context.Context, repo, policy string) error {
	if _, err := gc.ParsePolicy(policy); err != nil {
		return policyErr(err)
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
		return nil, policyErr(err)
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
// with the rule expiring each. It changes nothing. An invalid policy fails
// as PutLifecyclePolicy says.
func (e *Engine) LifecyclePreview(ctx context.Context, repo, policyOverride string) ([]Expiry, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, err
	}
	p, err := e.lifecyclePolicy(repo, policyOverride)
	if err != nil {
		return nil, err
	}
	exp, _, err := e.lifecyclePlan(repo, p, e.clock.Now())
	return expiriesOf(exp), err
}

// LifecycleApply expires what LifecyclePreview lists, computed by the same
// function under the repository's lock: each expired image's manifest and
// tags, its referrers, and its index children that nothing else in the
// repository references, in one synced batch, with the time of the
// evaluation (Repository.LifecycleEvaluatedAt, written even when nothing
// expires). It returns the expired images. Their blobs go at the next
// collection.
func (e *Engine) LifecycleApply(ctx context.Context, repo, policyOverride string) ([]Expiry, error) {
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
	out, err := e.applyLifecycle(ctx, repo, p, nil)
	return out.Expired, err
}

// lifecycleOutcome is what applying a repository's policy did.
type lifecycleOutcome struct {
	// Expired are the images the policy expired.
	Expired []Expiry
	// Manifests counts the manifests deleted: the images, their
	// referrers and the index children that went with them.
	Manifests int
	// Archived counts the images the policy moved to the archive storage
	// class.
	Archived int
}

// applyLifecycle applies policy p to repo under the repository's lock: one
// synced batch. With run set (a scheduled run), each expired image is first
// recorded in the audit log, naming the rule, and the batch also records
// the run's progress (the repository as its cursor), so that a run cut
// short resumes after the last repository it finished.
func (e *Engine) applyLifecycle(ctx context.Context, repo string, p *gc.Policy, run *lifecycleRun) (lifecycleOutcome, error) {
	unlock := e.repoLocks.Lock(repo)
	defer unlock()
	now := e.clock.Now()
	exp, gone, err := e.lifecyclePlan(repo, p, now)
	out := lifecycleOutcome{Expired: expiriesOf(exp), Manifests: len(gone)}
	if err != nil {
		return out, err
	}
	r, err := e.loadRepo(repo)
	if err != nil {
		return lifecycleOutcome{}, err
	}
	b := e.db.NewBatch()
	defer b.Close()
	// The evaluation is recorded, whatever it expires (ECR's
	// lastEvaluatedAt), in the batch that expires it; the batch is synced
	// only when it expires something (a lost evaluation time is harmless).
	r.LifecycleEvaluatedAt = now.UTC()
	if err := e.putRepo(b, &r.Repository); err != nil {
		return lifecycleOutcome{}, storageErr(err)
	}
	evq := e.events(b)
	for _, d := range gone {
		m, err := e.db.ManifestMeta(repo, d)
		if err != nil {
			return lifecycleOutcome{}, storageErr(err)
		}
		tags, err := e.db.TagsOf(repo, d)
		if err != nil {
			return lifecycleOutcome{}, storageErr(err)
		}
		if err := evq.imageActions(repo, events.ActionDelete, d, m.MediaType, m.ArtifactType, tags, events.CauseLifecycle); err != nil {
			return lifecycleOutcome{}, err
		}
		if m.Subject != "" {
			if err := b.DeleteReferrer(repo, m.Subject, d); err != nil {
				return lifecycleOutcome{}, storageErr(err)
			}
		}
		if err := b.DeleteManifest(repo, d); err != nil {
			return lifecycleOutcome{}, storageErr(err)
		}
	}
	if run != nil {
		for _, x := range out.Expired {
			if err := run.recordExpiry(ctx, repo, x); err != nil {
				return lifecycleOutcome{}, fmt.Errorf("cannot record the expiry of %s@%s in the audit log, so it is not made: %w", repo, x.Digest, err)
			}
		}
		e.gcs.schedMu.Lock()
		defer e.gcs.schedMu.Unlock()
		if err := run.advance(b, repo); err != nil {
			return lifecycleOutcome{}, err
		}
	}
	if err := b.Commit(len(gone) > 0); err != nil {
		return lifecycleOutcome{}, storageErr(err)
	}
	evq.committed()
	if len(gone) == 0 {
		return out, nil
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
	return out, nil
}
