package engine

import (
	"context"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/policy"
)

func TestImagesDescribesEveryManifest(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	small, smallPayload := pushImage(t, e, "r", "small", rnd(1000))
	big, bigPayload := pushImage(t, e, "r", "big", rnd(5000), rnd(3000))
	_, err := e.PutManifest(ctx, "r", "big-too", "application/vnd.oci.image.manifest.v1+json", bigPayload)
	require.NoError(t, err)
	idx := pushIndex(t, e, "r", "multi", map[digest.Digest]int{small: len(smallPayload), big: len(bigPayload)})

	imgs, err := e.Images(ctx, "r")
	require.NoError(t, err)
	require.Len(t, imgs, 3)
	by := map[digest.Digest]ImageDetail{}
	for i, im := range imgs {
		by[im.Digest] = im
		if i > 0 {
			require.Less(t, imgs[i-1].Digest, im.Digest, "digest order")
		}
	}
	assert.Equal(t, []string{"big", "big-too"}, by[big].Tags)
	// Sizes: config plus layers; the index is its largest child.
	m, err := e.db.ManifestMeta("r", big)
	require.NoError(t, err)
	var want int64
	for _, d := range m.Blobs {
		b, err := e.db.Blob(d)
		require.NoError(t, err)
		want += b.Size
	}
	assert.Equal(t, want, by[big].Size)
	assert.Greater(t, by[big].Size, int64(8000))
	assert.Less(t, by[small].Size, int64(2000))
	assert.Equal(t, by[big].Size, by[idx].Size)
	assert.Equal(t, "application/vnd.oci.image.index.v1+json", by[idx].MediaType)
	assert.Equal(t, []string{"multi"}, by[idx].Tags)
	assert.Equal(t, int64(len(bigPayload)), by[big].ManifestSize)
	assert.False(t, by[big].PushedAt.IsZero())

	// Image describes one the same way, by tag or digest.
	for _, ref := range []string{"multi", string(idx)} {
		one, err := e.Image(ctx, "r", ref)
		require.NoError(t, err)
		assert.Equal(t, by[idx], *one)
	}
	one, err := e.Image(ctx, "r", "big-too")
	require.NoError(t, err)
	assert.Equal(t, by[big], *one)
	_, err = e.Image(ctx, "r", "nope")
	require.ErrorIs(t, err, ErrManifestUnknown)
	_, err = e.Image(ctx, "r", string(digest.FromString("nope")))
	require.ErrorIs(t, err, ErrManifestUnknown)
	_, err = e.Image(ctx, "absent", "v1")
	require.ErrorIs(t, err, ErrNameUnknown)

	_, err = e.Images(ctx, "absent")
	require.ErrorIs(t, err, ErrNameUnknown)
	_, err = e.Images(ctx, "Bad")
	require.ErrorIs(t, err, ErrNameInvalid)
}

func TestUntagAndDeleteImage(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	a, aPayload := pushImage(t, e, "r", "a1", rnd(100))
	_, err := e.PutManifest(ctx, "r", "a2", "application/vnd.oci.image.manifest.v1+json", aPayload)
	require.NoError(t, err)
	child, childPayload := pushImage(t, e, "r", "child", rnd(100))
	idx := pushIndex(t, e, "r", "", map[digest.Digest]int{child: len(childPayload)})

	// Untagging one of two tags leaves the image.
	d, deleted, err := e.UntagImage(ctx, "r", "a1")
	require.NoError(t, err)
	assert.Equal(t, a, d)
	assert.False(t, deleted)
	assert.True(t, manifestSet(t, e, "r")[a])
	// Its last tag takes it.
	_, deleted, err = e.UntagImage(ctx, "r", "a2")
	require.NoError(t, err)
	assert.True(t, deleted)
	assert.False(t, manifestSet(t, e, "r")[a])
	_, _, err = e.UntagImage(ctx, "r", "a2")
	require.ErrorIs(t, err, ErrManifestUnknown)

	// An index's child loses its tag but stays; it cannot be deleted by
	// digest while the index lists it; the index can.
	_, deleted, err = e.UntagImage(ctx, "r", "child")
	require.NoError(t, err)
	assert.False(t, deleted)
	assert.True(t, manifestSet(t, e, "r")[child])
	require.ErrorIs(t, e.DeleteImage(ctx, "r", child), ErrImageReferenced)
	require.NoError(t, e.DeleteImage(ctx, "r", idx))
	require.NoError(t, e.DeleteImage(ctx, "r", child))
	assert.Empty(t, manifestSet(t, e, "r"))
	require.ErrorIs(t, e.DeleteImage(ctx, "r", child), ErrManifestUnknown)
}

