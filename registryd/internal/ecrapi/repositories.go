package ecrapi

// Repositories: create, describe, delete, and their tag mutability and
// scanning settings.

import (
	"context"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// repositoryOps serve the repository operations.
type repositoryOps struct {
	reg   registry
	repos RepositoryStore
}

// CreateRepositoryInput is CreateRepository's request.
type CreateRepositoryInput struct {
	repositoryRef
	Tags                               []Tag                               `json:"tags"`
	ImageTagMutability                 string                              `json:"imageTagMutability"`
	ImageTagMutabilityExclusionFilters []ImageTagMutabilityExclusionFilter `json:"imageTagMutabilityExclusionFilters"`
	ImageScanningConfiguration         *ImageScanningConfiguration         `json:"imageScanningConfiguration"`
	EncryptionConfiguration            *EncryptionConfiguration            `json:"encryptionConfiguration"`
}

// extraAccess: a repository keyed by a KMS key needs kms:CreateGrant and
// kms:DescribeKey on it, as in ECR.
func (in *CreateRepositoryInput) extraAccess() []authz.Access {
	if in.EncryptionConfiguration == nil {
		return nil
	}
	return authz.KeyAccess(in.EncryptionConfiguration.KMSKey)
}

func (in *CreateRepositoryInput) requestTags() map[string]string { return requestTagsOf(in.Tags) }

// CreateRepositoryOutput is CreateRepository's answer.
type CreateRepositoryOutput struct {
	Repository Repository `json:"repository"`
}

func (o repositoryOps) create(ctx context.Context, c *call, in *CreateRepositoryInput) (*CreateRepositoryOutput, error) {
	set := engine.RepositorySettings{
		TagMutability:           in.ImageTagMutability,
		TagMutabilityExclusions: tagFiltersToEngine(in.ImageTagMutabilityExclusionFilters),
		ResourceTags:            tagsToEngine(in.Tags),
	}
	if in.ImageScanningConfiguration != nil {
		set.ScanOnPush = in.ImageScanningConfiguration.ScanOnPush
	}
	if in.EncryptionConfiguration != nil {
		set.Encryption = encryptionToEngine(*in.EncryptionConfiguration)
	}
	r, err := o.repos.CreateRepository(ctx, in.RepositoryName, set)
	if err != nil {
		return nil, err
	}
	return &CreateRepositoryOutput{Repository: repositoryFromEngine(o.reg, c.host, r)}, nil
}

// DescribeRepositoriesInput is DescribeRepositories' request: the
// repositories named, or a page of all of them.
type DescribeRepositoriesInput struct {
	RegistryID      string   `json:"registryId"`
	RepositoryNames []string `json:"repositoryNames"`
	NextToken       string   `json:"nextToken"`
	MaxResults      *int     `json:"maxResults"`
}

// resources are the repositories named, or the registry for a listing
// (which then leaves out the repositories the caller may not describe).
func (in *DescribeRepositoriesInput) resources(g registry) ([]authz.Resource, error) {
	if err := g.checkID(in.RegistryID); err != nil {
		return nil, err
	}
	if len(in.RepositoryNames) == 0 {
		return []authz.Resource{authz.Registry}, nil
	}
	if in.NextToken != "" || in.MaxResults != nil {
		return nil, errorf(ecrInvalidParameter, "maxResults and nextToken cannot be used with repositoryNames")
	}
	if len(in.RepositoryNames) > 100 {
		return nil, errorf(ecrInvalidParameter, "at most 100 repositoryNames")
	}
	out := make([]authz.Resource, len(in.RepositoryNames))
	for i, name := range in.RepositoryNames {
		if err := checkRepositoryName(name); err != nil {
			return nil, err
		}
		out[i] = authz.Repository(name)
	}
	return out, nil
}

// DescribeRepositoriesOutput is DescribeRepositories' answer.
type DescribeRepositoriesOutput struct {
	Repositories []Repository `json:"repositories"`
	NextToken    string       `json:"nextToken,omitempty"`
}

func (o repositoryOps) describe(ctx context.Context, c *call, in *DescribeRepositoriesInput) (*DescribeRepositoriesOutput, error) {
	out := &DescribeRepositoriesOutput{Repositories: []Repository{}}
	if len(in.RepositoryNames) > 0 {
		for _, name := range in.RepositoryNames {
			r, err := o.repos.Repository(ctx, name)
			if err != nil {
				return nil, o.reg.repositoryNotFound(err, name)
			}
			out.Repositories = append(out.Repositories, repositoryFromEngine(o.reg, c.host, r))
		}
		return out, nil
	}
	n, err := pageSize(in.MaxResults, 1000)
	if err != nil {
		return nil, err
	}
	cursor := ""
	if in.NextToken != "" {
		if cursor, err = parsePageToken(in.NextToken); err != nil {
			return nil, err
		}
	}
	// The page is over what the caller may see, as the catalog's is: up to
	// n repositories it may describe, and the nextToken names the last of
	// them, never a repository hidden from the caller (the token is only
	// base64: it would tell the name).
	for {
		names, err := o.repos.ListRepositories(ctx, cursor, describeBatch)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			visible, err := authz.Visible(ctx, c.authz, c.who, c.action, authz.Repository(name))
			if err != nil {
				return nil, err
			}
			if !visible {
				continue // its policies hide it from this caller
			}
			r, err := o.repos.Repository(ctx, name)
			if err != nil {
				continue // deleted since it was listed
			}
			if len(out.Repositories) == n {
				out.NextToken = pageToken(out.Repositories[n-1].RepositoryName)
				return out, nil
			}
			out.Repositories = append(out.Repositories, repositoryFromEngine(o.reg, c.host, r))
		}
		if len(names) < describeBatch {
			return out, nil
		}
		cursor = names[len(names)-1]
	}
}

