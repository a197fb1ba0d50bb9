package ecrapi

// Resource tags: the AWS tags on a repository, addressed by its ARN.

import (
	"context"
	"errors"
	"strings"

	"github.com/berthstore/berth/registryd/internal/authz"
)

// tagOps serve the resource tag operations.
type tagOps struct {
	reg  registry
	tags ResourceTagStore
}

// resourceRef is the part of an input that names a repository by its
// ARN: the call acts on it.
type resourceRef struct {
	ResourceARN string `json:"resourceArn"`
}

func (r resourceRef) resources(g registry) ([]authz.Resource, error) {
	repo, err := g.repositoryFromARN(r.ResourceARN)
	if err != nil {
		return nil, err
	}
	return []authz.Resource{authz.Repository(repo)}, nil
}

// repository is the repository the (validated) ARN names.
func (r resourceRef) repository(g registry) string {
	repo, _ := g.repositoryFromARN(r.ResourceARN)
	return repo
}

// TagResourceInput is TagResource's request.
type TagResourceInput struct {
	resourceRef
	Tags []Tag `json:"tags"`
}

func (in *TagResourceInput) requestTags() map[string]string { return requestTagsOf(in.Tags) }

// TagResourceOutput is TagResource's answer (empty).
type TagResourceOutput struct{}

func (o tagOps) tag(ctx context.Context, _ *call, in *TagResourceInput) (*TagResourceOutput, error) {
	repo := in.repository(o.reg)
	if err := o.tags.TagRepository(ctx, repo, tagsToEngine(in.Tags)); err != nil {
		return nil, tagError(renameResourceTags(o.reg.repositoryNotFound(err, repo)))
	}
	return &TagResourceOutput{}, nil
}

// UntagResourceInput is UntagResource's request.
type UntagResourceInput struct {
	resourceRef
	TagKeys []string `json:"tagKeys"`
}

// UntagResourceOutput is UntagResource's answer (empty).
type UntagResourceOutput struct{}

func (o tagOps) untag(ctx context.Context, _ *call, in *UntagResourceInput) (*UntagResourceOutput, error) {
	repo := in.repository(o.reg)
	if err := o.tags.UntagRepository(ctx, repo, in.TagKeys); err != nil {
		return nil, tagError(o.reg.repositoryNotFound(err, repo))
	}
	return &UntagResourceOutput{}, nil
}

// ListTagsForResourceInput is ListTagsForResource's request.
type ListTagsForResourceInput struct {
	resourceRef
}

// ListTagsForResourceOutput is ListTagsForResource's answer: the tags, an
// empty list (not null) for none, as ECR answers.
type ListTagsForResourceOutput struct {
	Tags []Tag `json:"tags"`
}

func (o tagOps) list(ctx context.Context, _ *call, in *ListTagsForResourceInput) (*ListTagsForResourceOutput, error) {
	repo := in.repository(o.reg)
	r, err := o.tags.Repository(ctx, repo)
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, repo)
	}
	tags := tagsFromEngine(r.ResourceTags)
	if tags == nil {
		tags = []Tag{}
	}
	return &ListTagsForResourceOutput{Tags: tags}, nil
}

// tagError words a refused resource tag change as ECR does: too many
// tags is TooManyTagsException, any other refused tag
// InvalidTagParameterException.
func tagError(err error) error {
	ae := toError(err)
	if ae.Type != ecrInvalidParameter || !strings.Contains(ae.Msg, "'tags") && !strings.Contains(ae.Msg, "'tagKeys'") {
		return err
	}
	if strings.Contains(ae.Msg, "at most") {
		return &apiError{Type: ecrTooManyTags, Msg: ae.Msg, Err: err}
	}
	return &apiError{Type: ecrInvalidTagParameter, Msg: ae.Msg, Err: err}
}

// renameResourceTags names the tags of CreateRepository and TagResource
// as their inputs do ("tags"), not as a template's ("resourceTags").
func renameResourceTags(err error) error {
	var ae *apiError
	if errors.As(err, &ae) && strings.Contains(ae.Msg, "'resourceTags") {
		return &apiError{Type: ae.Type, Msg: strings.Replace(ae.Msg, "'resourceTags", "'tags", 1), Err: ae.Err}
	}
	return err
}