func TestRepositorySettingsAfterCreation(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	_, err := e.CreateRepository(ctx, "r", RepositorySettings{ResourceTags: []ResourceTag{{Key: "team", Value: "a"}}})
	require.NoError(t, err)

	_, err = e.GetRepositoryPolicy(ctx, "r")
	require.ErrorIs(t, err, ErrRepositoryPolicyNotFound)
	rp := `{"Version":"2008-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage"]}]}`
	require.NoError(t, e.SetRepositoryPolicy(ctx, "r", rp))
	got, err := e.GetRepositoryPolicy(ctx, "r")
	require.NoError(t, err)
	assert.Equal(t, rp, got)
	require.ErrorIs(t, e.SetRepositoryPolicy(ctx, "r", "{not json"), ErrInvalidArgument)
	require.ErrorIs(t, e.SetRepositoryPolicy(ctx, "r", ""), ErrInvalidArgument)
	old, err := e.DeleteRepositoryPolicy(ctx, "r")
	require.NoError(t, err)
	assert.Equal(t, rp, old)
	_, err = e.DeleteRepositoryPolicy(ctx, "r")
	require.ErrorIs(t, err, ErrRepositoryPolicyNotFound)

	require.NoError(t, e.TagRepository(ctx, "r", []ResourceTag{{Key: "team", Value: "b"}, {Key: "env", Value: "prod"}}))
	r, err := e.Repository(ctx, "r")
	require.NoError(t, err)
	assert.Equal(t, []ResourceTag{{Key: "team", Value: "b"}, {Key: "env", Value: "prod"}}, r.ResourceTags)
	require.ErrorIs(t, e.TagRepository(ctx, "r", []ResourceTag{{Key: "aws:x", Value: "y"}}), ErrInvalidArgument)
	many := make([]ResourceTag, 49)
	for i := range many {
		many[i] = ResourceTag{Key: "k" + string(rune('A'+i)), Value: "v"}
	}
	require.ErrorIs(t, e.TagRepository(ctx, "r", many), ErrInvalidArgument, "51 tags")
	require.NoError(t, e.UntagRepository(ctx, "r", []string{"team", "absent"}))
	r, err = e.Repository(ctx, "r")
	require.NoError(t, err)
	assert.Equal(t, []ResourceTag{{Key: "env", Value: "prod"}}, r.ResourceTags)

	require.NoError(t, e.SetScanOnPush(ctx, "r", true))
	r, err = e.Repository(ctx, "r")
	require.NoError(t, err)
	assert.True(t, r.ScanOnPush)
	require.ErrorIs(t, e.SetScanOnPush(ctx, "absent", true), ErrNameUnknown)
}

func TestCreateAndUpdateCreationTemplate(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	tpl := CreationTemplate{Prefix: "ci/", AppliedFor: []string{AppliedForCreateOnPush}, Description: "one", CustomRoleARN: "arn:aws:iam::000000000000:role/x"}
	require.ErrorIs(t, e.UpdateCreationTemplate(ctx, tpl), ErrTemplateNotFound)
	require.NoError(t, e.CreateCreationTemplate(ctx, tpl))
	require.ErrorIs(t, e.CreateCreationTemplate(ctx, tpl), ErrTemplateExists)
	tpl.Description = "two"
	require.NoError(t, e.UpdateCreationTemplate(ctx, tpl))
	ts, err := e.CreationTemplates(ctx)
	require.NoError(t, err)
	require.Len(t, ts, 1)
	assert.Equal(t, "ci", ts[0].Prefix)
	assert.Equal(t, "two", ts[0].Description)
	assert.Equal(t, tpl.CustomRoleARN, ts[0].CustomRoleARN)
	assert.True(t, ts[0].UpdatedAt.After(ts[0].CreatedAt) || ts[0].UpdatedAt.Equal(ts[0].CreatedAt))
	require.NoError(t, e.DeleteCreationTemplate(ctx, "ci"))
	require.ErrorIs(t, e.DeleteCreationTemplate(ctx, "ci"), ErrTemplateNotFound)
}

