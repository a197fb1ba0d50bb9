package ecrapi

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/auth"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/regtest"
)

// actionOf are the operations whose action is not "ecr:" and their name
// (ECR's API reference names the permission they need).
var actionOf = map[string]authz.Action{
	"ListImageReferrers": authz.BatchGetImage,
}

// TestOperationTable: each operation's action is "ecr:" and its name (or
// the permission ECR's reference names, actionOf), and is an action the
// Authorizer knows.
func TestOperationTable(t *testing.T) {
	a := newTestAPI(t)
	require.Len(t, a.ops, 51)
	for name, op := range a.ops {
		want, ok := actionOf[name]
		if !ok {
			want = authz.Action("ecr:" + name)
		}
		assert.Equal(t, want, op.action(), name)
		assert.True(t, op.action().Known(), name)
	}
}

// denyAll refuses everything and records what it was asked.
type denyAll struct{ asked []string }

func (d *denyAll) Authorize(_ context.Context, _ engine.Principal, action authz.Action, res authz.Resource) error {
	d.asked = append(d.asked, authz.Access{Action: action, Resource: res}.String())
	return engine.ErrAccessDenied
}

// wellFormed is a request for each operation that passes its input's
// validation, so that it reaches the authorization.
var wellFormed = map[string]string{
	"CreateRepository":                        `{"repositoryName":"r"}`,
	"DescribeRepositories":                    `{}`,
	"DeleteRepository":                        `{"repositoryName":"r"}`,
	"PutImageTagMutability":                   `{"repositoryName":"r","imageTagMutability":"IMMUTABLE"}`,
	"PutImageScanningConfiguration":           `{"repositoryName":"r","imageScanningConfiguration":{"scanOnPush":true}}`,
	"TagResource":                             `{"resourceArn":"arn:aws:ecr:us-east-1:000000000000:repository/r","tags":[{"Key":"k","Value":"v"}]}`,
	"UntagResource":                           `{"resourceArn":"arn:aws:ecr:us-east-1:000000000000:repository/r","tagKeys":["k"]}`,
	"ListTagsForResource":                     `{"resourceArn":"arn:aws:ecr:us-east-1:000000000000:repository/r"}`,
	"SetRepositoryPolicy":                     `{"repositoryName":"r","policyText":"{}"}`,
	"GetRepositoryPolicy":                     `{"repositoryName":"r"}`,
	"DeleteRepositoryPolicy":                  `{"repositoryName":"r"}`,
	"PutLifecyclePolicy":                      `{"repositoryName":"r","lifecyclePolicyText":"{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"any\",\"countType\":\"imageCountMoreThan\",\"countNumber\":1},\"action\":{\"type\":\"expire\"}}]}"}`,
	"GetLifecyclePolicy":                      `{"repositoryName":"r"}`,
	"DeleteLifecyclePolicy":                   `{"repositoryName":"r"}`,
	"StartLifecyclePolicyPreview":             `{"repositoryName":"r"}`,
	"GetLifecyclePolicyPreview":               `{"repositoryName":"r"}`,
	"ListImages":                              `{"repositoryName":"r"}`,
	"DescribeImages":                          `{"repositoryName":"r"}`,
	"BatchGetImage":                           `{"repositoryName":"r","imageIds":[{"imageTag":"v1"}]}`,
	"BatchDeleteImage":                        `{"repositoryName":"r","imageIds":[{"imageTag":"v1"}]}`,
	"PutImage":                                `{"repositoryName":"r","imageManifest":"{}"}`,
	"BatchCheckLayerAvailability":             `{"repositoryName":"r","layerDigests":["sha256:00"]}`,
	"GetDownloadUrlForLayer":                  `{"repositoryName":"r","layerDigest":"sha256:00"}`,
	"InitiateLayerUpload":                     `{"repositoryName":"r"}`,
	"UploadLayerPart":                         `{"repositoryName":"r","uploadId":"u","partFirstByte":0,"partLastByte":0,"layerPartBlob":"AA=="}`,
	"CompleteLayerUpload":                     `{"repositoryName":"r","uploadId":"u","layerDigests":["sha256:00"]}`,
	"CreateRepositoryCreationTemplate":        `{"prefix":"ROOT","appliedFor":["CREATE_ON_PUSH"]}`,
	"UpdateRepositoryCreationTemplate":        `{"prefix":"ROOT","appliedFor":["CREATE_ON_PUSH"]}`,
	"UpdateImageStorageClass":                 `{"repositoryName":"r","imageId":{"imageTag":"v1"},"targetStorageClass":"ARCHIVE"}`,
	"DeleteRepositoryCreationTemplate":        `{"prefix":"ROOT"}`,
	"DescribeRepositoryCreationTemplates":     `{}`,
	"CreatePullThroughCacheRule":              `{"ecrRepositoryPrefix":"hub","upstreamRegistryUrl":"registry-1.docker.io"}`,
	"DescribePullThroughCacheRules":           `{}`,
	"DeletePullThroughCacheRule":              `{"ecrRepositoryPrefix":"hub"}`,
	"UpdatePullThroughCacheRule":              `{"ecrRepositoryPrefix":"hub","credentialArn":"arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/hub"}`,
	"ValidatePullThroughCacheRule":            `{"ecrRepositoryPrefix":"hub"}`,
	"GetAuthorizationToken":                   `{}`,
	"PutRegistryPolicy":                       `{"policyText":"{}"}`,
	"GetRegistryPolicy":                       `{}`,
	"DeleteRegistryPolicy":                    `{}`,
	"DescribeRegistry":                        `{}`,
	"PutReplicationConfiguration":             `{"replicationConfiguration":{"rules":[]}}`,
	"DescribeImageReplicationStatus":          `{"repositoryName":"r","imageId":{"imageTag":"v1"}}`,
	"GetAccountSetting":                       `{"name":"BLOB_MOUNTING"}`,
	"PutAccountSetting":                       `{"name":"BLOB_MOUNTING","value":"DISABLED"}`,
	"ListImageReferrers":                      `{"repositoryName":"r","subjectId":{"imageDigest":"sha256:` + strings.Repeat("0", 64) + `"}}`,
	"StartImageScan":                          `{"repositoryName":"r","imageId":{"imageTag":"v1"}}`,
	"DescribeImageScanFindings":               `{"repositoryName":"r","imageId":{"imageTag":"v1"}}`,
	"PutRegistryScanningConfiguration":        `{"scanType":"BASIC","rules":[]}`,
	"GetRegistryScanningConfiguration":        `{}`,
	"BatchGetRepositoryScanningConfiguration": `{"repositoryNames":["r"]}`,
}

