package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/internal/testenv"
	"github.com/berthstore/berth/registryd/cli"
)

const (
	testAccessKey = "AKIABERTHTEST0000001"
	testSecretKey = "berth-test-secret-key/with+symbols"
)

// ecrClient is an AWS SDK ECR client for the registryd at addr, with
// the test access key (or secret, when given).
func ecrClient(addr, secret string) *ecr.Client {
	if secret == "" {
		secret = testSecretKey
	}
	return ecr.New(ecr.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://" + addr),
		Credentials:  credentials.NewStaticCredentialsProvider(testAccessKey, secret, ""),
	})
}

// withECRAuth turns on basic authentication (user "admin", password
// "pw") and the ECR API's credentials file for the test key.
func withECRAuth(t *testing.T) func(*cli.Config) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	htpasswd := filepath.Join(dir, "htpasswd")
	require.NoError(t, os.WriteFile(htpasswd, []byte("admin:"+string(hash)+"\n"), 0o600))
	creds := filepath.Join(dir, "ecr-credentials")
	require.NoError(t, os.WriteFile(creds, []byte("# test key\n"+testAccessKey+":"+testSecretKey+"\n"), 0o600))
	return func(c *cli.Config) {
		c.Htpasswd, c.ECRCredentials, c.CreateOnPush = htpasswd, creds, false
	}
}

// requireAPIError checks that err is the AWS error code.
func requireAPIError(t *testing.T, err error, code string) {
	t.Helper()
	require.Error(t, err)
	var ae interface{ ErrorCode() string }
	require.True(t, errors.As(err, &ae), "not an API error: %v", err)
	require.Equal(t, code, ae.ErrorCode(), "%v", err)
}

