package ecrapi

// Conversions between the wire types and the engine's, at the boundary.
// A nil slice stays nil and an empty one empty, both ways.

import (
	"github.com/berthstore/berth/engine"
)

func tagFiltersToEngine(fs []ImageTagMutabilityExclusionFilter) []engine.TagFilter {
	if fs == nil {
		return nil
	}
	out := make([]engine.TagFilter, len(fs))
	for i, f := range fs {
		out[i] = engine.TagFilter{Filter: f.Filter, FilterType: f.FilterType}
	}
	return out
}

func tagFiltersFromEngine(fs []engine.TagFilter) []ImageTagMutabilityExclusionFilter {
	if fs == nil {
		return nil
	}
	out := make([]ImageTagMutabilityExclusionFilter, len(fs))
	for i, f := range fs {
		out[i] = ImageTagMutabilityExclusionFilter{Filter: f.Filter, FilterType: f.FilterType}
	}
	return out
}

func tagsToEngine(ts []Tag) []engine.ResourceTag {
	if ts == nil {
		return nil
	}
	out := make([]engine.ResourceTag, len(ts))
	for i, t := range ts {
		out[i] = engine.ResourceTag{Key: t.Key, Value: t.Value}
	}
	return out
}

func tagsFromEngine(ts []engine.ResourceTag) []Tag {
	if ts == nil {
		return nil
	}
	out := make([]Tag, len(ts))
	for i, t := range ts {
		out[i] = Tag{Key: t.Key, Value: t.Value}
	}
	return out
}

func encryptionToEngine(e EncryptionConfiguration) engine.EncryptionConfig {
	return engine.EncryptionConfig{EncryptionType: e.EncryptionType, KMSKey: e.KMSKey}
}

func encryptionFromEngine(e engine.EncryptionConfig) EncryptionConfiguration {
	return EncryptionConfiguration{EncryptionType: e.EncryptionType, KMSKey: e.KMSKey}
}

// repositoryFromEngine describes r as the ECR API does; its URI is on
// host, the host the client addressed.
func repositoryFromEngine(g registry, host string, r *engine.Repository) Repository {
	enc := r.Encryption
	if enc.EncryptionType == "" {
		enc.EncryptionType = engine.EncryptionAES256
	}
	if enc.EncryptionType != engine.EncryptionAES256 && enc.KMSKey == "" {
		// KMS without a key is the registry's default key, whose ARN ECR
		// reports, as it reports its managed key's.
		enc.KMSKey = g.keyARN(engine.DefaultKeyName)
	}
	mut := r.TagMutability
	if mut == "" {
		mut = engine.TagMutable
	}
	return Repository{
		RepositoryARN:                      g.repositoryARN(r.Name),
		RegistryID:                         g.account,
		RepositoryName:                     r.Name,
		RepositoryURI:                      host + "/" + r.Name,
		CreatedAt:                          awsTime(r.CreatedAt),
		ImageTagMutability:                 mut,
		ImageTagMutabilityExclusionFilters: tagFiltersFromEngine(r.TagMutabilityExclusions),
		ImageScanningConfiguration:         ImageScanningConfiguration{ScanOnPush: r.ScanOnPush},
		EncryptionConfiguration:            encryptionFromEngine(enc),
	}
}

// imageDetailFromEngine describes image im of repo.
func imageDetailFromEngine(g registry, repo string, im *engine.ImageDetail) ImageDetail {
	return ImageDetail{
		RegistryID: g.account, RepositoryName: repo,
		ImageDigest: string(im.Digest), ImageTags: im.Tags, ImageSizeInBytes: im.Size,
		ImagePushedAt: awsTime(im.PushedAt), ImageManifestMediaType: im.MediaType,
		ArtifactMediaType: im.ArtifactType, LastRecordedPullTime: awsTime(im.LastPulledAt),
		ImageStatus: string(imageStatusOf(im)), LastArchivedAt: awsTime(im.LastArchivedAt), LastActivatedAt: awsTime(im.LastActivatedAt),
	}
}

// templateFromEngine is t on the wire: an encryption configuration only
// when one is set.
func templateFromEngine(t engine.CreationTemplate) RepositoryCreationTemplate {
	out := RepositoryCreationTemplate{
		Prefix: t.Prefix, Description: t.Description, AppliedFor: t.AppliedFor, CustomRoleARN: t.CustomRoleARN,
		ImageTagMutability:                 t.TagMutability,
		ImageTagMutabilityExclusionFilters: tagFiltersFromEngine(t.TagMutabilityExclusions),
		LifecyclePolicy:                    t.LifecyclePolicy,
		RepositoryPolicy:                   t.RepositoryPolicy,
		ResourceTags:                       tagsFromEngine(t.ResourceTags),
		CreatedAt:                          awsTime(t.CreatedAt),
		UpdatedAt:                          awsTime(t.UpdatedAt),
	}
	if t.Encryption.EncryptionType != "" {
		enc := encryptionFromEngine(t.Encryption)
		out.EncryptionConfiguration = &enc
	}
	return out
}

// cacheRuleFromEngine is r on the wire.
func cacheRuleFromEngine(g registry, r engine.PullThroughCacheRule) PullThroughCacheRule {
	return PullThroughCacheRule{
		ECRRepositoryPrefix: r.ECRRepositoryPrefix, UpstreamRegistryURL: r.UpstreamRegistryURL,
		UpstreamRepositoryPrefix: r.UpstreamRepositoryPrefix, UpstreamRegistry: r.UpstreamRegistry,
		CredentialARN: r.CredentialARN, RegistryID: g.account,
		CreatedAt: awsTime(r.CreatedAt), UpdatedAt: awsTime(r.UpdatedAt),
	}
}
