package ecrapi

// The ECR API's data types that several operations share, with the JSON
// names of the ECR API reference. They are the wire format only: the
// engine's types are converted at the boundary (convert.go).

import (
	"encoding/json"
	"strconv"
	"time"
)

// awsTime is a timestamp as AWS JSON 1.1 sends it: seconds since the
// epoch, with milliseconds.
type awsTime time.Time

// MarshalJSON implements json.Marshaler.
func (t awsTime) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(time.Time(t).UnixMilli())/1000, 'f', 3, 64)), nil
}

// IsZero lets omitzero leave unset times out.
func (t awsTime) IsZero() bool { return time.Time(t).IsZero() }

// Tag is an AWS resource tag.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// ImageTagMutabilityExclusionFilter is a wildcard pattern over tags that
// a *_WITH_EXCLUSION mutability setting exempts.
type ImageTagMutabilityExclusionFilter struct {
	Filter     string `json:"filter"`
	FilterType string `json:"filterType"`
}

// EncryptionConfiguration is a repository's (or a creation template's)
// encryption: AES256, or KMS with a key (a Berth key name or a pkcs11:
// URI).
type EncryptionConfiguration struct {
	EncryptionType string `json:"encryptionType"`
	KMSKey         string `json:"kmsKey,omitempty"`
}

// ImageScanningConfiguration is a repository's scanning setting.
type ImageScanningConfiguration struct {
	ScanOnPush bool `json:"scanOnPush"`
}

// Repository describes a repository.
type Repository struct {
	RepositoryARN                      string                              `json:"repositoryArn"`
	RegistryID                         string                              `json:"registryId"`
	RepositoryName                     string                              `json:"repositoryName"`
	RepositoryURI                      string                              `json:"repositoryUri"`
	CreatedAt                          awsTime                             `json:"createdAt,omitzero"`
	ImageTagMutability                 string                              `json:"imageTagMutability"`
	ImageTagMutabilityExclusionFilters []ImageTagMutabilityExclusionFilter `json:"imageTagMutabilityExclusionFilters,omitempty"`
	ImageScanningConfiguration         ImageScanningConfiguration          `json:"imageScanningConfiguration"`
	EncryptionConfiguration            EncryptionConfiguration             `json:"encryptionConfiguration"`
}

// ImageIdentifier names an image by digest, tag or both.
type ImageIdentifier struct {
	ImageDigest string `json:"imageDigest,omitempty"`
	ImageTag    string `json:"imageTag,omitempty"`
}

// ImageFailure is why an image of a batch call was not served.
type ImageFailure struct {
	ImageID       ImageIdentifier `json:"imageId"`
	FailureCode   string          `json:"failureCode"`
	FailureReason string          `json:"failureReason"`
}

// Image is a manifest as BatchGetImage and PutImage answer it.
type Image struct {
	RegistryID             string          `json:"registryId"`
	RepositoryName         string          `json:"repositoryName"`
	ImageID                ImageIdentifier `json:"imageId"`
	ImageManifest          string          `json:"imageManifest"`
	ImageManifestMediaType string          `json:"imageManifestMediaType,omitempty"`
}

// ImageDetail describes an image, as DescribeImages answers it.
type ImageDetail struct {
	RegistryID             string   `json:"registryId"`
	RepositoryName         string   `json:"repositoryName"`
	ImageDigest            string   `json:"imageDigest"`
	ImageTags              []string `json:"imageTags,omitempty"`
	ImageSizeInBytes       int64    `json:"imageSizeInBytes"`
	ImagePushedAt          awsTime  `json:"imagePushedAt,omitzero"`
	ImageManifestMediaType string   `json:"imageManifestMediaType,omitempty"`
	ArtifactMediaType      string   `json:"artifactMediaType,omitempty"`
	LastRecordedPullTime   awsTime  `json:"lastRecordedPullTime,omitzero"`
	ImageStatus            string   `json:"imageStatus"`
	LastArchivedAt         awsTime  `json:"lastArchivedAt,omitzero"`
	LastActivatedAt        awsTime  `json:"lastActivatedAt,omitzero"`
	// ImageScanStatus and ImageScanFindingsSummary are set once the
	// image was scanned (scans.go).
	ImageScanStatus          *ImageScanStatus          `json:"imageScanStatus,omitempty"`
	ImageScanFindingsSummary *ImageScanFindingsSummary `json:"imageScanFindingsSummary,omitempty"`
}

// TagStatusFilter is the filter of ListImages, DescribeImages and
// GetLifecyclePolicyPreview (ListImagesFilter, DescribeImagesFilter,
// LifecyclePolicyPreviewFilter): its tagStatus.
type TagStatusFilter struct {
	TagStatus string `json:"tagStatus"`
}

// UnmarshalJSON refuses a tagStatus outside ECR's enum as the request is
// read, whether or not an image is ever filtered.
func (f *TagStatusFilter) UnmarshalJSON(b []byte) error {
	type plain TagStatusFilter
	if err := json.Unmarshal(b, (*plain)(f)); err != nil {
		return err
	}
	_, err := f.keep(0)
	return err
}

// keep reports whether an image with n tags passes the filter.
func (f *TagStatusFilter) keep(n int) (bool, error) {
	if f == nil {
		return true, nil
	}
	switch f.TagStatus {
	case "", "ANY":
		return true, nil
	case "TAGGED":
		return n > 0, nil
	case "UNTAGGED":
		return n == 0, nil
	}
	return false, checkEnum("filter.tagStatus", f.TagStatus, "TAGGED", "UNTAGGED", "ANY")
}

// RepositoryCreationTemplate is a repository creation template.
type RepositoryCreationTemplate struct {
	Prefix                             string                              `json:"prefix"`
	Description                        string                              `json:"description,omitempty"`
	EncryptionConfiguration            *EncryptionConfiguration            `json:"encryptionConfiguration,omitempty"`
	ResourceTags                       []Tag                               `json:"resourceTags,omitempty"`
	ImageTagMutability                 string                              `json:"imageTagMutability,omitempty"`
	ImageTagMutabilityExclusionFilters []ImageTagMutabilityExclusionFilter `json:"imageTagMutabilityExclusionFilters,omitempty"`
	RepositoryPolicy                   string                              `json:"repositoryPolicy,omitempty"`
	LifecyclePolicy                    string                              `json:"lifecyclePolicy,omitempty"`
	AppliedFor                         []string                            `json:"appliedFor"`
	CustomRoleARN                      string                              `json:"customRoleArn,omitempty"`
	CreatedAt                          awsTime                             `json:"createdAt,omitzero"`
	UpdatedAt                          awsTime                             `json:"updatedAt,omitzero"`
}

// PullThroughCacheRule is a pull-through cache rule (ECR's
// PullThroughCacheRule type). customRoleArn is never set: Berth has no
// roles.
type PullThroughCacheRule struct {
	ECRRepositoryPrefix      string  `json:"ecrRepositoryPrefix"`
	UpstreamRegistryURL      string  `json:"upstreamRegistryUrl"`
	UpstreamRepositoryPrefix string  `json:"upstreamRepositoryPrefix,omitempty"`
	UpstreamRegistry         string  `json:"upstreamRegistry,omitempty"`
	CredentialARN            string  `json:"credentialArn,omitempty"`
	RegistryID               string  `json:"registryId"`
	CreatedAt                awsTime `json:"createdAt,omitzero"`
	UpdatedAt                awsTime `json:"updatedAt,omitzero"`
}
