package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/registryd/cli"
)

// TestECRRegistryLevelCalls drives the registry-level calls with the AWS
// SDK for Go v2 and shows each setting acted on: BLOB_MOUNTING turns the
// OCI API's cross-repository mount off and on, REGISTRY_POLICY_SCOPE
// narrows the registry policy to the registry-level actions, both survive
// a restart; ListImageReferrers lists a pushed signature; a lifecycle
// run's time is the policy's lastEvaluatedAt.
func TestECRRegistryLevelCalls(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	mut := withECRAuth(t)
	addr, stop := startStoppableServer(t, func(c *cli.Config) { mut(c); c.Data = dir })
	c := ecrClient(addr, "")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:pw"))
	oci := func(method, path string, body []byte) (int, http.Header, []byte) {
		return httpDo(t, method, "http://"+addr+path, body, map[string]string{"Authorization": basic})
	}

	// DescribeRegistry and the settings' defaults.
	reg, err := c.DescribeRegistry(ctx, &ecr.DescribeRegistryInput{})
	require.NoError(t, err)
	assert.Equal(t, "000000000000", aws.ToString(reg.RegistryId))
	assert.Empty(t, reg.ReplicationConfiguration.Rules)
	setting := func(name string) string {
		out, err := c.GetAccountSetting(ctx, &ecr.GetAccountSettingInput{Name: aws.String(name)})
		require.NoError(t, err)
		assert.Equal(t, name, aws.ToString(out.Name))
		return aws.ToString(out.Value)
	}
	assert.Equal(t, "V2", setting("REGISTRY_POLICY_SCOPE"))
	assert.Equal(t, "ENABLED", setting("BLOB_MOUNTING"))

	// BLOB_MOUNTING: a mount from another repository answers 201 while
	// enabled, 202 (an upload session: nothing mounted) while disabled.
	for _, repo := range []string{"mount/src", "mount/dst", "mount/off"} {
		_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo)})
		require.NoError(t, err)
	}
	blob := []byte("a layer that mounts")
	status, _, body := oci(http.MethodPost, "/v2/mount/src/blobs/uploads/?digest="+sha256Digest(blob), blob)
	require.Equal(t, http.StatusCreated, status, "%s", body)
	status, _, body = oci(http.MethodPost, "/v2/mount/dst/blobs/uploads/?mount="+sha256Digest(blob)+"&from=mount/src", nil)
	assert.Equal(t, http.StatusCreated, status, "enabled: mounted: %s", body)
	put, err := c.PutAccountSetting(ctx, &ecr.PutAccountSettingInput{Name: aws.String("BLOB_MOUNTING"), Value: aws.String("DISABLED")})
	require.NoError(t, err)
	assert.Equal(t, "DISABLED", aws.ToString(put.Value))
	status, _, body = oci(http.MethodPost, "/v2/mount/off/blobs/uploads/?mount="+sha256Digest(blob)+"&from=mount/src", nil)
	assert.Equal(t, http.StatusAccepted, status, "disabled: an upload, not a mount: %s", body)
	status, _, _ = oci(http.MethodHead, "/v2/mount/off/blobs/"+sha256Digest(blob), nil)
	assert.Equal(t, http.StatusNotFound, status, "nothing was mounted")
	status, _, _ = oci(http.MethodHead, "/v2/mount/dst/blobs/"+sha256Digest(blob), nil)
	assert.Equal(t, http.StatusOK, status, "what was mounted before stays")

	// REGISTRY_POLICY_SCOPE: a registry policy that denies every ECR
	// action on scope/* refuses a listing at V2, not at V1; creating a
	// repository there is refused at both.
	_, err = c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("scope/app")})
	require.NoError(t, err)
	_, err = c.PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(`{"Version":"2012-10-17","Statement":[{"Sid":"NoScope",
		"Effect":"Deny","Principal":"*","Action":"ecr:*","Resource":"arn:aws:ecr:us-east-1:000000000000:repository/scope/*"}]}`)})
	require.NoError(t, err)
	_, err = c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("scope/app")})
	requireAPIError(t, err, "AccessDeniedException")
	_, err = c.PutAccountSetting(ctx, &ecr.PutAccountSettingInput{Name: aws.String("REGISTRY_POLICY_SCOPE"), Value: aws.String("V1")})
	require.NoError(t, err)
	_, err = c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("scope/app")})
	require.NoError(t, err, "V1: the registry policy does not decide a listing")
	_, err = c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("scope/new")})
	requireAPIError(t, err, "AccessDeniedException")

	// Both settings survive a restart.
	stop()
	addr, _ = startStoppableServer(t, func(c *cli.Config) { mut(c); c.Data = dir })
	c = ecrClient(addr, "")
	assert.Equal(t, "V1", setting("REGISTRY_POLICY_SCOPE"))
	assert.Equal(t, "DISABLED", setting("BLOB_MOUNTING"))

	// ListImageReferrers: an image and a signature whose subject it is.
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	uploadLayer(t, c, "mount/src", cfg) // the layer is there from the mount test
	image := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		sha256Digest(cfg), len(cfg), sha256Digest(blob), len(blob))
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("mount/src"), ImageManifest: aws.String(image), ImageTag: aws.String("v1")})
	require.NoError(t, err)
	sig := strings.Replace(image, `"schemaVersion":2,`, `"schemaVersion":2,"artifactType":"application/vnd.example.signature","annotations":{"by":"ci"},"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"`+sha256Digest([]byte(image))+`","size":`+fmt.Sprint(len(image))+`},`, 1)
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("mount/src"), ImageManifest: aws.String(sig)})
	require.NoError(t, err)
	refs, err := c.ListImageReferrers(ctx, &ecr.ListImageReferrersInput{RepositoryName: aws.String("mount/src"),
		SubjectId: &types.SubjectIdentifier{ImageDigest: aws.String(sha256Digest([]byte(image)))}})
	require.NoError(t, err)
	require.Len(t, refs.Referrers, 1)
	r := refs.Referrers[0]
	assert.Equal(t, sha256Digest([]byte(sig)), aws.ToString(r.Digest))
	assert.Equal(t, "application/vnd.example.signature", aws.ToString(r.ArtifactType))
	assert.Equal(t, int64(len(sig)), aws.ToInt64(r.Size))
	assert.Equal(t, map[string]string{"by": "ci"}, r.Annotations)
	assert.Equal(t, types.ArtifactStatusActive, r.ArtifactStatus)
	other, err := c.ListImageReferrers(ctx, &ecr.ListImageReferrersInput{RepositoryName: aws.String("mount/src"),
		SubjectId: &types.SubjectIdentifier{ImageDigest: aws.String(sha256Digest([]byte(image)))},
		Filter:    &types.ListImageReferrersFilter{ArtifactTypes: []string{"application/spdx+json"}}})
	require.NoError(t, err)
	assert.Empty(t, other.Referrers)

	// lastEvaluatedAt: none until a lifecycle run evaluates the policy.
	policy := `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}`
	_, err = c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("mount/src"), LifecyclePolicyText: aws.String(policy)})
	require.NoError(t, err)
	lp, err := c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String("mount/src")})
	require.NoError(t, err)
	assert.Nil(t, lp.LastEvaluatedAt)
	status, _, body = oci(http.MethodPost, "/admin/v1/lifecycle/apply?repository=mount/src", nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	lp, err = c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String("mount/src")})
	require.NoError(t, err)
	require.NotNil(t, lp.LastEvaluatedAt)
	assert.False(t, lp.LastEvaluatedAt.IsZero())
	del, err := c.DeleteLifecyclePolicy(ctx, &ecr.DeleteLifecyclePolicyInput{RepositoryName: aws.String("mount/src")})
	require.NoError(t, err)
	assert.Equal(t, lp.LastEvaluatedAt.Unix(), del.LastEvaluatedAt.Unix())
}

