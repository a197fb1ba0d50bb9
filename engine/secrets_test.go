package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/index"
)

const hubCreds = `{"username":"berth-bot","accessToken":"dckr_pat_not-a-real-token"}`

// TestSecrets: a secret is stored sealed (its value is nowhere in the
// index's files), opens through SecretValue only, is listed without its
// value, replaced in place, and deleted; names and values are checked.
func TestSecrets(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(dir, quietOptions())
	require.NoError(t, err)
	defer func() { e.Close() }()

	info, created, err := e.PutSecret(ctx, "ecr-pullthroughcache/hub", []byte(hubCreds), "")
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, "arn:aws:secretsmanager:"+DefaultRegion+":"+DefaultAccount+":secret:ecr-pullthroughcache/hub", info.ARN)
	assert.Equal(t, "berth-default", info.Key)
	v, err := e.SecretValue(ctx, "ecr-pullthroughcache/hub")
	require.NoError(t, err)
	assert.Equal(t, hubCreds, string(v))

	again, created, err := e.PutSecret(ctx, "ecr-pullthroughcache/hub", []byte(`{"username":"u2","accessToken":"t2"}`), "")
	require.NoError(t, err)
	assert.False(t, created, "replaced")
	assert.Equal(t, info.CreatedAt, again.CreatedAt)
	v, err = e.SecretValue(ctx, "ecr-pullthroughcache/hub")
	require.NoError(t, err)
	assert.Contains(t, string(v), `"u2"`)

	list, err := e.Secrets(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "ecr-pullthroughcache/hub", list[0].Name)

	for _, bad := range []struct {
		name, value string
	}{{"", "x"}, {"has space", "x"}, {string(bytes.Repeat([]byte("a"), 513)), "x"}, {"ok", ""}, {"ok", string(make([]byte, MaxSecretSize+1))}} {
		_, _, err := e.PutSecret(ctx, bad.name, []byte(bad.value), "")
		require.ErrorIs(t, err, ErrInvalidArgument, "%.20q", bad.name)
	}
	_, _, err = e.PutSecret(ctx, "x", []byte("v"), "no-such-key")
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = e.SecretValue(ctx, "absent")
	require.ErrorIs(t, err, ErrSecretNotFound)
	require.ErrorIs(t, e.DeleteSecret(ctx, "absent"), ErrSecretNotFound)

	// Sealed at rest: the value is in none of the store's files.
	require.NoError(t, e.Close())
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("accessToken")) || bytes.Contains(b, []byte(`"t2"`)) {
			return errors.New("the secret's value is in the clear in " + p)
		}
		return nil
	})
	require.NoError(t, err)
	e, err = Open(dir, quietOptions())
	require.NoError(t, err)
	v, err = e.SecretValue(ctx, "ecr-pullthroughcache/hub")
	require.NoError(t, err, "after a reopen")
	assert.Contains(t, string(v), `"t2"`)

	// A sealed value moved to another name does not open there.
	raw, err := e.db.Secret("ecr-pullthroughcache/hub")
	require.NoError(t, err)
	b := e.db.NewBatch()
	require.NoError(t, b.PutSecret("ecr-pullthroughcache/other", raw))
	require.NoError(t, b.Commit(true))
	_, err = e.SecretValue(ctx, "ecr-pullthroughcache/other")
	require.ErrorIs(t, err, ErrCorrupt, "the wrap and the value are bound to the name")

	require.NoError(t, e.DeleteSecret(ctx, "ecr-pullthroughcache/hub"))
	_, err = e.db.Secret("ecr-pullthroughcache/hub")
	require.ErrorIs(t, err, index.ErrNotFound)
}

