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

// validate refuses what Berth would store and not act on: KMS_DSSE
// (dual-layer encryption). scanOnPush is acted on (docs/scanning.md).
func (in *CreateRepositoryInput) validate() error {
	if err := checkMutability(in.ImageTagMutability); err != nil {
		return err
	}
	return checkEncryption("CreateRepository", in.EncryptionConfiguration)
}

// checkMutability checks an imageTagMutability (empty: not given).
func checkMutability(m string) error {
	return checkEnum("imageTagMutability", m, engine.TagMutable, engine.TagImmutable, engine.TagImmutableWithExclusion, engine.TagMutableWithExclusion)
}

// checkEncryption refuses KMS_DSSE: Berth encrypts each blob once, under
// a data key wrapped by the repository's key; it has no second layer.
func checkEncryption(operation string, c *EncryptionConfiguration) error {
	if c == nil {
		return nil
	}
	if c.EncryptionType == "" {
		return invalidParameter("encryptionConfiguration.encryptionType", mustNotBeNull)
	}
	if c.EncryptionType == engine.EncryptionKMSDSSE {
		return unsupportedParameter(operation, "encryptionConfiguration.encryptionType",
			"Berth has no dual-layer encryption (KMS_DSSE): it encrypts each blob once, under a data key that the repository's key wraps; use KMS")
	}
	return checkEnum("encryptionConfiguration.encryptionType", c.EncryptionType, engine.EncryptionAES256, engine.EncryptionKMS, engine.EncryptionKMSDSSE)
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
		return nil, tagError(renameResourceTags(o.reg.word(err, in.errorSubject())))
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
		return nil, invalidParameter("repositoryNames", "maxResults and nextToken cannot be used with repositoryNames")
	}
	if err := checkLength("repositoryNames", len(in.RepositoryNames), 1, 100); err != nil {
		return nil, err
	}
	out := make([]authz.Resource, len(in.RepositoryNames))
	for i, name := range in.RepositoryNames {
		if err := checkRepositoryNameAt("repositoryNames", name); err != nil {
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
	listing := authz.NewListing(c.authz, c.who, c.action)
	for {
		names, err := o.repos.ListRepositories(ctx, cursor, describeBatch)
		if err != nil {
			return nil, err
		}
		// Ask about as many as the page may still take, and one more
		// (whether a nextToken follows).
		for rest := names; len(rest) > 0; {
			ask := rest
			if len(ask) > n-len(out.Repositories)+1 {
				ask = ask[:n-len(out.Repositories)+1]
			}
			rest = rest[len(ask):]
			resources := make([]authz.Resource, len(ask))
			for i, name := range ask {
				resources[i] = authz.Repository(name)
			}
			visible, err := listing.Visible(ctx, resources)
			if err != nil {
				return nil, err
			}
			for i, name := range ask {
				if !visible[i] {
					continue // its policies hide it from this caller
				}
				r, err := o.repos.Repository(ctx, name)
				if err != nil {
					continue // deleted since it was listed
				}
				if len(out.Repositories) == n {
					out.NextToken = pageToken(out.Repositories[n-1].RepositoryName)
					return recordListing(ctx, listing, out)
				}
				out.Repositories = append(out.Repositories, repositoryFromEngine(o.reg, c.host, r))
			}
		}
		if len(names) < describeBatch {
			return recordListing(ctx, listing, out)
		}
		cursor = names[len(names)-1]
	}
}

// recordListing records the listing that answers out and returns out, or
// the failure to record it, which refuses the call.
func recordListing(ctx context.Context, listing *authz.Listing, out *DescribeRepositoriesOutput) (*DescribeRepositoriesOutput, error) {
	if err := listing.Record(ctx, len(out.Repositories)); err != nil {
		return nil, err
	}
	return out, nil
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
		return nil, invalidParameter("imageTagMutability", mustNotBeNull)
	}
	if err := checkMutability(in.ImageTagMutability); err != nil {
		return nil, err
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
		return nil, invalidParameter("imageScanningConfiguration", mustNotBeNull)
	}
	if err := o.repos.SetScanOnPush(ctx, in.RepositoryName, in.ImageScanningConfiguration.ScanOnPush); err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	return &PutImageScanningConfigurationOutput{
		RegistryID: o.reg.account, RepositoryName: in.RepositoryName,
		ImageScanningConfiguration: *in.ImageScanningConfiguration,
	}, nil
}