// describeBatch is how many repository names DescribeRepositories reads
// from the store at a time while it looks for those the caller may see.
const describeBatch = 1000

// DeleteRepositoryInput is DeleteRepository's request.
type DeleteRepositoryInput struct {
	repositoryRef
	Force bool `json:"force"`
}

// DeleteRepositoryOutput is DeleteRepository's answer: the repository
// deleted.
type DeleteRepositoryOutput struct {
	Repository Repository `json:"repository"`
}

func (o repositoryOps) delete(ctx context.Context, c *call, in *DeleteRepositoryInput) (*DeleteRepositoryOutput, error) {
	r, err := o.repos.Repository(ctx, in.RepositoryName)
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	if err := o.repos.DeleteRepository(ctx, in.RepositoryName, in.Force); err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	return &DeleteRepositoryOutput{Repository: repositoryFromEngine(o.reg, c.host, r)}, nil
}

// PutImageTagMutabilityInput is PutImageTagMutability's request.
type PutImageTagMutabilityInput struct {
	repositoryRef
	ImageTagMutability                 string                              `json:"imageTagMutability"`
	ImageTagMutabilityExclusionFilters []ImageTagMutabilityExclusionFilter `json:"imageTagMutabilityExclusionFilters"`
}

// PutImageTagMutabilityOutput is PutImageTagMutability's answer: the
// setting made.
type PutImageTagMutabilityOutput struct {
	RegistryID                         string                              `json:"registryId"`
	RepositoryName                     string                              `json:"repositoryName"`
	ImageTagMutability                 string                              `json:"imageTagMutability"`
	ImageTagMutabilityExclusionFilters []ImageTagMutabilityExclusionFilter `json:"imageTagMutabilityExclusionFilters"`
}

func (o repositoryOps) putTagMutability(ctx context.Context, _ *call, in *PutImageTagMutabilityInput) (*PutImageTagMutabilityOutput, error) {
	if in.ImageTagMutability == "" {
		return nil, errorf(ecrInvalidParameter, "imageTagMutability is required")
	}
	if err := o.repos.SetTagMutability(ctx, in.RepositoryName, in.ImageTagMutability, tagFiltersToEngine(in.ImageTagMutabilityExclusionFilters)); err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	return &PutImageTagMutabilityOutput{
		RegistryID: o.reg.account, RepositoryName: in.RepositoryName,
		ImageTagMutability:                 in.ImageTagMutability,
		ImageTagMutabilityExclusionFilters: in.ImageTagMutabilityExclusionFilters,
	}, nil
}

// PutImageScanningConfigurationInput is PutImageScanningConfiguration's
// request.
type PutImageScanningConfigurationInput struct {
	repositoryRef
	ImageScanningConfiguration *ImageScanningConfiguration `json:"imageScanningConfiguration"`
}

// PutImageScanningConfigurationOutput is PutImageScanningConfiguration's
// answer: the setting made.
type PutImageScanningConfigurationOutput struct {
	RegistryID                 string                     `json:"registryId"`
	RepositoryName             string                     `json:"repositoryName"`
	ImageScanningConfiguration ImageScanningConfiguration `json:"imageScanningConfiguration"`
}

func (o repositoryOps) putScanning(ctx context.Context, _ *call, in *PutImageScanningConfigurationInput) (*PutImageScanningConfigurationOutput, error) {
	if in.ImageScanningConfiguration == nil {
		return nil, errorf(ecrInvalidParameter, "imageScanningConfiguration is required")
	}
	if err := o.repos.SetScanOnPush(ctx, in.RepositoryName, in.ImageScanningConfiguration.ScanOnPush); err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	return &PutImageScanningConfigurationOutput{
		RegistryID: o.reg.account, RepositoryName: in.RepositoryName,
		ImageScanningConfiguration: *in.ImageScanningConfiguration,
	}, nil
}
