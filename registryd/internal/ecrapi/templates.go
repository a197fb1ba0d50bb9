package ecrapi

// Repository creation templates.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// templateOps serve the creation template operations.
type templateOps struct {
	reg       registry
	templates TemplateStore
}

// TemplateInput is the request of CreateRepositoryCreationTemplate and
// UpdateRepositoryCreationTemplate: the whole template (an update
// replaces it, as ECR's does).
type TemplateInput struct {
	onRegistry
	Prefix                             string                              `json:"prefix"`
	Description                        string                              `json:"description"`
	EncryptionConfiguration            *EncryptionConfiguration            `json:"encryptionConfiguration"`
	ResourceTags                       []Tag                               `json:"resourceTags"`
	ImageTagMutability                 string                              `json:"imageTagMutability"`
	ImageTagMutabilityExclusionFilters []ImageTagMutabilityExclusionFilter `json:"imageTagMutabilityExclusionFilters"`
	RepositoryPolicy                   string                              `json:"repositoryPolicy"`
	LifecyclePolicy                    string                              `json:"lifecyclePolicy"`
	AppliedFor                         []string                            `json:"appliedFor"`
	CustomRoleARN                      string                              `json:"customRoleArn"`
}

// extraAccess: a template that keys the repositories it creates with a
// KMS key needs kms:CreateGrant and kms:DescribeKey on it, as in ECR.
func (in *TemplateInput) extraAccess() []authz.Access {
	if in.EncryptionConfiguration == nil {
		return nil
	}
	return authz.KeyAccess(in.EncryptionConfiguration.KMSKey)
}

// validate refuses what Berth would store and not act on: KMS_DSSE
// (dual-layer encryption).
func (in *TemplateInput) validate() error {
	if in.Prefix == "" {
		return invalidParameter("prefix", mustNotBeNull)
	}
	if err := checkMutability(in.ImageTagMutability); err != nil {
		return err
	}
	return checkEncryption("a repository creation template", in.EncryptionConfiguration)
}

// toEngine is the template the input describes.
func (in *TemplateInput) toEngine() engine.CreationTemplate {
	t := engine.CreationTemplate{
		Prefix: in.Prefix, Description: in.Description, AppliedFor: in.AppliedFor, CustomRoleARN: in.CustomRoleARN,
		RepositorySettings: engine.RepositorySettings{
			TagMutability:           in.ImageTagMutability,
			TagMutabilityExclusions: tagFiltersToEngine(in.ImageTagMutabilityExclusionFilters),
			LifecyclePolicy:         in.LifecyclePolicy,
			RepositoryPolicy:        in.RepositoryPolicy,
			ResourceTags:            tagsToEngine(in.ResourceTags),
		},
	}
	if in.EncryptionConfiguration != nil {
		t.Encryption = encryptionToEngine(*in.EncryptionConfiguration)
	}
	return t
}

// TemplateOutput is the answer of CreateRepositoryCreationTemplate,
// UpdateRepositoryCreationTemplate and DeleteRepositoryCreationTemplate:
// the template as stored (or as it was).
type TemplateOutput struct {
	RegistryID                 string                     `json:"registryId"`
	RepositoryCreationTemplate RepositoryCreationTemplate `json:"repositoryCreationTemplate"`
}

// byPrefix returns the stored template with this prefix.
func (o templateOps) byPrefix(ctx context.Context, prefix string) (engine.CreationTemplate, error) {
	ts, err := o.templates.CreationTemplates(ctx)
	if err != nil {
		return engine.CreationTemplate{}, err
	}
	p := normalizePrefix(prefix)
	for _, t := range ts {
		if t.Prefix == p {
			return t, nil
		}
	}
	return engine.CreationTemplate{}, fmt.Errorf("%w: prefix %q", engine.ErrTemplateNotFound, prefix)
}

// normalizePrefix is a prefix as the engine stores it: without a
// trailing slash, ROOT as it is.
func normalizePrefix(p string) string {
	if p != engine.RootPrefix {
		p = strings.TrimSuffix(p, "/")
	}
	return p
}

