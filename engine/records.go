package engine

// The stored form of repository settings, creation templates and
// pull-through cache rules (engine/internal/record), converted to and
// from the API types. The API types' JSON names are ECR's wire format;
// what the index holds is the record's own, versioned form.

import (
	"github.com/berthstore/berth/engine/internal/record"
)

func settingsRecord(s RepositorySettings) record.Settings {
	r := record.Settings{
		TagMutability: s.TagMutability,
		Encryption:    record.Encryption{Type: s.Encryption.EncryptionType, KMSKey: s.Encryption.KMSKey},
		ScanOnPush:    s.ScanOnPush, LifecyclePolicy: s.LifecyclePolicy, RepositoryPolicy: s.RepositoryPolicy,
	}
	for _, f := range s.TagMutabilityExclusions {
		r.TagMutabilityExclusions = append(r.TagMutabilityExclusions, record.TagFilter{Pattern: f.Filter, Type: f.FilterType})
	}
	for _, t := range s.ResourceTags {
		r.ResourceTags = append(r.ResourceTags, record.ResourceTag{Key: t.Key, Value: t.Value})
	}
	return r
}

func settingsOf(r record.Settings) RepositorySettings {
	s := RepositorySettings{
		TagMutability: r.TagMutability,
		Encryption:    EncryptionConfig{EncryptionType: r.Encryption.Type, KMSKey: r.Encryption.KMSKey},
		ScanOnPush:    r.ScanOnPush, LifecyclePolicy: r.LifecyclePolicy, RepositoryPolicy: r.RepositoryPolicy,
	}
	for _, f := range r.TagMutabilityExclusions {
		s.TagMutabilityExclusions = append(s.TagMutabilityExclusions, TagFilter{Filter: f.Pattern, FilterType: f.Type})
	}
	for _, t := range r.ResourceTags {
		s.ResourceTags = append(s.ResourceTags, ResourceTag{Key: t.Key, Value: t.Value})
	}
	return s
}

// encodeRepository returns the stored form of a repository's settings
// and origin (the Settings bytes of its index record).
func encodeRepository(r *Repository) ([]byte, error) {
	return record.EncodeRepository(record.Repository{Settings: settingsRecord(r.RepositorySettings), CacheRule: r.CreatedByCacheRule,
		LifecycleEvaluatedAt: r.LifecycleEvaluatedAt})
}

// decodeRepository reads a repository's stored settings and origin, of
// any version, into r.
func decodeRepository(b []byte, r *Repository) error {
	rec, err := record.DecodeRepository(b)
	if err != nil {
		return err
	}
	r.RepositorySettings, r.CreatedByCacheRule, r.LifecycleEvaluatedAt = settingsOf(rec.Settings), rec.CacheRule, rec.LifecycleEvaluatedAt
	return nil
}

func encodeTemplate(t CreationTemplate) ([]byte, error) {
	return record.EncodeTemplate(record.Template{
		Prefix: t.Prefix, Description: t.Description, AppliedFor: t.AppliedFor, CustomRoleARN: t.CustomRoleARN,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, Settings: settingsRecord(t.RepositorySettings),
	})
}

func decodeTemplate(b []byte) (CreationTemplate, error) {
	r, err := record.DecodeTemplate(b)
	if err != nil {
		return CreationTemplate{}, err
	}
	return CreationTemplate{
		Prefix: r.Prefix, Description: r.Description, AppliedFor: r.AppliedFor, CustomRoleARN: r.CustomRoleARN,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, RepositorySettings: settingsOf(r.Settings),
	}, nil
}

func encodeCacheRule(r PullThroughCacheRule) ([]byte, error) {
	return record.EncodeCacheRule(record.CacheRule{
		Prefix: r.ECRRepositoryPrefix, UpstreamURL: r.UpstreamRegistryURL, UpstreamPrefix: r.UpstreamRepositoryPrefix,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, UpstreamRegistry: r.UpstreamRegistry, CredentialARN: r.CredentialARN,
	})
}

func decodeCacheRule(b []byte) (PullThroughCacheRule, error) {
	r, err := record.DecodeCacheRule(b)
	if err != nil {
		return PullThroughCacheRule{}, err
	}
	return PullThroughCacheRule{
		ECRRepositoryPrefix: r.Prefix, UpstreamRegistryURL: r.UpstreamURL, UpstreamRepositoryPrefix: r.UpstreamPrefix,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, UpstreamRegistry: r.UpstreamRegistry, CredentialARN: r.CredentialARN,
	}, nil
}
