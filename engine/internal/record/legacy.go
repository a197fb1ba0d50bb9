package record

import "time"

// Version 0: the engine's API types as they were marshalled before
// records had a version, with their ECR JSON names. Read only.

type legacySettings struct {
	TagMutability           string `json:"imageTagMutability,omitempty"`
	TagMutabilityExclusions []struct {
		Filter     string `json:"filter"`
		FilterType string `json:"filterType"`
	} `json:"imageTagMutabilityExclusionFilters,omitempty"`
	Encryption struct {
		EncryptionType string `json:"encryptionType"`
		KMSKey         string `json:"kmsKey,omitempty"`
	} `json:"encryptionConfiguration"`
	ScanOnPush       bool   `json:"scanOnPush,omitempty"`
	LifecyclePolicy  string `json:"lifecyclePolicy,omitempty"`
	RepositoryPolicy string `json:"repositoryPolicy,omitempty"`
	ResourceTags     []struct {
		Key   string `json:"Key"`
		Value string `json:"Value"`
	} `json:"resourceTags,omitempty"`
}

func (l *legacySettings) current() Settings {
	s := Settings{
		TagMutability: l.TagMutability,
		Encryption:    Encryption{Type: l.Encryption.EncryptionType, KMSKey: l.Encryption.KMSKey},
		ScanOnPush:    l.ScanOnPush, LifecyclePolicy: l.LifecyclePolicy, RepositoryPolicy: l.RepositoryPolicy,
	}
	for _, f := range l.TagMutabilityExclusions {
		s.TagMutabilityExclusions = append(s.TagMutabilityExclusions, TagFilter{Pattern: f.Filter, Type: f.FilterType})
	}
	for _, t := range l.ResourceTags {
		s.ResourceTags = append(s.ResourceTags, ResourceTag{Key: t.Key, Value: t.Value})
	}
	return s
}

type legacyTemplate struct {
	Prefix        string    `json:"prefix"`
	Description   string    `json:"description,omitempty"`
	AppliedFor    []string  `json:"appliedFor"`
	CustomRoleARN string    `json:"customRoleArn,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
	legacySettings
}

type legacyCacheRule struct {
	ECRRepositoryPrefix      string    `json:"ecrRepositoryPrefix"`
	UpstreamRegistryURL      string    `json:"upstreamRegistryUrl"`
	UpstreamRepositoryPrefix string    `json:"upstreamRepositoryPrefix"`
	CreatedAt                time.Time `json:"createdAt"`
	UpdatedAt                time.Time `json:"updatedAt"`
}
