package engine

import (
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/crypt"
)

// Tag mutability settings, as ECR names them.
const (
	TagMutable                = "MUTABLE"
	TagImmutable              = "IMMUTABLE"
	TagImmutableWithExclusion = "IMMUTABLE_WITH_EXCLUSION"
	TagMutableWithExclusion   = "MUTABLE_WITH_EXCLUSION"
)

// Encryption types of a repository's EncryptionConfig, as ECR names them.
const (
	EncryptionAES256  = "AES256"
	EncryptionKMS     = "KMS"
	EncryptionKMSDSSE = "KMS_DSSE"
)

// Scenarios a creation template applies to (its AppliedFor).
const (
	AppliedForCreateOnPush     = "CREATE_ON_PUSH"
	AppliedForPullThroughCache = "PULL_THROUGH_CACHE"
	AppliedForReplication      = "REPLICATION"
)

// RootPrefix is the template prefix that matches every repository no
// other template matches.
const RootPrefix = "ROOT"

// TagFilter is one imageTagMutabilityExclusionFilter: a wildcard pattern
// (`*` matches any run of characters) over tags. FilterType is WILDCARD.
type TagFilter struct {
	Filter     string `json:"filter"`
	FilterType string `json:"filterType"`
}

// EncryptionConfig is ECR's encryptionConfiguration. KMSKey names the
// key-encryption key (a keyring key name or a pkcs11: URI); empty means
// the registry's default key.
type EncryptionConfig struct {
	EncryptionType string `json:"encryptionType"`
	KMSKey         string `json:"kmsKey,omitempty"`
}

// ResourceTag is an AWS resource tag on a repository.
type ResourceTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// RepositorySettings are the settings a repository is created with,
// directly or from a creation template.
type RepositorySettings struct {
	// TagMutability is one of the Tag* constants; empty means MUTABLE.
	TagMutability string `json:"imageTagMutability,omitempty"`
	// TagMutabilityExclusions are 1 to 5 wildcard filters, used only with
	// the *_WITH_EXCLUSION settings.
	TagMutabilityExclusions []TagFilter `json:"imageTagMutabilityExclusionFilters,omitempty"`
	// Encryption is fixed at creation; zero means AES256 with the default key.
	Encryption EncryptionConfig `json:"encryptionConfiguration"`
	// ScanOnPush asks for an image scan after each push.
	ScanOnPush bool `json:"scanOnPush,omitempty"`
	// LifecyclePolicy is ECR lifecycle policy JSON, empty for none.
	LifecyclePolicy string `json:"lifecyclePolicy,omitempty"`
	// RepositoryPolicy is an ECR repository policy JSON, empty for none.
	RepositoryPolicy string `json:"repositoryPolicy,omitempty"`
	// ResourceTags are at most 50 AWS resource tags.
	ResourceTags []ResourceTag `json:"resourceTags,omitempty"`
}

// Repository describes one repository.
type Repository struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
	RepositorySettings
	// KeyState is the state of the repository's key-encryption key
	// (enabled, disabled, destroyed; unavailable when its provider
	// cannot be reached, unknown when no provider holds it), as of the
	// call that returned the Repository. Not stored.
	KeyState crypt.KeyState `json:"keyState,omitempty"`
}

// CreationTemplate is an ECR repository creation template: settings for
// repositories created under Prefix (whole path components, or ROOT).
type CreationTemplate struct {
	Prefix      string   `json:"prefix"`
	Description string   `json:"description,omitempty"`
	AppliedFor  []string `json:"appliedFor"`
	// CustomRoleARN is kept for ECR's API (the IAM role ECR assumes when it
	// creates repositories); Berth has no IAM and does not use it.
	CustomRoleARN string    `json:"customRoleArn,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
	RepositorySettings
}

// Descriptor identifies stored content: its digest, size and, for
// manifests, its media type.
type Descriptor struct {
	MediaType string        `json:"mediaType,omitempty"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

// Manifest is a stored manifest with its exact bytes.
type Manifest struct {
	Descriptor
	// Payload is the manifest exactly as pushed.
	Payload []byte
	// ArtifactType is the manifest's artifactType, or its config media
	// type for an image manifest with no artifactType.
	ArtifactType string
	// Subject is the digest of the manifest this one refers to (OCI 1.1), or "".
	Subject digest.Digest
	// Annotations are the manifest's annotations.
	Annotations map[string]string
	// PushedAt is when the manifest was first stored in the repository.
	PushedAt time.Time
	// LastPulledAt is when it was last pulled (zero if never).
	LastPulledAt time.Time
}

// PutManifestResult reports what PutManifest stored.
type PutManifestResult struct {
	Descriptor
	// Subject is the manifest's subject digest, if it had one; registryd
	// answers it as OCI-Subject.
	Subject digest.Digest
	// Created is true when the repository was created by this push.
	Created bool
}

// Referrer is one entry of the referrers list of a subject.
type Referrer struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}
