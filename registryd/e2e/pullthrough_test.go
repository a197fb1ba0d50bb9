package e2e

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/registryd/cli"
)

// TestPullThroughCache: a registryd with a pull-through cache rule serves
// images of another registryd (the upstream, on 127.0.0.1) that it never
// had: single images, multi-platform indexes and single blobs, stores
// them in repositories made from the PULL_THROUGH_CACHE template, follows
// a tag that moves upstream, and keeps serving what it has when the
// upstream goes away.
func TestPullThroughCache(t *testing.T) {
	ctx := context.Background()
	upstream, stopUpstream := startStoppableServer(t, nil)
	cache := startServer(t, func(c *cli.Config) { c.PullThroughRefresh = -1 }) // check tags at every pull
	c := ecrClient(cache, "any")

	push := func(repo string, img v1.Image) v1.Hash {
		ref, err := name.ParseReference(upstream+"/"+repo, name.Insecure)
		require.NoError(t, err)
		require.NoError(t, remote.Write(ref, img))
		d, err := img.Digest()
		require.NoError(t, err)
		return d
	}
	pull := func(repo string) (v1.Image, error) {
		ref, err := name.ParseReference(cache+"/"+repo, name.Insecure)
		require.NoError(t, err)
		return remote.Image(ref)
	}
	img1, err := random.Image(4096, 2)
	require.NoError(t, err)
	d1 := push("library/app:v1", img1)
	idx, err := random.Index(1024, 1, 2)
	require.NoError(t, err)
	idxRef, err := name.ParseReference(upstream+"/library/multi:v1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.WriteIndex(idxRef, idx))
	idxDigest, err := idx.Digest()
	require.NoError(t, err)

	// Without a rule the cache registry has nothing.
	_, err = pull("hub/library/app:v1")
	require.Error(t, err)

	// Rules and a template for the repositories they create.
	_, err = c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String("hub"), UpstreamRegistryUrl: aws.String("http://" + upstream)})
	require.NoError(t, err)
	_, err = c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String("hub"), UpstreamRegistryUrl: aws.String("http://" + upstream)})
	requireAPIError(t, err, "PullThroughCacheRuleAlreadyExistsException")
	_, err = c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String("x"), UpstreamRegistryUrl: aws.String("http://" + upstream)})
	requireAPIError(t, err, "InvalidParameterException")
	_, err = c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String("lib"), UpstreamRegistryUrl: aws.String("http://" + upstream), UpstreamRepositoryPrefix: aws.String("library")})
	require.NoError(t, err)
	rules, err := c.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{})
	require.NoError(t, err)
	require.Len(t, rules.PullThroughCacheRules, 2)
	_, err = c.CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{
		Prefix: aws.String("hub"), AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForPullThroughCache},
		ResourceTags: []types.Tag{{Key: aws.String("cache"), Value: aws.String("hub")}}})
	require.NoError(t, err)

	// A blob alone, before any manifest.
	layers, err := img1.Layers()
	require.NoError(t, err)
	ld, err := layers[0].Digest()
	require.NoError(t, err)
	blobRef, err := name.NewDigest(cache+"/hub/library/app@"+ld.String(), name.Insecure)
	require.NoError(t, err)
	l, err := remote.Layer(blobRef)
	require.NoError(t, err)
	rc, err := l.Compressed()
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())

	// The image, through both rules; every layer reads back verified.
	for _, repo := range []string{"hub/library/app:v1", "lib/app:v1"} {
		got, err := pull(repo)
		require.NoError(t, err, repo)
		gd, err := got.Digest()
		require.NoError(t, err)
		assert.Equal(t, d1, gd, repo)
		gl, err := got.Layers()
		require.NoError(t, err)
		for _, l := range gl {
			rc, err := l.Compressed()
			require.NoError(t, err)
			_, err = io.Copy(io.Discard, rc)
			require.NoError(t, err, "layer digest verified on read")
			require.NoError(t, rc.Close())
		}
	}
	repo, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"hub/library/app"}})
	require.NoError(t, err)
	tags, err := c.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: repo.Repositories[0].RepositoryArn})
	require.NoError(t, err)
	assert.Equal(t, "hub", aws.ToString(tags.Tags[0].Value), "made from the PULL_THROUGH_CACHE template")

	// A multi-platform index with its children.
	mref, err := name.ParseReference(cache+"/hub/library/multi:v1", name.Insecure)
	require.NoError(t, err)
	gotIdx, err := remote.Index(mref)
	require.NoError(t, err)
	gid, err := gotIdx.Digest()
	require.NoError(t, err)
	assert.Equal(t, idxDigest, gid)
	im, err := gotIdx.IndexManifest()
	require.NoError(t, err)
	for _, m := range im.Manifests {
		child, err := remote.Image(mref.Context().Digest(m.Digest.String()))
		require.NoError(t, err)
		_, err = child.RawConfigFile()
		require.NoError(t, err)
	}

	// The tag moves upstream; the cache follows it.
	img2, err := random.Image(2048, 1)
	require.NoError(t, err)
	d2 := push("library/app:v1", img2)
	got, err := pull("hub/library/app:v1")
	require.NoError(t, err)
	gd, err := got.Digest()
	require.NoError(t, err)
	assert.Equal(t, d2, gd)
	// The pull was answered with the upstream's manifest while the cache
	// stores the image in the background: the tag moves in the cache once
	// it holds the whole image.
	require.Eventually(t, func() bool {
		imgs, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("hub/library/app"),
			ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
		return err == nil && len(imgs.ImageDetails) == 1 && aws.ToString(imgs.ImageDetails[0].ImageDigest) == d2.String()
	}, 30*time.Second, 20*time.Millisecond, "the moved tag is stored")

	// Upstream gone: what the cache has is still served; what it lacks
	// fails.
	stopUpstream()
	got, err = pull("hub/library/app:v1")
	require.NoError(t, err, "served from the cache while upstream is away")
	gd, err = got.Digest()
	require.NoError(t, err)
	assert.Equal(t, d2, gd)
	_, err = pull("hub/library/app@" + d1.String())
	require.NoError(t, err, "by digest too")
	_, err = pull("hub/library/other:v1")
	require.Error(t, err)

	_, err = c.DeletePullThroughCacheRule(ctx, &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("hub")})
	require.NoError(t, err)
	_, err = c.DeletePullThroughCacheRule(ctx, &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("hub")})
	requireAPIError(t, err, "PullThroughCacheRuleNotFoundException")
}

