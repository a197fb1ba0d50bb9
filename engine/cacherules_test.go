package engine

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseUpstreamURL(t *testing.T) {
	tests := []struct {
		in    string
		host  string
		plain bool
		ok    bool
	}{
		{"registry-1.docker.io", "registry-1.docker.io", false, true},
		{"public.ecr.aws", "public.ecr.aws", false, true},
		{"https://ghcr.io", "ghcr.io", false, true},
		{"https://ghcr.io/", "ghcr.io", false, true},
		{"http://127.0.0.1:5000", "127.0.0.1:5000", true, true},
		{"", "", false, false},
		{"ftp://x", "", false, false},
		{"https://ghcr.io/some/path", "", false, false},
		{"https://user:pw@ghcr.io", "", false, false},
		{"https://ghcr.io?x=1", "", false, false},
		{"://", "", false, false},
	}
	for _, tt := range tests {
		host, plain, err := ParseUpstreamURL(tt.in)
		if !tt.ok {
			require.ErrorIs(t, err, ErrInvalidArgument, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.host, host, tt.in)
		assert.Equal(t, tt.plain, plain, tt.in)
	}
}

func TestPullThroughCacheRules(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	_, ok, err := e.MatchPullThroughCacheRule(ctx, "hub/library/app")
	require.NoError(t, err)
	require.False(t, ok, "no rules")

	for _, bad := range []PullThroughCacheRule{
		{ECRRepositoryPrefix: "x", UpstreamRegistryURL: "ghcr.io"},
		{ECRRepositoryPrefix: "this-prefix-is-much-longer-than-thirty", UpstreamRegistryURL: "ghcr.io"},
		{ECRRepositoryPrefix: "Hub", UpstreamRegistryURL: "ghcr.io"},
		{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: "ftp://ghcr.io"},
		{ECRRepositoryPrefix: RootPrefix, UpstreamRegistryURL: "ghcr.io", UpstreamRepositoryPrefix: "library"},
	} {
		_, err := e.CreatePullThroughCacheRule(ctx, bad)
		require.ErrorIs(t, err, ErrInvalidArgument, "%+v", bad)
	}
	hub, err := e.CreatePullThroughCacheRule(ctx, PullThroughCacheRule{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: "registry-1.docker.io"})
	require.NoError(t, err)
	assert.Equal(t, RootPrefix, hub.UpstreamRepositoryPrefix, "the upstream prefix defaults to ROOT")
	assert.False(t, hub.CreatedAt.IsZero())
	_, err = e.CreatePullThroughCacheRule(ctx, PullThroughCacheRule{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: "ghcr.io"})
	require.ErrorIs(t, err, ErrCacheRuleExists)
	_, err = e.CreatePullThroughCacheRule(ctx, PullThroughCacheRule{ECRRepositoryPrefix: "hub/team", UpstreamRegistryURL: "ghcr.io", UpstreamRepositoryPrefix: "org"})
	require.NoError(t, err)
	_, err = e.CreatePullThroughCacheRule(ctx, PullThroughCacheRule{ECRRepositoryPrefix: RootPrefix, UpstreamRegistryURL: "public.ecr.aws"})
	require.NoError(t, err)

	tests := []struct{ repo, prefix, upstream string }{
		{"hub/library/app", "hub", "library/app"},
		{"hub/team/app", "hub/team", "org/app"},
		{"hubx/app", RootPrefix, "hubx/app"},
		{"hub", RootPrefix, "hub"},
	}
	for _, tt := range tests {
		r, ok, err := e.MatchPullThroughCacheRule(ctx, tt.repo)
		require.NoError(t, err)
		require.True(t, ok, tt.repo)
		assert.Equal(t, tt.prefix, r.ECRRepositoryPrefix, tt.repo)
		assert.Equal(t, tt.upstream, r.UpstreamRepository(tt.repo), tt.repo)
	}

	rules, err := e.PullThroughCacheRules(ctx)
	require.NoError(t, err)
	require.Len(t, rules, 3)
	put, err := e.PutPullThroughCacheRule(ctx, PullThroughCacheRule{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: "mirror.gcr.io"})
	require.NoError(t, err, "put replaces")
	assert.Equal(t, hub.CreatedAt, put.CreatedAt, "and keeps the creation time")
	r, _, err := e.MatchPullThroughCacheRule(ctx, "hub/library/app")
	require.NoError(t, err)
	assert.Equal(t, "mirror.gcr.io", r.UpstreamRegistryURL)
	old, err := e.DeletePullThroughCacheRule(ctx, RootPrefix)
	require.NoError(t, err)
	assert.Equal(t, "public.ecr.aws", old.UpstreamRegistryURL)
	_, ok, err = e.MatchPullThroughCacheRule(ctx, "hubx/app")
	require.NoError(t, err)
	assert.False(t, ok, "the cached rules follow the delete")
	_, err = e.DeletePullThroughCacheRule(ctx, RootPrefix)
	require.ErrorIs(t, err, ErrCacheRuleNotFound)
	_, err = e.DeletePullThroughCacheRule(ctx, "")
	require.ErrorIs(t, err, ErrCacheRuleNotFound)
}

func TestEnsureCacheRepositoryUsesItsTemplate(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, &Options{Logger: quietOptions().Logger}) // CreateOnPush off
	ensure := func(repo string) error {
		_, err := e.EnsureCacheRepository(ctx, repo)
		return err
	}
	require.ErrorIs(t, ensure("hub/library/app"), ErrCacheRuleNotFound, "no rule covers it")
	for _, p := range []string{"hub", RootPrefix} {
		_, err := e.PutPullThroughCacheRule(ctx, PullThroughCacheRule{ECRRepositoryPrefix: p, UpstreamRegistryURL: "registry-1.docker.io"})
		require.NoError(t, err)
	}
	require.NoError(t, e.PutCreationTemplate(ctx, CreationTemplate{Prefix: "hub", AppliedFor: []string{AppliedForPullThroughCache},
		RepositorySettings: RepositorySettings{ResourceTags: []ResourceTag{{Key: "cache", Value: "yes"}}}}))
	created, err := e.EnsureCacheRepository(ctx, "hub/library/app")
	require.NoError(t, err)
	require.True(t, created)
	r, err := e.Repository(ctx, "hub/library/app")
	require.NoError(t, err)
	assert.Equal(t, []ResourceTag{{Key: "cache", Value: "yes"}}, r.ResourceTags)
	assert.Equal(t, "hub", r.CreatedByCacheRule, "the rule that created it is recorded")
	created, err = e.EnsureCacheRepository(ctx, "hub/library/app")
	require.NoError(t, err, "exists: nothing to do")
	require.False(t, created)
	require.NoError(t, ensure("other/app"), "no template: defaults")
	r, err = e.Repository(ctx, "other/app")
	require.NoError(t, err)
	assert.Equal(t, RootPrefix, r.CreatedByCacheRule)
	require.ErrorIs(t, ensure("Bad"), ErrNameInvalid)
}