// TestSecretsFollowKeyOperations: a secret sealed under a named key is
// rewrapped when the key rotates (and still opens), cannot be read while
// the key is disabled, and is shredded (removed) when it is destroyed;
// Keys counts the secrets of each key.
func TestSecretsFollowKeyOperations(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	_, err := e.CreateKey(ctx, "creds")
	require.NoError(t, err)
	_, _, err = e.PutSecret(ctx, "ecr-pullthroughcache/a", []byte(hubCreds), "creds")
	require.NoError(t, err)
	_, _, err = e.PutSecret(ctx, "ecr-pullthroughcache/b", []byte(hubCreds), "")
	require.NoError(t, err)
	status := func(name string) KeyStatus {
		keys, err := e.Keys(ctx)
		require.NoError(t, err)
		for _, k := range keys {
			if k.Name == name {
				return k
			}
		}
		t.Fatalf("no key %s", name)
		return KeyStatus{}
	}
	assert.Equal(t, 1, status("creds").Secrets)
	assert.Equal(t, 1, status("berth-default").Secrets)

	v, err := e.RotateKey(ctx, "creds")
	require.NoError(t, err)
	require.NoError(t, e.WaitRewraps(ctx))
	rec, err := e.loadSecret("ecr-pullthroughcache/a")
	require.NoError(t, err)
	assert.Equal(t, v, rec.KeyVersion, "rewrapped under the new version")
	assert.Zero(t, status("creds").StaleWraps)
	got, err := e.SecretValue(ctx, "ecr-pullthroughcache/a")
	require.NoError(t, err)
	assert.Equal(t, hubCreds, string(got))

	require.NoError(t, e.DisableKey(ctx, "creds"))
	_, err = e.SecretValue(ctx, "ecr-pullthroughcache/a")
	require.ErrorIs(t, err, ErrKeyUnavailable)
	_, _, err = e.PutSecret(ctx, "ecr-pullthroughcache/c", []byte(hubCreds), "creds")
	require.ErrorIs(t, err, ErrKeyUnavailable)
	require.NoError(t, e.EnableKey(ctx, "creds"))

	require.NoError(t, e.DestroyKey(ctx, "creds"))
	_, err = e.SecretValue(ctx, "ecr-pullthroughcache/a")
	require.ErrorIs(t, err, ErrSecretNotFound, "shredded with its key")
	_, err = e.SecretValue(ctx, "ecr-pullthroughcache/b")
	require.NoError(t, err, "another key's secret stays")
}

// TestCacheRuleCredentials: a rule's credentialArn must name a stored
// secret of this registry under ecr-pullthroughcache/ holding
// credentials; UpdatePullThroughCacheRule sets it; a secret a rule names
// cannot be deleted.
func TestCacheRuleCredentials(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	arn := e.SecretARN("ecr-pullthroughcache/hub")
	rule := PullThroughCacheRule{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: "registry-1.docker.io", CredentialARN: arn}
	_, err := e.CreatePullThroughCacheRule(ctx, rule)
	require.ErrorIs(t, err, ErrSecretNotFound, "refused when set")
	_, _, err = e.PutSecret(ctx, "ecr-pullthroughcache/hub", []byte("not json"), "")
	require.NoError(t, err)
	_, err = e.CreatePullThroughCacheRule(ctx, rule)
	require.ErrorIs(t, err, ErrInvalidArgument, "not credentials")
	_, _, err = e.PutSecret(ctx, "ecr-pullthroughcache/hub", []byte(hubCreds), "")
	require.NoError(t, err)
	_, _, err = e.PutSecret(ctx, "elsewhere", []byte(hubCreds), "")
	require.NoError(t, err)
	for _, bad := range []string{e.SecretARN("elsewhere"), "arn:aws:secretsmanager:eu-west-1:111111111111:secret:ecr-pullthroughcache/hub", "hub"} {
		r := rule
		r.CredentialARN = bad
		_, err := e.CreatePullThroughCacheRule(ctx, r)
		require.ErrorIs(t, err, ErrInvalidArgument, bad)
	}
	got, err := e.CreatePullThroughCacheRule(ctx, rule)
	require.NoError(t, err)
	assert.Equal(t, arn, got.CredentialARN)
	assert.Equal(t, "docker-hub", got.UpstreamRegistry, "found from the URL")
	c, ok, err := e.CacheRuleCredentials(ctx, &got)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "berth-bot", c.Username)
	assert.NotContains(t, c.String()+c.GoString(), "dckr_pat", "never printed")

	require.ErrorIs(t, e.DeleteSecret(ctx, "ecr-pullthroughcache/hub"), ErrSecretInUse)

	_, _, err = e.PutSecret(ctx, "ecr-pullthroughcache/hub2", []byte(hubCreds), "")
	require.NoError(t, err)
	up, err := e.UpdatePullThroughCacheRule(ctx, "hub/", e.SecretARN("ecr-pullthroughcache/hub2"))
	require.NoError(t, err)
	assert.Equal(t, e.SecretARN("ecr-pullthroughcache/hub2"), up.CredentialARN)
	assert.Equal(t, got.CreatedAt, up.CreatedAt)
	_, err = e.UpdatePullThroughCacheRule(ctx, "hub", e.SecretARN("ecr-pullthroughcache/none"))
	require.ErrorIs(t, err, ErrSecretNotFound)
	_, err = e.UpdatePullThroughCacheRule(ctx, "hub", "")
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = e.UpdatePullThroughCacheRule(ctx, "nope", arn)
	require.ErrorIs(t, err, ErrCacheRuleNotFound)
	require.NoError(t, e.DeleteSecret(ctx, "ecr-pullthroughcache/hub"), "no longer named")
	r, _, err := e.MatchPullThroughCacheRule(ctx, "hub/library/app")
	require.NoError(t, err)
	assert.Equal(t, e.SecretARN("ecr-pullthroughcache/hub2"), r.CredentialARN, "the cached rules follow the update")
}