func TestCheckRepositoryPolicyFollowsChanges(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	alice := Principal{Account: "000000000000", User: "alice"}
	bob := Principal{Account: "000000000000", User: "bob"}
	require.NoError(t, e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage"), "no repository, no policy")
	_, err := e.CreateRepository(ctx, "r", RepositorySettings{})
	require.NoError(t, err)
	require.NoError(t, e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage"))
	deny := `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:PutImage"}}`
	require.NoError(t, e.SetRepositoryPolicy(ctx, "r", deny))
	err = e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage")
	require.ErrorIs(t, err, ErrAccessDenied, "the cache follows the change")
	assert.Contains(t, err.Error(), "arn:aws:iam::000000000000:user/bob may not ecr:PutImage on repository r")
	require.NoError(t, e.CheckRepositoryPolicy(ctx, alice, "r", "ecr:PutImage"))
	require.NoError(t, e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:BatchGetImage"))
	require.ErrorIs(t, e.SetRepositoryPolicy(ctx, "r", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","NotAction":"ecr:*"}}`),
		ErrInvalidArgument, "a policy Berth cannot enforce is refused")
	_, err = e.DeleteRepositoryPolicy(ctx, "r")
	require.NoError(t, err)
	require.NoError(t, e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage"))
	require.NoError(t, e.SetRepositoryPolicy(ctx, "r", deny))
	require.ErrorIs(t, e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage"), ErrAccessDenied)
	require.NoError(t, e.DeleteRepository(ctx, "r", true))
	_, err = e.CreateRepository(ctx, "r", RepositorySettings{})
	require.NoError(t, err)
	require.NoError(t, e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage"), "a repository created again starts without its predecessor's policy")
}

// A policy stored before Berth enforced policies, which it cannot
// enforce, denies everything but replacing it.
func TestCheckRepositoryPolicyStoredUnenforceable(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	alice := Principal{Account: "000000000000", User: "alice"}
	_, err := e.CreateRepository(ctx, "old", RepositorySettings{})
	require.NoError(t, err)
	r, err := e.loadRepo("old")
	require.NoError(t, err)
	r.RepositoryPolicy = `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}}`
	b := e.db.NewBatch()
	require.NoError(t, e.putRepo(b, &r.Repository))
	require.NoError(t, b.Commit(true))
	b.Close()
	_, err = e.repositoryPolicy("old")
	require.ErrorIs(t, err, policy.ErrInvalid)
	err = e.CheckRepositoryPolicy(ctx, alice, "old", "ecr:BatchGetImage")
	require.ErrorIs(t, err, ErrAccessDenied)
	assert.Contains(t, err.Error(), "Condition")
	require.NoError(t, e.CheckRepositoryPolicy(ctx, alice, "old", "ecr:DeleteRepositoryPolicy"))
	_, err = e.DeleteRepositoryPolicy(ctx, "old")
	require.NoError(t, err, "it can be removed")
	require.NoError(t, e.CheckRepositoryPolicy(ctx, alice, "old", "ecr:BatchGetImage"))
}

// Checks racing with policy changes never keep a stale policy: once the
// changes stop, the check answers the last one committed.
func TestCheckRepositoryPolicyRacingChanges(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	bob := Principal{Account: "000000000000", User: "bob"}
	_, err := e.CreateRepository(ctx, "r", RepositorySettings{})
	require.NoError(t, err)
	deny := `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:PutImage"}}`
	allow := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:PutImage"}}`
	for round := range 20 {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						_ = e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage")
					}
				}
			}()
		}
		for i := range 5 {
			text := allow
			if (i+round)%2 == 0 {
				text = deny
			}
			require.NoError(t, e.SetRepositoryPolicy(ctx, "r", text))
		}
		last := allow
		if (4+round)%2 == 0 {
			last = deny
		}
		close(stop)
		wg.Wait()
		err := e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage")
		if last == deny {
			require.ErrorIs(t, err, ErrAccessDenied, "round %d", round)
		} else {
			require.NoError(t, err, "round %d", round)
		}
	}
}
