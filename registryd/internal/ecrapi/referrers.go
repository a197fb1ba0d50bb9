package ecrapi

// ListImageReferrers: the artifacts (signatures, SBOMs, attestations)
// whose subject is an image, as the OCI referrers API lists them.

import (
	"context"
	"slices"

	"github.com/opencontainers/go-digest"
)

// referrerOps serve ListImageReferrers.
type referrerOps struct {
	reg       registry
	referrers ReferrerStore
}

// The artifact statuses of ListImageReferrers' filter.
const (
	artifactStatusActive     = "ACTIVE"
	artifactStatusArchived   = "ARCHIVED"
	artifactStatusActivating = "ACTIVATING"
	artifactStatusAny        = "ANY"
)

// SubjectIdentifier names the subject image by digest.
type SubjectIdentifier struct {
	ImageDigest string `json:"imageDigest"`
}

// ListImageReferrersFilter selects referrers by artifact type and status.
type ListImageReferrersFilter struct {
	ArtifactTypes  []string `json:"artifactTypes"`
	ArtifactStatus string   `json:"artifactStatus"`
}

// ListImageReferrersInput is ListImageReferrers' request.
type ListImageReferrersInput struct {
	repositoryRef
	SubjectID  *SubjectIdentifier        `json:"subjectId"`
	Filter     *ListImageReferrersFilter `json:"filter"`
	NextToken  string                    `json:"nextToken"`
	MaxResults *int                      `json:"maxResults"`
}

// maxReferrersPage is ListImageReferrers' largest page, and its default.
const maxReferrersPage = 50

// validate checks the subject and the filter.
func (in *ListImageReferrersInput) validate() error {
	if in.SubjectID == nil || in.SubjectID.ImageDigest == "" {
		return invalidParameter("subjectId.imageDigest", mustNotBeNull)
	}
	if _, err := digest.Parse(in.SubjectID.ImageDigest); err != nil {
		return invalidParameter("subjectId.imageDigest", mustMatch, layerDigestPattern)
	}
	if in.Filter != nil {
		if in.Filter.ArtifactTypes != nil {
			if err := checkLength("filter.artifactTypes", len(in.Filter.ArtifactTypes), 1, 5); err != nil {
				return err
			}
		}
		for _, t := range in.Filter.ArtifactTypes {
			if err := checkLength("filter.artifactTypes", len(t), 1, 255); err != nil {
				return err
			}
		}
		return checkEnum("filter.artifactStatus", in.Filter.ArtifactStatus,
			artifactStatusActive, artifactStatusArchived, artifactStatusActivating, artifactStatusAny)
	}
	return nil
}

// ImageReferrer is one artifact whose subject is the image.
type ImageReferrer struct {
	Digest         string            `json:"digest"`
	MediaType      string            `json:"mediaType"`
	ArtifactType   string            `json:"artifactType,omitempty"`
	Size           int64             `json:"size"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	ArtifactStatus string            `json:"artifactStatus"`
}

// ListImageReferrersOutput is ListImageReferrers' answer.
type ListImageReferrersOutput struct {
	Referrers []ImageReferrer `json:"referrers"`
	NextToken string          `json:"nextToken,omitempty"`
}

// list answers the referrers of the subject in the repository, by
// digest, a page at a time (a subject the repository does not hold has
// none, as on the OCI referrers API). Every referrer Berth holds is
// ACTIVE: the filter's default status, and ANY, list them all; ARCHIVED
// and ACTIVATING list none.
func (o referrerOps) list(ctx context.Context, _ *call, in *ListImageReferrersInput) (*ListImageReferrersOutput, error) {
	n := maxReferrersPage
	if in.MaxResults != nil {
		var err error
		if n, err = pageSize(in.MaxResults, maxReferrersPage); err != nil {
			return nil, err
		}
	}
	refs, err := o.referrers.Referrers(ctx, in.RepositoryName, digest.Digest(in.SubjectID.ImageDigest), "")
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	status := artifactStatusActive
	var types []string
	if in.Filter != nil {
		types = in.Filter.ArtifactTypes
		if in.Filter.ArtifactStatus != "" {
			status = in.Filter.ArtifactStatus
		}
	}
	var all []ImageReferrer
	for _, r := range refs {
		if len(types) > 0 && !slices.Contains(types, r.ArtifactType) {
			continue
		}
		if status != artifactStatusAny && status != artifactStatusActive {
			continue
		}
		all = append(all, ImageReferrer{Digest: string(r.Digest), MediaType: r.MediaType, ArtifactType: r.ArtifactType,
			Size: r.Size, Annotations: r.Annotations, ArtifactStatus: artifactStatusActive})
	}
	slices.SortFunc(all, func(a, b ImageReferrer) int {
		switch {
		case a.Digest < b.Digest:
			return -1
		case a.Digest > b.Digest:
			return 1
		}
		return 0
	})
	page, next, err := paginate(all, func(r ImageReferrer) string { return r.Digest }, in.NextToken, n)
	if err != nil {
		return nil, err
	}
	return &ListImageReferrersOutput{Referrers: append([]ImageReferrer{}, page...), NextToken: next}, nil
}