// TestPullThroughCacheRulesFromConfig: rules in the configuration are put
// into the store at start (replacing one of the same prefix) and serve.
func TestPullThroughCacheRulesFromConfig(t *testing.T) {
	upstream := startServer(t, nil)
	img, err := random.Image(1024, 1)
	require.NoError(t, err)
	ref, err := name.ParseReference(upstream+"/library/app:v1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img))
	data := t.TempDir()
	configure := func(c *cli.Config) {
		c.Data = data
		c.PullThroughCacheRules = []cli.PullThroughCacheRule{{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: "http://" + upstream}}
	}
	_, stop := startStoppableServer(t, configure)
	stop()
	addr := startServer(t, configure) // the same rule again: replaced, not refused
	rules, err := ecrClient(addr, "any").DescribePullThroughCacheRules(context.Background(), &ecr.DescribePullThroughCacheRulesInput{})
	require.NoError(t, err)
	require.Len(t, rules.PullThroughCacheRules, 1)
	cref, err := name.ParseReference(addr+"/hub/library/app:v1", name.Insecure)
	require.NoError(t, err)
	got, err := remote.Image(cref)
	require.NoError(t, err)
	want, err := img.Digest()
	require.NoError(t, err)
	gd, err := got.Digest()
	require.NoError(t, err)
	assert.Equal(t, want, gd)
}
