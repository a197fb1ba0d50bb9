package ecrapi

// Lifecycle policies and their previews.

import (
	"context"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
)

// lifecycleOps serve the lifecycle policy operations.
type lifecycleOps struct {
	reg       registry
	repos     RepositoryStore
	lifecycle LifecycleStore
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

// previewWait bounds how long StartLifecyclePolicyPreview waits for its
// evaluation: a repository evaluated within it answers COMPLETE, a larger
// one IN_PROGRESS (as ECR always does), and GetLifecyclePolicyPreview
// reads it later. A bound on an answer's latency, on the system's clock.
const previewWait = 2 * time.Second

// maxPreviewImageIDs bounds GetLifecyclePolicyPreview's imageIds (the ECR
// API reference: 1 to 100).
const maxPreviewImageIDs = 100

// StartLifecyclePolicyPreviewInput is StartLifecyclePolicyPreview's
// request: the policy to preview, or the repository's own.
type StartLifecyclePolicyPreviewInput struct {
	repositoryRef
	LifecyclePolicyText string `json:"lifecyclePolicyText"`
}

// StartLifecyclePolicyPreviewOutput is StartLifecyclePolicyPreview's
// answer: COMPLETE (or FAILED) when the preview was evaluated within
// previewWait, else IN_PROGRESS.
type StartLifecyclePolicyPreviewOutput struct {
	RegistryID          string `json:"registryId"`
	RepositoryName      string `json:"repositoryName"`
	LifecyclePolicyText string `json:"lifecyclePolicyText"`
	Status              string `json:"status"`
}

func (o lifecycleOps) startPreview(ctx context.Context, _ *call, in *StartLifecyclePolicyPreviewInput) (*StartLifecyclePolicyPreviewOutput, error) {
	wait, cancel := context.WithTimeout(ctx, previewWait)
	defer cancel()
	p, err := o.lifecycle.StartLifecyclePolicyPreview(wait, in.RepositoryName, in.LifecyclePolicyText)
	if errors.Is(err, engine.ErrLifecyclePreviewInProgress) {
		return nil, errorf(ecrLifecyclePreviewInProgress, "The previous lifecycle policy preview request for the repository '%s' in the registry with id '%s' has not completed. Wait and try again.", in.RepositoryName, o.reg.account)
	}
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	return &StartLifecyclePolicyPreviewOutput{
		RegistryID: o.reg.account, RepositoryName: in.RepositoryName,
		LifecyclePolicyText: p.Policy, Status: p.Status,
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
	Type               string `json:"type"`
	TargetStorageClass string `json:"targetStorageClass,omitempty"`
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

// GetLifecyclePolicyPreviewOutput is GetLifecyclePolicyPreview's answer:
// results and summary only when the preview is COMPLETE.
type GetLifecyclePolicyPreviewOutput struct {
	RegistryID          string                         `json:"registryId"`
	RepositoryName      string                         `json:"repositoryName"`
	LifecyclePolicyText string                         `json:"lifecyclePolicyText"`
	Status              string                         `json:"status"`
	NextToken           string                         `json:"nextToken,omitempty"`
	PreviewResults      []LifecyclePolicyPreviewResult `json:"previewResults"`
	Summary             *LifecyclePolicyPreviewSummary `json:"summary,omitempty"`
}

// checkPreviewInput refuses what the ECR API reference does not allow:
// imageIds outside 1 to 100, or with nextToken or maxResults; an image id
// with neither digest nor tag; an unknown tagStatus; maxResults outside 1
// to 100. It returns the page size.
func checkPreviewInput(in *GetLifecyclePolicyPreviewInput) (int, error) {
	n, err := pageSize(in.MaxResults, 100)
	if err != nil {
		return 0, err
	}
	if _, err := in.Filter.keep(0); err != nil {
		return 0, err
	}
	if in.ImageIDs == nil {
		return n, nil
	}
	if len(in.ImageIDs) == 0 || len(in.ImageIDs) > maxPreviewImageIDs {
		return 0, errorf(ecrInvalidParameter, "imageIds must hold 1 to %d image identifiers", maxPreviewImageIDs)
	}
	if in.NextToken != "" || in.MaxResults != nil {
		return 0, errorf(ecrInvalidParameter, "nextToken and maxResults cannot be used with imageIds")
	}
	for _, id := range in.ImageIDs {
		if id.ImageDigest == "" && id.ImageTag == "" {
			return 0, errorf(ecrInvalidParameter, "an image identifier needs an imageDigest or an imageTag")
		}
	}
	return n, nil
}

func (o lifecycleOps) getPreview(ctx context.Context, _ *call, in *GetLifecyclePolicyPreviewInput) (*GetLifecyclePolicyPreviewOutput, error) {
	n, err := checkPreviewInput(in)
	if err != nil {
		return nil, err
	}
	var after digest.Digest
	if in.NextToken != "" {
		last, err := parsePageToken(in.NextToken)
		if err != nil {
			return nil, err
		}
		after = digest.Digest(last)
	}
	page := []LifecyclePolicyPreviewResult{}
	more := false
	p, err := o.lifecycle.LifecyclePolicyPreview(ctx, in.RepositoryName, after, func(r engine.LifecyclePreviewResult) error {
		if ok, _ := in.Filter.keep(len(r.Tags)); !ok {
			return nil
		}
		if in.ImageIDs != nil && !slices.ContainsFunc(in.ImageIDs, func(id ImageIdentifier) bool {
			return (id.ImageDigest == "" || id.ImageDigest == string(r.Digest)) && (id.ImageTag == "" || slices.Contains(r.Tags, id.ImageTag))
		}) {
			return nil
		}
		if in.ImageIDs == nil && len(page) == n {
			more = true
			return io.EOF
		}
		page = append(page, LifecyclePolicyPreviewResult{
			ImageTags: r.Tags, ImageDigest: string(r.Digest), ImagePushedAt: awsTime(r.PushedAt),
			Action:              LifecyclePolicyRuleAction{Type: r.Action, TargetStorageClass: r.TargetStorageClass},
			AppliedRulePriority: r.RulePriority,
		})
		return nil
	})
	if errors.Is(err, engine.ErrLifecyclePreviewNotFound) {
		return nil, errorf(ecrLifecyclePreviewNotFound, "Lifecycle policy preview does not exist for the repository with name '%s' in the registry with id '%s'", in.RepositoryName, o.reg.account)
	}
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	out := &GetLifecyclePolicyPreviewOutput{
		RegistryID: o.reg.account, RepositoryName: in.RepositoryName,
		LifecyclePolicyText: p.Policy, Status: p.Status, PreviewResults: page,
	}
	if p.Status == engine.PreviewComplete {
		out.Summary = &LifecyclePolicyPreviewSummary{ExpiringImageTotalCount: p.ExpiringImages}
	}
	if more {
		out.NextToken = pageToken(page[len(page)-1].ImageDigest)
	}
	return out, nil
}