// put stores a template with put and answers it as stored.
func (o templateOps) put(ctx context.Context, in *TemplateInput, put func(context.Context, engine.CreationTemplate) error) (*TemplateOutput, error) {
	if err := put(ctx, in.toEngine()); err != nil {
		return nil, err
	}
	t, err := o.byPrefix(ctx, in.Prefix)
	if err != nil {
		return nil, err
	}
	return &TemplateOutput{RegistryID: o.reg.account, RepositoryCreationTemplate: templateFromEngine(t)}, nil
}

func (o templateOps) create(ctx context.Context, _ *call, in *TemplateInput) (*TemplateOutput, error) {
	return o.put(ctx, in, o.templates.CreateCreationTemplate)
}

// update replaces the template, as ECR's UpdateRepositoryCreationTemplate
// does; appliedFor, which ECR's update does not require, keeps the
// template's scenarios when it is left out.
func (o templateOps) update(ctx context.Context, _ *call, in *TemplateInput) (*TemplateOutput, error) {
	if len(in.AppliedFor) == 0 {
		old, err := o.byPrefix(ctx, in.Prefix)
		if err != nil {
			return nil, err
		}
		in.AppliedFor = old.AppliedFor
	}
	return o.put(ctx, in, o.templates.UpdateCreationTemplate)
}

// DeleteRepositoryCreationTemplateInput is
// DeleteRepositoryCreationTemplate's request.
type DeleteRepositoryCreationTemplateInput struct {
	onRegistry
	Prefix string `json:"prefix"`
}

func (o templateOps) delete(ctx context.Context, _ *call, in *DeleteRepositoryCreationTemplateInput) (*TemplateOutput, error) {
	t, err := o.byPrefix(ctx, in.Prefix)
	if err != nil {
		return nil, err
	}
	if err := o.templates.DeleteCreationTemplate(ctx, in.Prefix); err != nil {
		return nil, err
	}
	return &TemplateOutput{RegistryID: o.reg.account, RepositoryCreationTemplate: templateFromEngine(t)}, nil
}

// DescribeRepositoryCreationTemplatesInput is
// DescribeRepositoryCreationTemplates' request: the templates of these
// prefixes, or all, a page at a time.
type DescribeRepositoryCreationTemplatesInput struct {
	onRegistry
	Prefixes   []string `json:"prefixes"`
	NextToken  string   `json:"nextToken"`
	MaxResults *int     `json:"maxResults"`
}

// DescribeRepositoryCreationTemplatesOutput is
// DescribeRepositoryCreationTemplates' answer.
type DescribeRepositoryCreationTemplatesOutput struct {
	RegistryID                  string                       `json:"registryId"`
	RepositoryCreationTemplates []RepositoryCreationTemplate `json:"repositoryCreationTemplates"`
	NextToken                   string                       `json:"nextToken,omitempty"`
}

func (o templateOps) describe(ctx context.Context, _ *call, in *DescribeRepositoryCreationTemplatesInput) (*DescribeRepositoryCreationTemplatesOutput, error) {
	n, err := pageSize(in.MaxResults, 1000)
	if err != nil {
		return nil, err
	}
	ts, err := o.templates.CreationTemplates(ctx)
	if err != nil {
		return nil, err
	}
	if len(in.Prefixes) > 0 {
		want := map[string]bool{}
		for _, p := range in.Prefixes {
			want[normalizePrefix(p)] = true
		}
		ts = slices.DeleteFunc(ts, func(t engine.CreationTemplate) bool { return !want[t.Prefix] })
	}
	page, next, err := paginate(ts, func(t engine.CreationTemplate) string { return t.Prefix }, in.NextToken, n)
	if err != nil {
		return nil, err
	}
	out := &DescribeRepositoryCreationTemplatesOutput{
		RegistryID: o.reg.account, NextToken: next,
		RepositoryCreationTemplates: make([]RepositoryCreationTemplate, len(page)),
	}
	for i, t := range page {
		out.RepositoryCreationTemplates[i] = templateFromEngine(t)
	}
	return out, nil
}
