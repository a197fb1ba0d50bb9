package ecrapi

// Lifecycle policies and their previews.

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// lifecycleOps serve the lifecycle policy operations.
type lifecycleOps struct {
	reg       registry
	repos     RepositoryStore
	lifecycle LifecycleStore
	previews  *previews
}

// PutLifecyclePolicyInput is PutLifecyclePolicy's request.
type PutLifecyclePolicyInput struct {
	repositoryRef
	LifecyclePolicyText string `json:"lifecyclePolicyText"`
}

// GetLifecyclePolicyInput is GetLifecyclePolicy's request.
type GetLifecyclePolicyInput struct {
	repositoryRef
}

// DeleteLifecyclePolicyInput is DeleteLifecyclePolicy's request.
type DeleteLifecyclePolicyInput struct {
	repositoryRef
}

// LifecyclePolicyOutput is the answer of PutLifecyclePolicy,
// GetLifecyclePolicy and DeleteLifecyclePolicy: the policy put, read or
// deleted, and (Get and Delete) when it was last evaluated, left out
// when never.
type LifecyclePolicyOutput struct {
	RegistryID          string  `json:"registryId"`
	RepositoryName      string  `json:"repositoryName"`
	LifecyclePolicyText string  `json:"lifecyclePolicyText"`
	LastEvaluatedAt     awsTime `json:"lastEvaluatedAt,omitzero"`
}

func (o lifecycleOps) out(repo, text string) *LifecyclePolicyOutput {
	return &LifecyclePolicyOutput{RegistryID: o.reg.account, RepositoryName: repo, LifecyclePolicyText: text}
}

// evaluated is out with the time repo's policy was last evaluated.
func (o lifecycleOps) evaluated(ctx context.Context, repo, text string) (*LifecyclePolicyOutput, error) {
	out := o.out(repo, text)
	r, err := o.repos.Repository(ctx, repo)
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, repo)
	}
	out.LastEvaluatedAt = awsTime(r.LifecycleEvaluatedAt)
	return out, nil
}

// The lengths ECR allows a lifecycle policy's text.
const (
	minLifecyclePolicyText = 100
	maxLifecyclePolicyText = 30720
)

// validate checks the policy text's presence and length.
func (in *PutLifecyclePolicyInput) validate() error {
	return checkLength("lifecyclePolicyText", len(in.LifecyclePolicyText), minLifecyclePolicyText, maxLifecyclePolicyText)
}

// validate checks the policy text's length, when one is given.
func (in *StartLifecyclePolicyPreviewInput) validate() error {
	if in.LifecyclePolicyText == "" {
		return nil
	}
	return checkLength("lifecyclePolicyText", len(in.LifecyclePolicyText), minLifecyclePolicyText, maxLifecyclePolicyText)
}

func (o lifecycleOps) put(ctx context.Context, _ *call, in *PutLifecyclePolicyInput) (*LifecyclePolicyOutput, error) {
	if err := o.lifecycle.PutLifecyclePolicy(ctx, in.RepositoryName, in.LifecyclePolicyText); err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	return o.out(in.RepositoryName, in.LifecyclePolicyText), nil
}

func (o lifecycleOps) get(ctx context.Context, _ *call, in *GetLifecyclePolicyInput) (*LifecyclePolicyOutput, error) {
	p, err := o.lifecycle.GetLifecyclePolicy(ctx, in.RepositoryName)
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	return o.evaluated(ctx, in.RepositoryName, p)
}

func (o lifecycleOps) delete(ctx context.Context, _ *call, in *DeleteLifecyclePolicyInput) (*LifecyclePolicyOutput, error) {
	p, err := o.lifecycle.DeleteLifecyclePolicy(ctx, in.RepositoryName)
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	return o.evaluated(ctx, in.RepositoryName, p)
}

// preview is a finished preview, kept for GetLifecyclePolicyPreview.
type preview struct {
	policy  string
	results []expiry
}

// maxPreviews bounds the previews kept (one a repository, the oldest
// started dropped first).
const maxPreviews = 1024

// previews are the finished previews, by repository, with the order they
// were started in. A restart forgets them, as ECR's expire.
type previews struct {
	mu    sync.Mutex
	last  map[string]*preview
	order []string
}

// put keeps p as repo's preview.
func (ps *previews) put(repo string, p *preview) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.last == nil {
		ps.last = map[string]*preview{}
	}
	if _, ok := ps.last[repo]; !ok {
		ps.order = append(ps.order, repo)
	}
	ps.last[repo] = p
	for len(ps.order) > maxPreviews {
		delete(ps.last, ps.order[0])
		ps.order = ps.order[1:]
	}
}

// get returns repo's preview, or nil.
func (ps *previews) get(repo string) *preview {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.last[repo]
}

// StartLifecyclePolicyPreviewInput is StartLifecyclePolicyPreview's
// request: the policy to preview, or the repository's own.
type StartLifecyclePolicyPreviewInput struct {
	repositoryRef
	LifecyclePolicyText string `json:"lifecyclePolicyText"`
}

// StartLifecyclePolicyPreviewOutput is StartLifecyclePolicyPreview's
// answer. The preview is complete when it answers.
type StartLifecyclePolicyPreviewOutput struct {
	RegistryID          string `json:"registryId"`
	RepositoryName      string `json:"repositoryName"`
	LifecyclePolicyText string `json:"lifecyclePolicyText"`
	Status              string `json:"status"`
}