// TestUpstreamRegistryNames: ECR's names of upstream registries give
// their URLs, are found from them, and are refused when unknown or when
// the URL is another registry's.
func TestUpstreamRegistryNames(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	tests := []struct {
		name, url         string
		wantName, wantURL string
		ok                bool
	}{
		{"docker-hub", "", "docker-hub", "registry-1.docker.io", true},
		{"quay", "", "quay", "quay.io", true},
		{"ecr-public", "public.ecr.aws", "ecr-public", "public.ecr.aws", true},
		{"k8s", "https://registry.k8s.io", "k8s", "https://registry.k8s.io", true},
		{"github-container-registry", "", "github-container-registry", "ghcr.io", true},
		{"gitlab-container-registry", "", "gitlab-container-registry", "registry.gitlab.com", true},
		{"chainguard", "", "chainguard", "cgr.dev", true},
		{"azure-container-registry", "myreg.azurecr.io", "azure-container-registry", "myreg.azurecr.io", true},
		{"ecr", "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "ecr", "123456789012.dkr.ecr.eu-west-1.amazonaws.com", true},
		{"", "ghcr.io", "github-container-registry", "ghcr.io", true},
		{"", "http://127.0.0.1:5000", "", "http://127.0.0.1:5000", true},
		{"", "mirror.gcr.io", "", "mirror.gcr.io", true},
		{"azure-container-registry", "", "", "", false},
		{"ecr", "", "", "", false},
		{"docker-hub", "quay.io", "", "", false},
		{"quay", "http://quay.io", "", "", false},
		{"dockerhub", "", "", "", false},
		{"", "", "", "", false},
	}
	for i, tt := range tests {
		prefix := "p" + string(rune('a'+i)) + "x"
		r, err := e.CreatePullThroughCacheRule(ctx, PullThroughCacheRule{ECRRepositoryPrefix: prefix, UpstreamRegistry: tt.name, UpstreamRegistryURL: tt.url})
		if !tt.ok {
			require.ErrorIs(t, err, ErrInvalidArgument, "%+v", tt)
			continue
		}
		require.NoError(t, err, "%+v", tt)
		assert.Equal(t, tt.wantName, r.UpstreamRegistry, "%+v", tt)
		assert.Equal(t, tt.wantURL, r.UpstreamRegistryURL, "%+v", tt)
	}
	r, err := e.CreatePullThroughCacheRule(ctx, PullThroughCacheRule{ECRRepositoryPrefix: "ecr-public/", UpstreamRegistryURL: "public.ecr.aws", UpstreamRepositoryPrefix: "lib/"})
	require.NoError(t, err)
	assert.Equal(t, "ecr-public", r.ECRRepositoryPrefix, "ECR assumes the trailing /")
	assert.Equal(t, "lib", r.UpstreamRepositoryPrefix)
}

// TestPushesIntoCacheRepositoriesRefused: a manifest, a blob (monolithic
// or in an upload session) and a mount into a repository a pull-through
// cache created are refused; the cache's own fill is not; a repository
// under the rule's prefix that was pushed to stays pushable.
func TestPushesIntoCacheRepositoriesRefused(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	pushImage(t, e, "hub/mine", "v1", rnd(64))
	_, err := e.PutPullThroughCacheRule(ctx, PullThroughCacheRule{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: "http://127.0.0.1:1"})
	require.NoError(t, err)
	layer := rnd(100)
	_, err = e.PutCachedBlob(ctx, "hub/cached", bytes.NewReader(layer), "")
	require.NoError(t, err, "the cache fills (and creates) its repository")

	_, err = e.PutBlob(ctx, "hub/cached", bytes.NewReader(rnd(10)), "")
	require.ErrorIs(t, err, ErrPushToCacheRepository)
	_, err = e.BeginUpload(ctx, "hub/cached")
	require.ErrorIs(t, err, ErrPushToCacheRepository)
	mine, err := e.PutBlob(ctx, "hub/mine", bytes.NewReader(rnd(10)), "")
	require.NoError(t, err)
	_, err = e.MountBlob(ctx, "hub/cached", "hub/mine", mine.Digest)
	require.ErrorIs(t, err, ErrPushToCacheRepository)
	_, payload := pushImage(t, e, "scratch", "x", layer)
	_, err = e.PutManifest(ctx, "hub/cached", "v1", "application/vnd.oci.image.manifest.v1+json", payload)
	require.ErrorIs(t, err, ErrPushToCacheRepository)
	_, err = e.PutCachedBlob(ctx, "hub/mine", bytes.NewReader(rnd(10)), "")
	require.ErrorIs(t, err, ErrNotPullThroughCache, "the cache never fills a pushed repository")
	pushImage(t, e, "hub/mine", "v2", rnd(64)) // still pushable
}

// TestUpstreamChecksSurviveReopen: when a cached tag was last checked
// upstream is kept across a reopen, and goes with its repository.
func TestUpstreamChecksSurviveReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(dir, quietOptions())
	require.NoError(t, err)
	_, ok, err := e.UpstreamCheckedAt(ctx, "hub/app", "v1")
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, e.MarkUpstreamChecked(ctx, "hub/app", "v1"))
	at, ok, err := e.UpstreamCheckedAt(ctx, "hub/app", "v1")
	require.NoError(t, err)
	require.True(t, ok)
	require.ErrorIs(t, e.MarkUpstreamChecked(ctx, "hub/app", "bad tag!"), ErrTagInvalid)
	require.NoError(t, e.Close())

	e, err = Open(dir, quietOptions())
	require.NoError(t, err)
	defer e.Close()
	again, ok, err := e.UpstreamCheckedAt(ctx, "hub/app", "v1")
	require.NoError(t, err)
	require.True(t, ok, "kept across a restart")
	assert.True(t, at.Equal(again))
	pushImage(t, e, "hub/app", "v1", rnd(10))
	require.NoError(t, e.DeleteRepository(ctx, "hub/app", true))
	_, ok, err = e.UpstreamCheckedAt(ctx, "hub/app", "v1")
	require.NoError(t, err)
	assert.False(t, ok, "gone with the repository")
}
