package engine

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// publicPolicy lets anyone pull.
const publicPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"Public","Effect":"Allow","Principal":"*",` +
	`"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}`

// TestRepositoryChangesSeenByNextRead: every change of a repository's
// record is seen by the next read, although the reads before it (a blob
// GET, a describe, a push) have cached the decoded record.
func TestRepositoryChangesSeenByNextRead(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	for _, k := range []string{"key-a", "key-b"} {
		_, err := e.CreateKey(ctx, k)
		require.NoError(t, err)
	}
	const repo = "team/app"
	kmsRepo(t, e, repo, "key-a")
	layer := rnd(10 << 10)
	pushImage(t, e, repo, "v1", layer)
	dl := digest.FromBytes(layer)
	read := func() *Repository {
		t.Helper()
		got, err := readRepoBlob(e, repo, dl)
		require.NoError(t, err)
		require.Equal(t, layer, got)
		r, err := e.Repository(ctx, repo)
		require.NoError(t, err)
		return r
	}
	r := read()
	assert.Equal(t, TagMutable, r.TagMutability)
	assert.False(t, r.ScanOnPush)
	assert.False(t, r.Public)
	assert.Equal(t, "key-a", r.Encryption.KMSKey)

	// Tag mutability: the next push of an existing tag is refused, and
	// allowed again once the repository is mutable again.
	_, other := pushImage(t, e, repo, "v2", rnd(100))
	require.NoError(t, e.SetTagMutability(ctx, repo, TagImmutable, nil))
	assert.Equal(t, TagImmutable, read().TagMutability)
	_, err := e.PutManifest(ctx, repo, "v1", ocispec.MediaTypeImageManifest, other)
	require.ErrorIs(t, err, ErrTagImmutable)
	require.NoError(t, e.SetTagMutability(ctx, repo, TagMutable, nil))
	assert.Equal(t, TagMutable, read().TagMutability)
	_, err = e.PutManifest(ctx, repo, "v1", ocispec.MediaTypeImageManifest, other)
	require.NoError(t, err)

	// Scan on push, resource tags.
	require.NoError(t, e.SetScanOnPush(ctx, repo, true))
	assert.True(t, read().ScanOnPush)
	require.NoError(t, e.TagRepository(ctx, repo, []ResourceTag{{Key: "team", Value: "a"}}))
	assert.Equal(t, []ResourceTag{{Key: "team", Value: "a"}}, read().ResourceTags)

	// The repository policy: its text and the decisions it makes.
	require.NoError(t, e.SetRepositoryPolicy(ctx, repo, publicPolicy))
	r = read()
	assert.Equal(t, publicPolicy, r.RepositoryPolicy)
	assert.True(t, r.Public)
	_, err = e.DeleteRepositoryPolicy(ctx, repo)
	require.NoError(t, err)
	r = read()
	assert.Empty(t, r.RepositoryPolicy)
	assert.False(t, r.Public)

	// Deleted: gone for every read.
	require.NoError(t, e.DeleteRepository(ctx, repo, true))
	_, err = e.Repository(ctx, repo)
	require.ErrorIs(t, err, ErrNameUnknown)
	_, err = readRepoBlob(e, repo, dl)
	require.ErrorIs(t, err, ErrNameUnknown)
	_, err = e.ListTags(ctx, repo, "", 0)
	require.ErrorIs(t, err, ErrNameUnknown)

	// Re-created under the same name with another key: the blob, pushed
	// again (one stored copy, a wrap for each key), reads through the new
	// repository's key, never the old one's, which is disabled.
	kmsRepo(t, e, repo, "key-b")
	_, err = e.PutBlob(ctx, repo, bytes.NewReader(layer), dl)
	require.NoError(t, err)
	require.NoError(t, e.DisableKey(ctx, "key-a"))
	r = read()
	assert.Equal(t, "key-b", r.Encryption.KMSKey)
	assert.Equal(t, TagMutable, r.TagMutability)
	assert.False(t, r.ScanOnPush)
	assert.Empty(t, r.ResourceTags)
	tags, err := e.ListTags(ctx, repo, "", 0)
	require.NoError(t, err)
	assert.Empty(t, tags)
}

// TestRepositoryChangeDuringMiss: a read that misses the cache and reads
// the record just before a change commits caches that older record; it is
// not served after the change returns.
func TestRepositoryChangeDuringMiss(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	const repo = "team/app"
	_, err := e.CreateRepository(ctx, repo, RepositorySettings{})
	require.NoError(t, err)
	changed := false
	e.repoStates.loaded = func(name string) {
		if name != repo || changed {
			return
		}
		changed = true // the change below reads the record too
		require.NoError(t, e.SetScanOnPush(ctx, repo, true))
	}
	r, err := e.Repository(ctx, repo)
	require.NoError(t, err)
	require.True(t, changed)
	assert.False(t, r.ScanOnPush, "the read started before the change")
	r, err = e.Repository(ctx, repo)
	require.NoError(t, err)
	assert.True(t, r.ScanOnPush, "the change returned before this read started")
}

// TestRepositoryCopiesAreTheCallers: what loadRepo returns may be
// changed (as updateSettings does before it validates) without changing
// what later reads see: a change that fails leaves the repository as it
// was.
func TestRepositoryCopiesAreTheCallers(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	const repo = "team/app"
	_, err := e.CreateRepository(ctx, repo, RepositorySettings{
		TagMutabilityExclusions: []TagFilter{{Filter: "latest", FilterType: "WILDCARD"}},
		TagMutability:           TagImmutableWithExclusion,
	})
	require.NoError(t, err)
	require.NoError(t, e.TagRepository(ctx, repo, []ResourceTag{{Key: "team", Value: "a"}}))
	_, err = e.Repository(ctx, repo) // cached
	require.NoError(t, err)

	// 51 tags: refused after the change function has set team's value in
	// place.
	tags := []ResourceTag{{Key: "team", Value: "b"}}
	for i := range 50 {
		tags = append(tags, ResourceTag{Key: fmt.Sprintf("k%d", i), Value: "v"})
	}
	require.ErrorIs(t, e.TagRepository(ctx, repo, tags), ErrInvalidArgument)
	r, err := e.Repository(ctx, repo)
	require.NoError(t, err)
	assert.Equal(t, []ResourceTag{{Key: "team", Value: "a"}}, r.ResourceTags)

	// A caller's copy, changed, changes nothing else.
	c, err := e.loadRepo(repo)
	require.NoError(t, err)
	c.ResourceTags[0].Value = "changed"
	c.TagMutabilityExclusions[0].Filter = "changed"
	r, err = e.Repository(ctx, repo)
	require.NoError(t, err)
	assert.Equal(t, "a", r.ResourceTags[0].Value)
	assert.Equal(t, "latest", r.TagMutabilityExclusions[0].Filter)
}
