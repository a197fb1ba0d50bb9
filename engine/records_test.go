package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/record"
	"github.com/berthstore/berth/index"
)

// TestUnversionedRecordsLoad is the migration of stored settings: a store
// holding repository settings, creation templates and pull-through cache
// rules as the engine wrote them before records had a version
// (engine/internal/record/testdata/unversioned.json) serves them through
// the API, enforces them, and rewrites each in the current version when
// it next changes, keeping creation times.
func TestUnversionedRecordsLoad(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	_, err := e.CreateKey(ctx, "team-key")
	require.NoError(t, err)

	raw, err := os.ReadFile("internal/record/testdata/unversioned.json")
	require.NoError(t, err)
	var recs []struct{ Kind, Key, Value string }
	require.NoError(t, json.Unmarshal(raw, &recs))
	created := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	b := e.db.NewBatch()
	for _, r := range recs {
		switch r.Kind {
		case "repository-settings":
			require.NoError(t, b.PutRepository(&index.Repository{Name: r.Key, CreatedAt: created, Settings: []byte(r.Value)}))
		case "creation-template":
			require.NoError(t, b.PutTemplate(r.Key, []byte(r.Value)))
		case "pull-through-cache-rule":
			require.NoError(t, b.PutCacheRule(r.Key, []byte(r.Value)))
		}
	}
	require.NoError(t, b.Commit(true))
	b.Close()

	// Served through the API, field for field.
	repo, err := e.Repository(ctx, "prod/app")
	require.NoError(t, err)
	assert.Equal(t, RepositorySettings{
		TagMutability: TagImmutableWithExclusion, TagMutabilityExclusions: wildcard("latest", "dev-*"),
		Encryption: EncryptionConfig{EncryptionType: EncryptionKMS, KMSKey: "team-key"}, ScanOnPush: true,
		LifecyclePolicy:  `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`,
		RepositoryPolicy: `{"Version":"2012-10-17","Statement":[{"Sid":"deny-delete","Effect":"Deny","Principal":"*","Action":["ecr:BatchDeleteImage"]}]}`,
		ResourceTags:     []ResourceTag{{Key: "team", Value: "payments"}, {Key: "env", Value: "prod"}},
	}, repo.RepositorySettings)
	assert.Equal(t, KeyEnabled, repo.KeyState)
	assert.True(t, created.Equal(repo.CreatedAt))

	templates, err := e.CreationTemplates(ctx)
	require.NoError(t, err)
	require.Len(t, templates, 2)
	rootCreated := time.Date(2026, 12, 2, 5, 31, 45, 743876069, time.UTC)
	assert.Equal(t, CreationTemplate{Prefix: RootPrefix, AppliedFor: []string{AppliedForCreateOnPush}, CreatedAt: rootCreated, UpdatedAt: rootCreated,
		RepositorySettings: RepositorySettings{TagMutability: TagMutable, Encryption: EncryptionConfig{EncryptionType: EncryptionAES256}}}, templates[0])
	assert.Equal(t, "prod", templates[1].Prefix)
	assert.Equal(t, "arn:aws:iam::123456789012:role/ecr-templates", templates[1].CustomRoleARN)
	assert.Equal(t, EncryptionConfig{EncryptionType: EncryptionKMS, KMSKey: "team-key"}, templates[1].Encryption)

	rules, err := e.PullThroughCacheRules(ctx)
	require.NoError(t, err)
	require.Len(t, rules, 2)
	assert.Equal(t, "http://127.0.0.1:5000", rules[0].UpstreamRegistryURL)
	rule, ok, err := e.MatchPullThroughCacheRule(ctx, "docker-hub/alpine")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "library/alpine", rule.UpstreamRepository("docker-hub/alpine"))

	// Enforced: tag immutability with its exclusions, the template on push.
	pushImage(t, e, "prod/app", "v1", rnd(10))
	_, err = tryPushImage(ctx, e, "prod/app", "v1", rnd(10))
	require.ErrorIs(t, err, ErrTagImmutable)
	pushImage(t, e, "prod/app", "latest", rnd(10))
	pushImage(t, e, "prod/app", "latest", rnd(10))
	pushImage(t, e, "prod/new", "v1", rnd(10))
	created2, err := e.Repository(ctx, "prod/new")
	require.NoError(t, err)
	assert.Equal(t, TagImmutable, created2.TagMutability, "created by the prod template")
	assert.Equal(t, "team-key", created2.Encryption.KMSKey)

	// Rewritten in the current version when next written.
	require.NoError(t, e.SetScanOnPush(ctx, "plain", true))
	rec, err := e.db.Repository("plain")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(rec.Settings), fmt.Sprintf(`{"version":%d,`, record.RepositoryVersion)), string(rec.Settings))
	plain, err := e.Repository(ctx, "plain")
	require.NoError(t, err)
	assert.Equal(t, RepositorySettings{TagMutability: TagMutable, Encryption: EncryptionConfig{EncryptionType: EncryptionAES256}, ScanOnPush: true},
		plain.RepositorySettings)

	require.NoError(t, e.PutCreationTemplate(ctx, CreationTemplate{Prefix: RootPrefix, AppliedFor: []string{AppliedForCreateOnPush}, Description: "new"}))
	v, err := e.db.Template(RootPrefix)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(v), `{"version":1,`), string(v))
	templates, err = e.CreationTemplates(ctx)
	require.NoError(t, err)
	assert.Equal(t, "new", templates[0].Description)
	assert.True(t, rootCreated.Equal(templates[0].CreatedAt), "the creation time survives the rewrite")

	r, err := e.PutPullThroughCacheRule(ctx, PullThroughCacheRule{ECRRepositoryPrefix: "docker-hub", UpstreamRegistryURL: "registry-1.docker.io"})
	require.NoError(t, err)
	assert.True(t, time.Date(2026, 12, 2, 5, 31, 45, 744370604, time.UTC).Equal(r.CreatedAt))
	v, err = e.db.CacheRule("docker-hub")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(v), `{"version":2,`), string(v))
}