// TestEveryOperationIsAuthorized: with an Authorizer that refuses
// everything, every operation is refused (AccessDeniedException) after
// asking about its own action on the resource its input names, and the
// store is left as it was.
func TestEveryOperationIsAuthorized(t *testing.T) {
	a := newTestAPI(t)
	deny := &denyAll{}
	a.authz = deny
	require.Len(t, wellFormed, len(a.ops))
	for name := range a.ops {
		t.Run(name, func(t *testing.T) {
			deny.asked = nil
			body, ok := wellFormed[name]
			require.True(t, ok, "no well-formed request for %s", name)
			regtest.RequireECRError(t, ecrDo(a.API, name, body), 400, "AccessDeniedException")
			require.Len(t, deny.asked, 1)
			want := "the registry"
			if strings.Contains(body, `"repositoryName":"r"`) || strings.Contains(body, "repository/r") || strings.Contains(body, `"repositoryNames":["r"]`) {
				want = "repository r"
			}
			assert.Equal(t, string(a.ops[name].action())+" on "+want, deny.asked[0])
		})
	}
	names, err := a.engine.ListRepositories(context.Background(), "", 10)
	require.NoError(t, err)
	assert.Empty(t, names, "nothing was done")
	ts, err := a.engine.CreationTemplates(context.Background())
	require.NoError(t, err)
	assert.Empty(t, ts)
}

// allowAll allows everything and records what it was asked.
type allowAll struct{ asked []string }

func (d *allowAll) Authorize(_ context.Context, _ engine.Principal, action authz.Action, res authz.Resource) error {
	d.asked = append(d.asked, authz.Access{Action: action, Resource: res}.String())
	return nil
}