// TestECRAPIWithSDK drives the ECR management API with the AWS SDK for Go
// v2 against registryd with authentication on: repositories, login
// tokens for the OCI API (a go-containerregistry push and pull), images,
// the layer upload calls, lifecycle preview, policies, tags, templates,
// and the errors of each.
func TestECRAPIWithSDK(t *testing.T) {
	ctx := context.Background()
	addr := startServer(t, withECRAuth(t))
	c := ecrClient(addr, "")

	// Signatures: a wrong secret and an unknown key are refused.
	_, err := ecrClient(addr, "wrong").DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{})
	requireAPIError(t, err, "InvalidSignatureException")
	bad := ecr.New(ecr.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAUNKNOWN", "x", "")})
	_, err = bad.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{})
	requireAPIError(t, err, "UnrecognizedClientException")

	// Repositories.
	created, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{
		RepositoryName:     aws.String("team/app"),
		ImageTagMutability: types.ImageTagMutabilityImmutableWithExclusion,
		ImageTagMutabilityExclusionFilters: []types.ImageTagMutabilityExclusionFilter{
			{Filter: aws.String("latest"), FilterType: types.ImageTagMutabilityExclusionFilterTypeWildcard}},
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true},
		Tags:                       []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}},
	})
	require.NoError(t, err)
	repo := created.Repository
	assert.Equal(t, "arn:aws:ecr:us-east-1:000000000000:repository/team/app", aws.ToString(repo.RepositoryArn))
	assert.Equal(t, addr+"/team/app", aws.ToString(repo.RepositoryUri))
	assert.Equal(t, types.ImageTagMutabilityImmutableWithExclusion, repo.ImageTagMutability)
	assert.Equal(t, types.EncryptionTypeAes256, repo.EncryptionConfiguration.EncryptionType)
	assert.True(t, repo.ImageScanningConfiguration.ScanOnPush)
	require.NotNil(t, repo.CreatedAt)
	_, err = c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("team/app")})
	requireAPIError(t, err, "RepositoryAlreadyExistsException")
	_, err = c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("Bad Name")})
	requireAPIError(t, err, "InvalidParameterException")
	for _, n := range []string{"a", "b", "c"} {
		_, err = c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("page/" + n)})
		require.NoError(t, err)
	}
	var names []string
	p := ecr.NewDescribeRepositoriesPaginator(c, &ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		require.NoError(t, err)
		require.LessOrEqual(t, len(out.Repositories), 2)
		for _, r := range out.Repositories {
			names = append(names, aws.ToString(r.RepositoryName))
		}
	}
	assert.Equal(t, []string{"page/a", "page/b", "page/c", "team/app"}, names)
	_, err = c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"nope"}})
	requireAPIError(t, err, "RepositoryNotFoundException")

	// Login: GetAuthorizationToken's token opens the OCI API to a real
	// client (docker login --username AWS does the same).
	auth, err := c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	require.NoError(t, err)
	require.Len(t, auth.AuthorizationData, 1)
	assert.Equal(t, "http://"+addr, aws.ToString(auth.AuthorizationData[0].ProxyEndpoint))
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(auth.AuthorizationData[0].AuthorizationToken))
	require.NoError(t, err)
	user, pass, ok := strings.Cut(string(raw), ":")
	require.True(t, ok)
	require.Equal(t, "AWS", user)
	ref, err := name.ParseReference(addr+"/team/app:v1", name.Insecure)
	require.NoError(t, err)
	img, err := random.Image(2048, 2)
	require.NoError(t, err)
	require.Error(t, remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "AWS", Password: "forged"})), "a made-up token is refused")
	login := remote.WithAuth(&authn.Basic{Username: user, Password: pass})
	require.NoError(t, remote.Write(ref, img, login))
	imgDigest, err := img.Digest()
	require.NoError(t, err)
	pulled, err := remote.Image(ref, login)
	require.NoError(t, err)
	pd, err := pulled.Digest()
	require.NoError(t, err)
	require.Equal(t, imgDigest, pd)

	// Images.
	list, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("team/app")})
	require.NoError(t, err)
	require.Len(t, list.ImageIds, 1)
	assert.Equal(t, imgDigest.String(), aws.ToString(list.ImageIds[0].ImageDigest))
	assert.Equal(t, "v1", aws.ToString(list.ImageIds[0].ImageTag))
	desc, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("team/app")})
	require.NoError(t, err)
	require.Len(t, desc.ImageDetails, 1)
	d0 := desc.ImageDetails[0]
	assert.Equal(t, []string{"v1"}, d0.ImageTags)
	layers, err := img.Layers()
	require.NoError(t, err)
	var want int64
	for _, l := range layers {
		n, err := l.Size()
		require.NoError(t, err)
		want += n
	}
	cfgBlob, err := img.RawConfigFile()
	require.NoError(t, err)
	want += int64(len(cfgBlob))
	assert.Equal(t, want, aws.ToInt64(d0.ImageSizeInBytes), "config and layers")
	assert.NotNil(t, d0.ImagePushedAt)
	assert.Equal(t, "application/vnd.docker.distribution.manifest.v2+json", aws.ToString(d0.ImageManifestMediaType))
	_, err = c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("team/app"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("nope")}}})
	requireAPIError(t, err, "ImageNotFoundException")

	got, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String("team/app"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}, {ImageTag: aws.String("missing")}, {ImageDigest: aws.String("sha256:xyz")}}})
	require.NoError(t, err)
	require.Len(t, got.Images, 1)
	rawManifest, err := img.RawManifest()
	require.NoError(t, err)
	assert.Equal(t, string(rawManifest), aws.ToString(got.Images[0].ImageManifest))
	require.Len(t, got.Failures, 2)
	assert.Equal(t, types.ImageFailureCodeImageNotFound, got.Failures[0].FailureCode)
	assert.Equal(t, types.ImageFailureCodeInvalidImageDigest, got.Failures[1].FailureCode)
	require.Eventually(t, func() bool { // the engine records pull times every 5 s
		desc, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("team/app")})
		return err == nil && desc.ImageDetails[0].LastRecordedPullTime != nil
	}, 15*time.Second, 100*time.Millisecond, "BatchGetImage is a pull")

	// PutImage: the same manifest under a second tag; the same tag again
	// is ImageAlreadyExists; moving the immutable tag is refused; the
	// excluded tag "latest" moves freely.
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(string(rawManifest)), ImageTag: aws.String("v1-copy")})
	require.NoError(t, err)
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(string(rawManifest)), ImageTag: aws.String("v1")})
	requireAPIError(t, err, "ImageAlreadyExistsException")
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(string(rawManifest)), ImageDigest: aws.String("sha256:" + strings.Repeat("0", 64))})
	requireAPIError(t, err, "ImageDigestDoesNotMatchException")

	// The layer upload calls push a second image's blobs; PutImage
	// names it.
	layer := make([]byte, 11<<20)
	_, _ = rand.Read(layer)
	layerDigest := sha256Digest(layer)
	cfgJSON := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	for _, blob := range [][]byte{layer, cfgJSON} {
		up, err := c.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: aws.String("team/app")})
		require.NoError(t, err)
		part := int(aws.ToInt64(up.PartSize))
		require.Positive(t, part)
		for first := 0; first < len(blob); first += part {
			last := min(first+part, len(blob)) - 1
			out, err := c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: aws.String("team/app"), UploadId: up.UploadId,
				PartFirstByte: aws.Int64(int64(first)), PartLastByte: aws.Int64(int64(last)), LayerPartBlob: blob[first : last+1]})
			require.NoError(t, err)
			require.Equal(t, int64(last), aws.ToInt64(out.LastByteReceived))
		}
		_, err = c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: aws.String("team/app"), UploadId: up.UploadId,
			PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(0), LayerPartBlob: []byte{1}})
		requireAPIError(t, err, "InvalidLayerPartException")
		done, err := c.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: aws.String("team/app"), UploadId: up.UploadId,
			LayerDigests: []string{sha256Digest(blob)}})
		require.NoError(t, err)
		require.Equal(t, sha256Digest(blob), aws.ToString(done.LayerDigest))
	}
	avail, err := c.BatchCheckLayerAvailability(ctx, &ecr.BatchCheckLayerAvailabilityInput{RepositoryName: aws.String("team/app"),
		LayerDigests: []string{layerDigest, "sha256:" + strings.Repeat("1", 64), "nope"}})
	require.NoError(t, err)
	require.Len(t, avail.Layers, 1)
	assert.Equal(t, types.LayerAvailabilityAvailable, avail.Layers[0].LayerAvailability)
	assert.Equal(t, int64(len(layer)), aws.ToInt64(avail.Layers[0].LayerSize))
	require.Len(t, avail.Failures, 2)
	assert.Equal(t, types.LayerFailureCodeMissingLayerDigest, avail.Failures[0].FailureCode)
	assert.Equal(t, types.LayerFailureCodeInvalidLayerDigest, avail.Failures[1].FailureCode)
	dl, err := c.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: aws.String("team/app"), LayerDigest: aws.String(layerDigest)})
	require.NoError(t, err)
	assert.Equal(t, "http://"+addr+"/v2/team/app/blobs/"+layerDigest, aws.ToString(dl.DownloadUrl))
	m2 := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
		sha256Digest(cfgJSON), len(cfgJSON), layerDigest, len(layer))
	put, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(m2), ImageTag: aws.String("v2")})
	require.NoError(t, err)
	assert.Equal(t, sha256Digest([]byte(m2)), aws.ToString(put.Image.ImageId.ImageDigest))
	assert.Equal(t, "application/vnd.oci.image.manifest.v1+json", aws.ToString(put.Image.ImageManifestMediaType))
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(m2), ImageTag: aws.String("v1")})
	requireAPIError(t, err, "ImageTagAlreadyExistsException")
	for range 2 {
		_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(m2), ImageTag: aws.String("latest")})
		require.NoError(t, err)
		_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(string(rawManifest)), ImageTag: aws.String("latest")})
		require.NoError(t, err)
	}
	missing := strings.Replace(m2, layerDigest, "sha256:"+strings.Repeat("2", 64), 1)
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(missing), ImageTag: aws.String("v3")})
	requireAPIError(t, err, "LayersNotFoundException")

	// Listing with a filter and pages.
	tagged, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("team/app"), Filter: &types.ListImagesFilter{TagStatus: types.TagStatusTagged}})
	require.NoError(t, err)
	assert.Len(t, tagged.ImageIds, 4, "v1, v1-copy, latest on one image, v2 on the other")
	var paged []types.ImageIdentifier
	lp := ecr.NewListImagesPaginator(c, &ecr.ListImagesInput{RepositoryName: aws.String("team/app"), MaxResults: aws.Int32(1)})
	for lp.HasMorePages() {
		out, err := lp.NextPage(ctx)
		require.NoError(t, err)
		paged = append(paged, out.ImageIds...)
	}
	assert.ElementsMatch(t, tagged.ImageIds, paged)

	// Lifecycle: put, get, preview (changes nothing), delete.
	policy := `{"rules":[{"rulePriority":1,"description":"one image","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
	_, err = c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("team/app"), LifecyclePolicyText: aws.String(`{"rules":[]}`)})
	requireAPIError(t, err, "InvalidParameterException")
	_, err = c.GetLifecyclePolicyPreview(ctx, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: aws.String("team/app")})
	requireAPIError(t, err, "LifecyclePolicyPreviewNotFoundException")
	_, err = c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("team/app"), LifecyclePolicyText: aws.String(policy)})
	require.NoError(t, err)
	lpol, err := c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String("team/app")})
	require.NoError(t, err)
	assert.Equal(t, policy, aws.ToString(lpol.LifecyclePolicyText))
	start, err := c.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: aws.String("team/app")})
	require.NoError(t, err)
	assert.Equal(t, types.LifecyclePolicyPreviewStatusComplete, start.Status)
	prev, err := c.GetLifecyclePolicyPreview(ctx, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: aws.String("team/app")})
	require.NoError(t, err)
	require.Len(t, prev.PreviewResults, 1, "of two images, the older goes")
	assert.Equal(t, imgDigest.String(), aws.ToString(prev.PreviewResults[0].ImageDigest))
	assert.Equal(t, types.ImageActionTypeExpire, prev.PreviewResults[0].Action.Type)
	assert.Equal(t, int32(1), aws.ToInt32(prev.PreviewResults[0].AppliedRulePriority))
	assert.Equal(t, int32(1), aws.ToInt32(prev.Summary.ExpiringImageTotalCount))
	_, err = c.DeleteLifecyclePolicy(ctx, &ecr.DeleteLifecyclePolicyInput{RepositoryName: aws.String("team/app")})
	require.NoError(t, err)
	_, err = c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String("team/app")})
	requireAPIError(t, err, "LifecyclePolicyNotFoundException")

	// Repository policy, tag mutability, scanning configuration.
	rp := `{"Version":"2008-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage"]}]}`
	_, err = c.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: aws.String("team/app")})
	requireAPIError(t, err, "RepositoryPolicyNotFoundException")
	_, err = c.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("team/app"), PolicyText: aws.String(rp)})
	require.NoError(t, err)
	gp, err := c.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: aws.String("team/app")})
	require.NoError(t, err)
	assert.Equal(t, rp, aws.ToString(gp.PolicyText))
	_, err = c.DeleteRepositoryPolicy(ctx, &ecr.DeleteRepositoryPolicyInput{RepositoryName: aws.String("team/app")})
	require.NoError(t, err)
	_, err = c.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String("team/app"), ImageTagMutability: types.ImageTagMutabilityMutable})
	require.NoError(t, err)
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(m2), ImageTag: aws.String("v1")})
	require.NoError(t, err, "v1 moves once the repository is mutable")
	_, err = c.PutImageScanningConfiguration(ctx, &ecr.PutImageScanningConfigurationInput{RepositoryName: aws.String("team/app"),
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: false}})
	require.NoError(t, err)

	// Resource tags through the repository's ARN.
	arn := repo.RepositoryArn
	_, err = c.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("b")}, {Key: aws.String("env"), Value: aws.String("prod")}}})
	require.NoError(t, err)
	_, err = c.UntagResource(ctx, &ecr.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"env", "absent"}})
	require.NoError(t, err)
	lt, err := c.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: arn})
	require.NoError(t, err)
	require.Len(t, lt.Tags, 1)
	assert.Equal(t, "b", aws.ToString(lt.Tags[0].Value))
	_, err = c.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("aws:reserved"), Value: aws.String("x")}}})
	requireAPIError(t, err, "InvalidTagParameterException")
	_, err = c.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecr:eu-west-1:000000000000:repository/team/app")})
	requireAPIError(t, err, "InvalidParameterException")

	// BatchDeleteImage: by tag (the image stays while it has other tags),
	// then by digest (with every tag).
	del, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("team/app"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1-copy")}, {ImageTag: aws.String("nope")}}})
	require.NoError(t, err)
	require.Len(t, del.ImageIds, 1)
	require.Len(t, del.Failures, 1)
	assert.Equal(t, types.ImageFailureCodeImageNotFound, del.Failures[0].FailureCode)
	del, err = c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("team/app"),
		ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(imgDigest.String())}}})
	require.NoError(t, err)
	assert.Len(t, del.ImageIds, 1, "its one tag left (latest)")
	// v2 and v1 point at m2 now; deleting both tags deletes the image.
	del, err = c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("team/app"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v2")}, {ImageTag: aws.String("v1")}}})
	require.NoError(t, err)
	require.Len(t, del.ImageIds, 2)
	all, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("team/app")})
	require.NoError(t, err)
	assert.Empty(t, all.ImageIds, "the last tag took the image with it")

	// Templates drive create on push (CreateOnPush is off in this daemon).
	_, err = c.CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{
		Prefix: aws.String("ci"), AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush},
		ImageTagMutability: types.ImageTagMutabilityImmutable, Description: aws.String("CI images"),
		ResourceTags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("ci")}},
	})
	require.NoError(t, err)
	_, err = c.CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{
		Prefix: aws.String("ci"), AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush}})
	requireAPIError(t, err, "TemplateAlreadyExistsException")
	_, err = c.UpdateRepositoryCreationTemplate(ctx, &ecr.UpdateRepositoryCreationTemplateInput{
		Prefix: aws.String("nope"), AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush}})
	requireAPIError(t, err, "TemplateNotFoundException")
	tpls, err := c.DescribeRepositoryCreationTemplates(ctx, &ecr.DescribeRepositoryCreationTemplatesInput{})
	require.NoError(t, err)
	require.Len(t, tpls.RepositoryCreationTemplates, 1)
	assert.Equal(t, "CI images", aws.ToString(tpls.RepositoryCreationTemplates[0].Description))
	ciRef, err := name.ParseReference(addr+"/ci/build:1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ciRef, img, login))
	ciRepo, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"ci/build"}})
	require.NoError(t, err)
	assert.Equal(t, types.ImageTagMutabilityImmutable, ciRepo.Repositories[0].ImageTagMutability)
	ciTags, err := c.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: ciRepo.Repositories[0].RepositoryArn})
	require.NoError(t, err)
	require.Len(t, ciTags.Tags, 1)
	_, err = c.DeleteRepositoryCreationTemplate(ctx, &ecr.DeleteRepositoryCreationTemplateInput{Prefix: aws.String("ci")})
	require.NoError(t, err)

	// Deleting a repository: refused while it holds images, unless forced.
	_, err = c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("ci/build")})
	requireAPIError(t, err, "RepositoryNotEmptyException")
	_, err = c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("ci/build"), Force: true})
	require.NoError(t, err)
	_, err = c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"ci/build"}})
	requireAPIError(t, err, "RepositoryNotFoundException")
}

// TestECRAPIClosedWithoutCredentials: with basic authentication on and no
// ECR credentials file, the ECR API refuses every call (it never falls
// back to being open).
func TestECRAPIClosedWithoutCredentials(t *testing.T) {
	mut := withECRAuth(t)
	addr := startServer(t, func(c *cli.Config) { mut(c); c.ECRCredentials = "" })
	_, err := ecrClient(addr, "").DescribeRepositories(context.Background(), &ecr.DescribeRepositoriesInput{})
	requireAPIError(t, err, "UnrecognizedClientException")
}

// TestECRAPIOpenRegistry: a registry without authentication serves the
// ECR API to any caller, as it serves the OCI API.
func TestECRAPIOpenRegistry(t *testing.T) {
	ctx := context.Background()
	addr := startServer(t, nil)
	c := ecrClient(addr, "any")
	_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("open/app")})
	require.NoError(t, err)
	out, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{})
	require.NoError(t, err)
	require.Len(t, out.Repositories, 1)
	_, err = c.PutReplicationConfiguration(ctx, &ecr.PutReplicationConfigurationInput{
		ReplicationConfiguration: &types.ReplicationConfiguration{Rules: []types.ReplicationRule{}}})
	require.NoError(t, err, "no rules: replication off, as ECR clears it")
	_, err = c.PutSigningConfiguration(ctx, &ecr.PutSigningConfigurationInput{SigningConfiguration: &types.SigningConfiguration{Rules: []types.SigningRule{}}})
	requireAPIError(t, err, "UnknownOperationException")
}

func sha256Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// awsCLI runs the aws CLI against the registryd at addr with the test
// key; it returns stdout and the error (stderr in its message).
func awsCLI(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	aws := testenv.NeedTool(t, "aws")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, aws, append([]string{"--endpoint-url", "http://" + addr, "--region", "us-east-1", "--output", "json"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "AWS_ACCESS_KEY_ID="+testAccessKey, "AWS_SECRET_ACCESS_KEY="+testSecretKey,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("aws %v: %w: %s", args, err, stderr.String())
	}
	return string(out), nil
}

// TestECRAPIWithAWSCLI drives registryd with the real `aws ecr` CLI:
// create a repository, log in with get-login-password and push with it,
// list and describe the image, preview a lifecycle policy, delete.
func TestECRAPIWithAWSCLI(t *testing.T) {
	addr := startServer(t, withECRAuth(t))
	run := func(args ...string) map[string]any {
		t.Helper()
		out, err := awsCLI(t, addr, append([]string{"ecr"}, args...)...)
		require.NoError(t, err)
		var v map[string]any
		if strings.TrimSpace(out) != "" {
			require.NoError(t, json.Unmarshal([]byte(out), &v), out)
		}
		return v
	}
	created := run("create-repository", "--repository-name", "cli/app", "--image-tag-mutability", "IMMUTABLE", "--tags", "Key=team,Value=a")
	repo := created["repository"].(map[string]any)
	assert.Equal(t, addr+"/cli/app", repo["repositoryUri"])
	assert.Equal(t, "IMMUTABLE", repo["imageTagMutability"])

	_, err := awsCLI(t, addr, "ecr", "describe-repositories", "--repository-names", "nope")
	require.ErrorContains(t, err, "RepositoryNotFoundException")

	// docker login --username AWS --password-stdin, as a client library.
	pass, err := awsCLI(t, addr, "ecr", "get-login-password")
	require.NoError(t, err)
	ref, err := name.ParseReference(addr+"/cli/app:v1", name.Insecure)
	require.NoError(t, err)
	img, err := random.Image(1024, 1)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "AWS", Password: strings.TrimSpace(pass)})))
	d, err := img.Digest()
	require.NoError(t, err)

	images := run("list-images", "--repository-name", "cli/app")["imageIds"].([]any)
	require.Len(t, images, 1)
	assert.Equal(t, d.String(), images[0].(map[string]any)["imageDigest"])
	details := run("describe-images", "--repository-name", "cli/app", "--image-ids", "imageTag=v1")["imageDetails"].([]any)
	require.Len(t, details, 1)
	assert.Equal(t, []any{"v1"}, details[0].(map[string]any)["imageTags"])

	// ECR's documented retag: batch-get-image's manifest text into put-image.
	manifest, err := awsCLI(t, addr, "ecr", "batch-get-image", "--repository-name", "cli/app", "--image-ids", "imageTag=v1",
		"--query", "images[].imageManifest", "--output", "text")
	require.NoError(t, err)
	put := run("put-image", "--repository-name", "cli/app", "--image-tag", "v1-retagged", "--image-manifest", strings.TrimSpace(manifest))
	assert.Equal(t, d.String(), put["image"].(map[string]any)["imageId"].(map[string]any)["imageDigest"])
	_, err = awsCLI(t, addr, "ecr", "put-image", "--repository-name", "cli/app", "--image-tag", "v1", "--image-manifest", strings.TrimSpace(manifest))
	require.ErrorContains(t, err, "ImageAlreadyExistsException")
	run("batch-delete-image", "--repository-name", "cli/app", "--image-ids", "imageTag=v1-retagged")

	policy := `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
	run("put-lifecycle-policy", "--repository-name", "cli/app", "--lifecycle-policy-text", policy)
	assert.Equal(t, "COMPLETE", run("start-lifecycle-policy-preview", "--repository-name", "cli/app")["status"])
	prev := run("get-lifecycle-policy-preview", "--repository-name", "cli/app")
	assert.Empty(t, prev["previewResults"], "one image, and the policy keeps one")

	tags := run("list-tags-for-resource", "--resource-arn", repo["repositoryArn"].(string))["tags"].([]any)
	assert.Equal(t, []any{map[string]any{"Key": "team", "Value": "a"}}, tags)

	_, err = awsCLI(t, addr, "ecr", "delete-repository", "--repository-name", "cli/app")
	require.ErrorContains(t, err, "RepositoryNotEmptyException")
	deleted := run("batch-delete-image", "--repository-name", "cli/app", "--image-ids", "imageTag=v1")["imageIds"].([]any)
	require.Len(t, deleted, 1)
	run("delete-repository", "--repository-name", "cli/app")
	assert.Empty(t, run("describe-repositories")["repositories"])
}