// TestECRRegistryLevelCallsWithAWSCLI: the real aws CLI drives the new
// operations unchanged.
func TestECRRegistryLevelCallsWithAWSCLI(t *testing.T) {
	addr := startServer(t, withECRAuth(t))
	run := func(args ...string) map[string]any {
		t.Helper()
		out, err := awsCLI(t, addr, append([]string{"ecr"}, args...)...)
		require.NoError(t, err)
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &v), out)
		return v
	}
	assert.Equal(t, map[string]any{"name": "BLOB_MOUNTING", "value": "ENABLED"}, run("get-account-setting", "--name", "BLOB_MOUNTING"))
	assert.Equal(t, map[string]any{"name": "REGISTRY_POLICY_SCOPE", "value": "V1"},
		run("put-account-setting", "--name", "REGISTRY_POLICY_SCOPE", "--value", "V1"))
	assert.Equal(t, "V1", run("get-account-setting", "--name", "REGISTRY_POLICY_SCOPE")["value"])
	_, err := awsCLI(t, addr, "ecr", "get-account-setting", "--name", "BASIC_SCAN_TYPE_VERSION")
	require.ErrorContains(t, err, "InvalidParameterException")
	require.ErrorContains(t, err, "neither AWS_NATIVE nor CLAIR")

	run("create-repository", "--repository-name", "cli/refs")
	refs := run("list-image-referrers", "--repository-name", "cli/refs", "--subject-id", "imageDigest=sha256:"+strings.Repeat("a", 64))
	assert.Equal(t, []any{}, refs["referrers"])
	_, err = awsCLI(t, addr, "ecr", "list-image-referrers", "--repository-name", "cli/nope", "--subject-id", "imageDigest=sha256:"+strings.Repeat("a", 64))
	require.ErrorContains(t, err, "RepositoryNotFoundException")
	assert.Equal(t, "000000000000", run("describe-registry")["registryId"])
}