// TestCacheRulesNeverTakeOverRepositories: a rule (ROOT, or a prefix
// such as team) applies only to repositories a pull-through cache created
// and to names with no repository yet. A repository that was pushed to,
// or created directly, is never matched, never filled
// (PutCachedManifest, EnsureCacheRepository refuse it) and its tags never
// move; the cache's own repositories keep their marker across a reopen
// and a settings change.
func TestCacheRulesNeverTakeOverRepositories(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(dir, &Options{CreateOnPush: true, Logger: quietOptions().Logger})
	require.NoError(t, err)
	defer func() { e.Close() }()
	pushed, payload := pushImage(t, e, "team/app", "v1", rnd(100))
	_, err = e.CreateRepository(ctx, "team/direct", RepositorySettings{})
	require.NoError(t, err)
	for _, p := range []string{"team", RootPrefix} {
		_, err := e.PutPullThroughCacheRule(ctx, PullThroughCacheRule{ECRRepositoryPrefix: p, UpstreamRegistryURL: "http://127.0.0.1:1"})
		require.NoError(t, err)
	}

	for _, repo := range []string{"team/app", "team/direct"} {
		_, ok, err := e.MatchPullThroughCacheRule(ctx, repo)
		require.NoError(t, err)
		assert.False(t, ok, "%s was not created by the cache", repo)
		_, err = e.EnsureCacheRepository(ctx, repo)
		require.ErrorIs(t, err, ErrNotPullThroughCache)
	}
	// A fill's manifest never lands in team/app, never moves its tag.
	other, otherPayload := pushImage(t, e, "scratch", "x", rnd(100))
	_, err = e.PutCachedManifest(ctx, "team/app", "v1", "application/vnd.oci.image.manifest.v1+json", otherPayload)
	require.ErrorIs(t, err, ErrNotPullThroughCache)
	m, err := e.GetManifest(ctx, "team/app", "v1")
	require.NoError(t, err)
	assert.Equal(t, pushed, m.Digest)
	assert.Equal(t, payload, m.Payload)
	assert.NotEqual(t, pushed, other)

	// A name with no repository yet is the cache's; so is what it creates.
	for _, repo := range []string{"team/cached", "elsewhere/cached"} {
		rule, ok, err := e.MatchPullThroughCacheRule(ctx, repo)
		require.NoError(t, err)
		require.True(t, ok, repo)
		_, err = e.EnsureCacheRepository(ctx, repo)
		require.NoError(t, err)
		again, ok, err := e.MatchPullThroughCacheRule(ctx, repo)
		require.NoError(t, err)
		require.True(t, ok, repo)
		assert.Equal(t, rule.ECRRepositoryPrefix, again.ECRRepositoryPrefix)
	}
	require.NoError(t, e.SetScanOnPush(ctx, "team/cached", true))
	require.NoError(t, e.Close())
	e, err = Open(dir, &Options{CreateOnPush: true, Logger: quietOptions().Logger})
	require.NoError(t, err)
	r, err := e.Repository(ctx, "team/cached")
	require.NoError(t, err)
	assert.Equal(t, "team", r.CreatedByCacheRule, "kept across a settings change and a reopen")
	r, err = e.Repository(ctx, "team/app")
	require.NoError(t, err)
	assert.Empty(t, r.CreatedByCacheRule)
	_, ok, err := e.MatchPullThroughCacheRule(ctx, "team/cached")
	require.NoError(t, err)
	assert.True(t, ok)
	_, ok, err = e.MatchPullThroughCacheRule(ctx, "team/app")
	require.NoError(t, err)
	assert.False(t, ok)
}
