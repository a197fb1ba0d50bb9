package cli

// The configuration file's schema for creation templates and
// pull-through cache rules: types of the CLI's own, in ECR's field names
// (the names the file has always used), converted to the engine's types
// where the store is written. The engine's types are its records, not the
// file format.

import (
	"time"

	"github.com/berthstore/berth/engine"
)

// Template is a repository creation template in the configuration file
// (templates:), the --template flag and `registryd template put --json`.
type Template struct {
	// Prefix is the repository name prefix the template applies to
	// (whole path components), or ROOT.
	Prefix      string `json:"prefix"`
	Description string `json:"description,omitempty"`
	// AppliedFor are the scenarios: CREATE_ON_PUSH, PULL_THROUGH_CACHE,
	// REPLICATION.
	AppliedFor []string `json:"appliedFor"`
	// CustomRoleARN is kept and returned (ECR's field); Berth has no IAM.
	CustomRoleARN                      string                   `json:"customRoleArn,omitempty"`
	ImageTagMutability                 string                   `json:"imageTagMutability,omitempty"`
	ImageTagMutabilityExclusionFilters []TagFilter              `json:"imageTagMutabilityExclusionFilters,omitempty"`
	EncryptionConfiguration            *EncryptionConfiguration `json:"encryptionConfiguration,omitempty"`
	ScanOnPush                         bool                     `json:"scanOnPush,omitempty"`
	LifecyclePolicy                    string                   `json:"lifecyclePolicy,omitempty"`
	RepositoryPolicy                   string                   `json:"repositoryPolicy,omitempty"`
	ResourceTags                       []ResourceTag            `json:"resourceTags,omitempty"`
}

// TagFilter is a tag mutability exclusion filter: a wildcard pattern.
type TagFilter struct {
	Filter     string `json:"filter"`
	FilterType string `json:"filterType"`
}

// EncryptionConfiguration is a template's encryption: AES256, or KMS with
// a key name or pkcs11: URI.
type EncryptionConfiguration struct {
	EncryptionType string `json:"encryptionType"`
	KMSKey         string `json:"kmsKey,omitempty"`
}

// ResourceTag is an AWS resource tag.
type ResourceTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// PullThroughCacheRule is a pull-through cache rule in the configuration
// file (pullThroughCacheRules:).
type PullThroughCacheRule struct {
	ECRRepositoryPrefix string `json:"ecrRepositoryPrefix"`
	// UpstreamRegistryURL may be left out when UpstreamRegistry names a
	// registry ECR knows by one URL (docker-hub, quay, ...).
	UpstreamRegistryURL      string `json:"upstreamRegistryUrl,omitempty"`
	UpstreamRegistry         string `json:"upstreamRegistry,omitempty"`
	UpstreamRepositoryPrefix string `json:"upstreamRepositoryPrefix,omitempty"`
	// CredentialARN names a stored secret (registryd secrets put), which
	// must exist when the daemon starts.
	CredentialARN string `json:"credentialArn,omitempty"`
}

// engineTemplate is t as the engine stores it.
func (t Template) engineTemplate() engine.CreationTemplate {
	ct := engine.CreationTemplate{
		Prefix: t.Prefix, Description: t.Description, AppliedFor: t.AppliedFor, CustomRoleARN: t.CustomRoleARN,
		RepositorySettings: engine.RepositorySettings{
			TagMutability:    t.ImageTagMutability,
			ScanOnPush:       t.ScanOnPush,
			LifecyclePolicy:  t.LifecyclePolicy,
			RepositoryPolicy: t.RepositoryPolicy,
		},
	}
	for _, f := range t.ImageTagMutabilityExclusionFilters {
		ct.TagMutabilityExclusions = append(ct.TagMutabilityExclusions, engine.TagFilter{Filter: f.Filter, FilterType: f.FilterType})
	}
	for _, r := range t.ResourceTags {
		ct.ResourceTags = append(ct.ResourceTags, engine.ResourceTag{Key: r.Key, Value: r.Value})
	}
	if e := t.EncryptionConfiguration; e != nil {
		ct.Encryption = engine.EncryptionConfig{EncryptionType: e.EncryptionType, KMSKey: e.KMSKey}
	}
	return ct
}

// engineRule is r as the engine stores it.
func (r PullThroughCacheRule) engineRule() engine.PullThroughCacheRule {
	return engine.PullThroughCacheRule{ECRRepositoryPrefix: r.ECRRepositoryPrefix,
		UpstreamRegistryURL: r.UpstreamRegistryURL, UpstreamRegistry: r.UpstreamRegistry,
		UpstreamRepositoryPrefix: r.UpstreamRepositoryPrefix, CredentialARN: r.CredentialARN}
}

// storedTemplate is a template as `registryd template list` prints it:
// the file's fields, the encryption the store settled on, and when it was
// created and last changed.
type storedTemplate struct {
	Prefix                             string                  `json:"prefix"`
	Description                        string                  `json:"description,omitempty"`
	AppliedFor                         []string                `json:"appliedFor"`
	CustomRoleARN                      string                  `json:"customRoleArn,omitempty"`
	CreatedAt                          time.Time               `json:"createdAt"`
	UpdatedAt                          time.Time               `json:"updatedAt"`
	ImageTagMutability                 string                  `json:"imageTagMutability,omitempty"`
	ImageTagMutabilityExclusionFilters []TagFilter             `json:"imageTagMutabilityExclusionFilters,omitempty"`
	EncryptionConfiguration            EncryptionConfiguration `json:"encryptionConfiguration"`
	ScanOnPush                         bool                    `json:"scanOnPush,omitempty"`
	LifecyclePolicy                    string                  `json:"lifecyclePolicy,omitempty"`
	RepositoryPolicy                   string                  `json:"repositoryPolicy,omitempty"`
	ResourceTags                       []ResourceTag           `json:"resourceTags,omitempty"`
}

// storedTemplateOf is t as `registryd template list` prints it.
func storedTemplateOf(t engine.CreationTemplate) storedTemplate {
	s := storedTemplate{
		Prefix: t.Prefix, Description: t.Description, AppliedFor: t.AppliedFor, CustomRoleARN: t.CustomRoleARN,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
		ImageTagMutability: t.TagMutability, ScanOnPush: t.ScanOnPush,
		EncryptionConfiguration: EncryptionConfiguration{EncryptionType: t.Encryption.EncryptionType, KMSKey: t.Encryption.KMSKey},
		LifecyclePolicy:         t.LifecyclePolicy, RepositoryPolicy: t.RepositoryPolicy,
	}
	for _, f := range t.TagMutabilityExclusions {
		s.ImageTagMutabilityExclusionFilters = append(s.ImageTagMutabilityExclusionFilters, TagFilter{Filter: f.Filter, FilterType: f.FilterType})
	}
	for _, r := range t.ResourceTags {
		s.ResourceTags = append(s.ResourceTags, ResourceTag{Key: r.Key, Value: r.Value})
	}
	return s
}