// TestRepositoryPolicyEnforced: a repository policy's Deny statements
// refuse the users they name on both APIs (docker-style basic auth, login
// tokens, SigV4 keys), and only them; a policy Berth could not enforce is
// refused when set.
func TestRepositoryPolicyEnforced(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var htpasswd strings.Builder
	for _, u := range []string{"alice", "bob"} {
		hash, err := bcrypt.GenerateFromPassword([]byte("pw-"+u), bcrypt.MinCost)
		require.NoError(t, err)
		htpasswd.WriteString(u + ":" + string(hash) + "\n")
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(htpasswd.String()), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "creds"), []byte("AKIAALICE:alice-secret:alice\nAKIABOB:bob-secret:bob\n"), 0o600))
	addr := startServer(t, func(c *cli.Config) {
		c.Htpasswd, c.ECRCredentials = filepath.Join(dir, "htpasswd"), filepath.Join(dir, "creds")
	})
	client := func(key, secret string) *ecr.Client {
		return ecr.New(ecr.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
			Credentials: credentials.NewStaticCredentialsProvider(key, secret, "")})
	}
	alice, bob := client("AKIAALICE", "alice-secret"), client("AKIABOB", "bob-secret")
	basic := func(u string) remote.Option { return remote.WithAuth(&authn.Basic{Username: u, Password: "pw-" + u}) }
	push := func(tag string, auth remote.Option) error {
		ref, err := name.ParseReference(addr+"/shared/app:"+tag, name.Insecure)
		require.NoError(t, err)
		img, err := random.Image(512, 1)
		require.NoError(t, err)
		return remote.Write(ref, img, auth)
	}

	_, err := alice.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("shared/app")})
	require.NoError(t, err)
	_, err = alice.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("shared/app"),
		PolicyText: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:role/ci"},"Action":"ecr:*"}}`)})
	requireAPIError(t, err, "InvalidParameterException") // a role Berth has none of: the Deny could never match
	_, err = alice.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("shared/app"), PolicyText: aws.String(`{
		"Version": "2012-10-17",
		"Statement": [
			{"Sid": "bob pulls only", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::000000000000:user/bob"},
			 "Action": ["ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"]},
			{"Sid": "no deletes", "Effect": "Deny", "Principal": "*", "Action": "ecr:BatchDelete*"}
		]}`)})
	require.NoError(t, err)

	// OCI API: bob's push is refused with DENIED, alice's goes; both pull.
	err = push("bob", basic("bob"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DENIED")
	assert.Contains(t, err.Error(), "arn:aws:iam::000000000000:user/bob may not ecr:")
	require.NoError(t, push("alice", basic("alice")))
	ref, err := name.ParseReference(addr+"/shared/app:alice", name.Insecure)
	require.NoError(t, err)
	_, err = remote.Image(ref, basic("bob"))
	require.NoError(t, err)
	require.Error(t, remote.Delete(ref, basic("alice")), "no one deletes")

	// A login token carries its user: bob's is refused the push too.
	tok, err := bob.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	require.NoError(t, err)
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(tok.AuthorizationData[0].AuthorizationToken))
	require.NoError(t, err)
	_, pass, _ := strings.Cut(string(raw), ":")
	require.Error(t, push("bob-token", remote.WithAuth(&authn.Basic{Username: "AWS", Password: pass})))

	// ECR API: the same statements, by access key.
	img, err := bob.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String("shared/app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("alice")}}})
	require.NoError(t, err)
	require.Len(t, img.Images, 1)
	_, err = bob.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("shared/app"), ImageManifest: img.Images[0].ImageManifest, ImageTag: aws.String("bob")})
	requireAPIError(t, err, "AccessDeniedException")
	_, err = alice.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("shared/app"), ImageManifest: img.Images[0].ImageManifest, ImageTag: aws.String("alice2")})
	require.NoError(t, err)
	_, err = alice.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("shared/app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("alice2")}}})
	requireAPIError(t, err, "AccessDeniedException")

	// Without the policy bob pushes.
	_, err = alice.DeleteRepositoryPolicy(ctx, &ecr.DeleteRepositoryPolicyInput{RepositoryName: aws.String("shared/app")})
	require.NoError(t, err)
	require.NoError(t, push("bob", basic("bob")))
}
