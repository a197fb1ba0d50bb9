package cli

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// todaysConfig is a configuration file as the daemon has always read it:
// every field of a creation template and of a pull-through cache rule,
// in the ECR field names that the engine's types once gave the file.
const todaysConfig = `
templates:
  - prefix: team-a
    description: team A's repositories
    appliedFor: [CREATE_ON_PUSH, PULL_THROUGH_CACHE]
    customRoleArn: arn:aws:iam::000000000000:role/ecr-templates
    imageTagMutability: IMMUTABLE_WITH_EXCLUSION
    imageTagMutabilityExclusionFilters:
      - {filter: latest, filterType: WILDCARD}
      - {filter: "dev-*", filterType: WILDCARD}
    encryptionConfiguration: {encryptionType: AES256}
    scanOnPush: true
    lifecyclePolicy: '{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}'
    repositoryPolicy: '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:PutImage"}]}'
    resourceTags:
      - {Key: team, Value: a}
  - prefix: ROOT
    appliedFor: [CREATE_ON_PUSH]
    encryptionConfiguration: {encryptionType: KMS, kmsKey: team-key}
pullThroughCacheRules:
  - {ecrRepositoryPrefix: hub, upstreamRegistryUrl: registry-1.docker.io, upstreamRepositoryPrefix: library}
  - {ecrRepositoryPrefix: ghcr, upstreamRegistryUrl: "https://ghcr.io"}
`

// TestTodaysConfigFormat: a configuration file of today's format parses
// into the CLI's own schema, and converts to the engine's types field for
// field; the engine stores what it says.
func TestTodaysConfigFormat(t *testing.T) {
	c := DefaultConfig()
	require.NoError(t, parseConfig([]byte(todaysConfig), "berth.yaml", &c))
	require.NoError(t, c.Validate())
	require.Len(t, c.Templates, 2)
	a := c.Templates[0].engineTemplate()
	assert.Equal(t, engine.CreationTemplate{
		Prefix: "team-a", Description: "team A's repositories",
		AppliedFor:    []string{engine.AppliedForCreateOnPush, engine.AppliedForPullThroughCache},
		CustomRoleARN: "arn:aws:iam::000000000000:role/ecr-templates",
		RepositorySettings: engine.RepositorySettings{
			TagMutability:           engine.TagImmutableWithExclusion,
			TagMutabilityExclusions: []engine.TagFilter{{Filter: "latest", FilterType: "WILDCARD"}, {Filter: "dev-*", FilterType: "WILDCARD"}},
			Encryption:              engine.EncryptionConfig{EncryptionType: engine.EncryptionAES256},
			ScanOnPush:              true,
			LifecyclePolicy:         `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}`,
			RepositoryPolicy:        `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:PutImage"}]}`,
			ResourceTags:            []engine.ResourceTag{{Key: "team", Value: "a"}},
		},
	}, a)
	assert.Equal(t, engine.EncryptionConfig{EncryptionType: engine.EncryptionKMS, KMSKey: "team-key"}, c.Templates[1].engineTemplate().Encryption)
	assert.Equal(t, []engine.PullThroughCacheRule{
		{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: "registry-1.docker.io", UpstreamRepositoryPrefix: "library"},
		{ECRRepositoryPrefix: "ghcr", UpstreamRegistryURL: "https://ghcr.io"},
	}, []engine.PullThroughCacheRule{c.PullThroughCacheRules[0].engineRule(), c.PullThroughCacheRules[1].engineRule()})

	// The store keeps what the file says (the first template: the second
	// names a key this fresh store does not have).
	ctx := context.Background()
	e, err := engine.Open(t.TempDir(), &engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	err = applyTemplates(ctx, e, c.Templates[:1])
	require.ErrorIs(t, err, engine.ErrInvalidArgument, "customRoleArn still parses, and is refused: Berth has no roles")
	require.ErrorContains(t, err, "customRoleArn")
	c.Templates[0].CustomRoleARN, a.CustomRoleARN = "", ""
	require.NoError(t, applyTemplates(ctx, e, c.Templates[:1]))
	stored, err := e.CreationTemplates(ctx)
	require.NoError(t, err)
	require.Len(t, stored, 1)
	stored[0].CreatedAt, stored[0].UpdatedAt = a.CreatedAt, a.UpdatedAt
	assert.Equal(t, a, stored[0])
	assert.Equal(t, c.Templates[0].Prefix, storedTemplateOf(stored[0]).Prefix)
	assert.Equal(t, c.Templates[0].ImageTagMutabilityExclusionFilters, storedTemplateOf(stored[0]).ImageTagMutabilityExclusionFilters)
}

// TestTemplateFlagIsStrict: the --template flag refuses a field the
// schema does not have.
func TestTemplateFlagIsStrict(t *testing.T) {
	c := DefaultConfig()
	require.Error(t, templateList{&c}.Set(`{"prefix":"x","appliedFor":["CREATE_ON_PUSH"],"imageTagMutabilty":"IMMUTABLE"}`))
	require.NoError(t, templateList{&c}.Set(`{"prefix":"x","appliedFor":["CREATE_ON_PUSH"],"imageTagMutability":"IMMUTABLE"}`))
	assert.Equal(t, engine.TagImmutable, c.Templates[0].engineTemplate().TagMutability)
}