// TestKMSKeyNeedsKeyAccess: a repository or creation template keyed by a
// KMS key also asks kms:CreateGrant and kms:DescribeKey on the key, and
// a refusal of either creates nothing.
func TestKMSKeyNeedsKeyAccess(t *testing.T) {
	a := newTestAPI(t)
	_, err := a.engine.CreateKey(context.Background(), "team-key")
	require.NoError(t, err)
	rec := &allowAll{}
	a.authz = rec
	res := ecrDo(a.API, "CreateRepository", `{"repositoryName":"r","encryptionConfiguration":{"encryptionType":"KMS","kmsKey":"team-key"}}`)
	require.Equal(t, 200, res.Code, res.Body.String())
	assert.Equal(t, []string{"ecr:CreateRepository on repository r", "kms:CreateGrant on key team-key", "kms:DescribeKey on key team-key"}, rec.asked)
	for _, op := range []string{"CreateRepositoryCreationTemplate", "UpdateRepositoryCreationTemplate"} {
		rec.asked = nil
		res = ecrDo(a.API, op, `{"prefix":"team","appliedFor":["CREATE_ON_PUSH"],"encryptionConfiguration":{"encryptionType":"KMS","kmsKey":"team-key"}}`)
		require.Equal(t, 200, res.Code, res.Body.String())
		assert.Equal(t, []string{"ecr:" + op + " on the registry", "kms:CreateGrant on key team-key", "kms:DescribeKey on key team-key"}, rec.asked)
	}
	rec.asked = nil
	require.Equal(t, 200, ecrDo(a.API, "CreateRepository", `{"repositoryName":"plain"}`).Code)
	assert.Equal(t, []string{"ecr:CreateRepository on repository plain"}, rec.asked, "the default key asks nothing more")

	deny := &denyKey{}
	a.authz = deny
	regtest.RequireECRError(t, ecrDo(a.API, "CreateRepository", `{"repositoryName":"s","encryptionConfiguration":{"encryptionType":"KMS","kmsKey":"team-key"}}`), 400, "AccessDeniedException")
	regtest.RequireECRError(t, ecrDo(a.API, "CreateRepositoryCreationTemplate", `{"prefix":"other","appliedFor":["CREATE_ON_PUSH"],"encryptionConfiguration":{"encryptionType":"KMS","kmsKey":"team-key"}}`), 400, "AccessDeniedException")
	names, err := a.engine.ListRepositories(context.Background(), "", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"plain", "r"}, names, "nothing created")
	ts, err := a.engine.CreationTemplates(context.Background())
	require.NoError(t, err)
	assert.Len(t, ts, 1)
}

// denyKey refuses every kms: action and allows the rest.
type denyKey struct{}

func (denyKey) Authorize(_ context.Context, _ engine.Principal, action authz.Action, _ authz.Resource) error {
	if strings.HasPrefix(string(action), "kms:") {
		return engine.ErrAccessDenied
	}
	return nil
}

// TestDescribeRepositoriesByNameAsksForEach: a call naming several
// repositories is authorized for each.
func TestDescribeRepositoriesByNameAsksForEach(t *testing.T) {
	a := newTestAPI(t)
	deny := &denyAll{}
	a.authz = deny
	ecrDo(a.API, "DescribeRepositories", `{"repositoryNames":["a","b"]}`)
	assert.Equal(t, []string{"ecr:DescribeRepositories on repository a"}, deny.asked, "the first refusal ends the call")
}

// TestAuthentication: the ECR API answers the AWS errors of a closed
// registry and of an unsigned call, before it looks at the operation.
func TestAuthentication(t *testing.T) {
	closed := newTestAPI(t, auth.Config{Account: DefaultAccountID, HtpasswdFile: regtest.WriteHtpasswd(t, "alice", "pw")})
	regtest.RequireECRError(t, ecrDo(closed.API, "DescribeRepositories", `{}`), http.StatusForbidden, "UnrecognizedClientException")
	regtest.RequireECRError(t, ecrDo(closed.API, "DescribeRegistry", `{}`), http.StatusForbidden, "UnrecognizedClientException")

	creds := filepath.Join(t.TempDir(), "creds")
	require.NoError(t, os.WriteFile(creds, []byte("AKIA1:secret\n"), 0o600))
	signed := newTestAPI(t, auth.Config{Account: DefaultAccountID, ECRCredentialsFile: creds})
	regtest.RequireECRError(t, ecrDo(signed.API, "DescribeRepositories", `{}`), http.StatusForbidden, "MissingAuthenticationTokenException")
	rec := regtest.Do(signed.API, http.MethodPost, "/", []byte(`{}`), map[string]string{
		"X-Amz-Target": TargetPrefix + "DescribeRepositories", "X-Amz-Date": "20261201T100000Z",
		"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA2/20261201/us-east-1/ecr/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=" + strings.Repeat("00", 32)})
	assert.Equal(t, http.StatusForbidden, rec.Code)
	assert.Contains(t, []string{"UnrecognizedClientException", "InvalidSignatureException"}, rec.Header().Get("X-Amzn-ErrorType"))
	assert.Contains(t, signed.scrape(), `berth_ecr_calls_total{operation="DescribeRepositories",result="MissingAuthenticationTokenException"} 1`)
}
