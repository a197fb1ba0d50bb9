package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCreationCheck: every operation that creates a repository on the
// caller's behalf asks the context's creation check first, with what it
// would create (the template's settings, its KMS key); a refusal fails
// the operation with the check's error and creates nothing. Existing
// repositories are not asked about.
func TestCreationCheck(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, &Options{CreateOnPush: true, Logger: quietOptions().Logger})
	_, err := e.CreateKey(ctx, "team-key")
	require.NoError(t, err)
	require.NoError(t, e.PutCreationTemplate(ctx, CreationTemplate{Prefix: "team", AppliedFor: []string{AppliedForCreateOnPush, AppliedForPullThroughCache},
		RepositorySettings: RepositorySettings{Encryption: EncryptionConfig{EncryptionType: EncryptionKMS, KMSKey: "team-key"},
			ResourceTags: []ResourceTag{{Key: "team", Value: "a"}}}}))
	_, err = e.PutPullThroughCacheRule(ctx, PullThroughCacheRule{ECRRepositoryPrefix: "team", UpstreamRegistryURL: "registry-1.docker.io"})
	require.NoError(t, err)

	refused := errors.New("may not create")
	var asked []RepositoryCreation
	deny := WithCreationCheck(ctx, func(_ context.Context, c RepositoryCreation) error {
		asked = append(asked, c)
		return fmt.Errorf("%w: %w", ErrAccessDenied, refused)
	})
	payload := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	ops := map[string]func(ctx context.Context, repo string) error{
		"BeginUpload": func(ctx context.Context, repo string) error { _, err := e.BeginUpload(ctx, repo); return err },
		"PutBlob": func(ctx context.Context, repo string) error {
			_, err := e.PutBlob(ctx, repo, bytes.NewReader([]byte("x")), "")
			return err
		},
		"PutManifest": func(ctx context.Context, repo string) error {
			_, err := e.PutManifest(ctx, repo, "v1", "application/vnd.oci.image.index.v1+json", payload)
			return err
		},
		"EnsureCacheRepository": func(ctx context.Context, repo string) error { _, err := e.EnsureCacheRepository(ctx, repo); return err },
		"PutCachedManifest": func(ctx context.Context, repo string) error {
			_, err := e.PutCachedManifest(ctx, repo, "v1", "application/vnd.oci.image.index.v1+json", payload)
			return err
		},
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			asked = nil
			repo := "team/" + strings.ToLower(name)
			err := op(deny, repo)
			require.ErrorIs(t, err, refused)
			require.ErrorIs(t, err, ErrAccessDenied)
			require.Len(t, asked, 1)
			assert.Equal(t, repo, asked[0].Name)
			assert.Equal(t, "team", asked[0].Template)
			assert.Equal(t, "team-key", asked[0].Settings.Encryption.KMSKey)
			assert.Equal(t, []ResourceTag{{Key: "team", Value: "a"}}, asked[0].Settings.ResourceTags)
			_, err = e.Repository(ctx, repo)
			require.ErrorIs(t, err, ErrNameUnknown, "nothing created")
		})
	}
	asked = nil
	require.NoError(t, ops["PutBlob"](ctx, "team/allowed"), "no check: the templates alone decide")
	require.NoError(t, ops["PutBlob"](deny, "team/allowed"), "an existing repository is not created again")
	assert.Empty(t, asked)
	allow := WithCreationCheck(ctx, func(_ context.Context, c RepositoryCreation) error { asked = append(asked, c); return nil })
	_, err = e.EnsureCacheRepository(allow, "team/cache")
	require.NoError(t, err)
	require.Len(t, asked, 1)
	assert.Equal(t, AppliedForPullThroughCache, asked[0].AppliedFor)
	assert.Equal(t, "team", asked[0].CacheRule)
}

// TestRepositoryPublic: a repository is public when its policy allows
// the anonymous principal both pull actions, and not when it allows one,
// names a user, or a condition (such as the caller's address) restricts
// it. Computed at each Repository call: a policy change shows at once.
func TestRepositoryPublic(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, &Options{CreateOnPush: true, Logger: quietOptions().Logger})
	_, err := e.CreateRepository(ctx, "pub/app", RepositorySettings{})
	require.NoError(t, err)
	tests := []struct {
		policy string
		public bool
	}{
		{"", false},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}`, true},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}`, true},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"}]}`, true},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}]}`, false},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}`, false},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`, false},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"},{"Effect":"Deny","Principal":"*","Action":"ecr:GetDownloadUrlForLayer"}]}`, false},
	}
	for _, tt := range tests {
		if tt.policy == "" {
			if _, err := e.DeleteRepositoryPolicy(ctx, "pub/app"); err != nil {
				require.ErrorIs(t, err, ErrRepositoryPolicyNotFound)
			}
		} else {
			require.NoError(t, e.SetRepositoryPolicy(ctx, "pub/app", tt.policy))
		}
		r, err := e.Repository(ctx, "pub/app")
		require.NoError(t, err)
		assert.Equal(t, tt.public, r.Public, tt.policy)
	}
}