func (o lifecycleOps) startPreview(ctx context.Context, _ *call, in *StartLifecyclePolicyPreviewInput) (*StartLifecyclePolicyPreviewOutput, error) {
	policy := in.LifecyclePolicyText
	if policy == "" {
		p, err := o.lifecycle.GetLifecyclePolicy(ctx, in.RepositoryName)
		if err != nil {
			return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
		}
		policy = p
	}
	// The preview is computed now: it reads only the index, and a
	// repository of 10,000 images takes milliseconds.
	exp, err := o.lifecycle.LifecyclePreview(ctx, in.RepositoryName, policy)
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	o.previews.put(in.RepositoryName, &preview{policy: policy, results: exp})
	return &StartLifecyclePolicyPreviewOutput{
		RegistryID: o.reg.account, RepositoryName: in.RepositoryName,
		LifecyclePolicyText: policy, Status: "COMPLETE",
	}, nil
}

// GetLifecyclePolicyPreviewInput is GetLifecyclePolicyPreview's request:
// the results for some images, or a page of them all.
type GetLifecyclePolicyPreviewInput struct {
	repositoryRef
	ImageIDs   []ImageIdentifier `json:"imageIds"`
	NextToken  string            `json:"nextToken"`
	MaxResults *int              `json:"maxResults"`
	Filter     *TagStatusFilter  `json:"filter"`
}

// LifecyclePolicyRuleAction is what a rule does to an image.
type LifecyclePolicyRuleAction struct {
	Type string `json:"type"`
}

// LifecyclePolicyPreviewResult is an image a preview expires.
type LifecyclePolicyPreviewResult struct {
	ImageTags           []string                  `json:"imageTags,omitempty"`
	ImageDigest         string                    `json:"imageDigest"`
	ImagePushedAt       awsTime                   `json:"imagePushedAt,omitzero"`
	Action              LifecyclePolicyRuleAction `json:"action"`
	AppliedRulePriority int                       `json:"appliedRulePriority"`
}

// LifecyclePolicyPreviewSummary counts what a preview expires.
type LifecyclePolicyPreviewSummary struct {
	ExpiringImageTotalCount int `json:"expiringImageTotalCount"`
}

// GetLifecyclePolicyPreviewOutput is GetLifecyclePolicyPreview's answer.
type GetLifecyclePolicyPreviewOutput struct {
	RegistryID          string                         `json:"registryId"`
	RepositoryName      string                         `json:"repositoryName"`
	LifecyclePolicyText string                         `json:"lifecyclePolicyText"`
	Status              string                         `json:"status"`
	NextToken           string                         `json:"nextToken,omitempty"`
	PreviewResults      []LifecyclePolicyPreviewResult `json:"previewResults"`
	Summary             LifecyclePolicyPreviewSummary  `json:"summary"`
}

func (o lifecycleOps) getPreview(ctx context.Context, _ *call, in *GetLifecyclePolicyPreviewInput) (*GetLifecyclePolicyPreviewOutput, error) {
	if _, err := o.repos.Repository(ctx, in.RepositoryName); err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	p := o.previews.get(in.RepositoryName)
	if p == nil {
		return nil, errorf(ecrLifecyclePreviewNotFound, "Lifecycle policy preview does not exist for the repository with name '%s' in the registry with id '%s'", in.RepositoryName, o.reg.account)
	}
	n, err := pageSize(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	var all []LifecyclePolicyPreviewResult
	for _, x := range p.results {
		if ok, err := in.Filter.keep(len(x.Tags)); err != nil {
			return nil, err
		} else if !ok {
			continue
		}
		if len(in.ImageIDs) > 0 && !slices.ContainsFunc(in.ImageIDs, func(id ImageIdentifier) bool {
			return string(x.Digest) == id.ImageDigest || (id.ImageTag != "" && slices.Contains(x.Tags, id.ImageTag))
		}) {
			continue
		}
		tags := slices.Clone(x.Tags)
		slices.Sort(tags)
		all = append(all, LifecyclePolicyPreviewResult{ImageTags: tags, ImageDigest: string(x.Digest), ImagePushedAt: awsTime(x.PushedAt),
			Action: LifecyclePolicyRuleAction{Type: "EXPIRE"}, AppliedRulePriority: x.RulePriority})
	}
	slices.SortFunc(all, func(a, b LifecyclePolicyPreviewResult) int { return strings.Compare(a.ImageDigest, b.ImageDigest) })
	page, next, err := paginate(all, func(r LifecyclePolicyPreviewResult) string { return r.ImageDigest }, in.NextToken, n)
	if err != nil {
		return nil, err
	}
	return &GetLifecyclePolicyPreviewOutput{
		RegistryID: o.reg.account, RepositoryName: in.RepositoryName,
		LifecyclePolicyText: p.policy, Status: "COMPLETE", NextToken: next,
		PreviewResults: append([]LifecyclePolicyPreviewResult{}, page...),
		Summary:        LifecyclePolicyPreviewSummary{ExpiringImageTotalCount: len(p.results)},
	}, nil
}
