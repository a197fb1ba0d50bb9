package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/internal/faultfs"
	"github.com/berthstore/berth/registryd/cli"
)

// The error table: every error the ECR API answers, by operation and
// condition, with its AWS error code and message, driven through the AWS
// SDK for Go v2 against a real registryd. The codes are the ECR API
// reference's (each operation's Errors section; the service model's
// errors lists). Each row says where its message comes from:
//
//   - wordAWS: the message ECR sends, as real ECR answers show it
//     (CLI and SDK outputs quoted in public issues, and the messages the
//     moto project copies from ECR): repository not found, already
//     exists, not empty, repository, lifecycle and registry policy not
//     found, image not found, image already exists, immutable tag,
//     repository name pattern, an ARN that is none, a manifest without
//     a media type. (A lifecycle policy's validation failure has ECR's
//     preamble, "Lifecycle policy validation failure: ", and Berth's
//     detail.)
//   - wordConstraint: AWS's wording of a parameter constraint ("Invalid
//     parameter at 'x' failed to satisfy constraint: '...'", with the
//     constraint as AWS's request validation words lengths, ranges,
//     patterns and enums) for a constraint of the ECR API reference.
//   - wordIAM: IAM's access denied message (IAM User Guide,
//     "Troubleshoot access denied error messages"), with Berth's
//     deciding statement after it in parentheses.
//   - wordBerth: AWS publishes no message for the condition (the API
//     reference gives the exception, not its text), or the condition is
//     Berth's own (a parameter Berth refuses rather than ignore); the
//     message is Berth's, in the pattern of ECR's published ones.
const (
	wordAWS        = "AWS"
	wordConstraint = "AWS constraint"
	wordIAM        = "IAM"
	wordBerth      = "Berth"
)

// ecrErrorCase is one row: who calls what, and the error it must get.
type ecrErrorCase struct {
	op, condition string
	who           string // "" for root
	call          func(c *ecr.Client) error
	code, message string
	source        string
}

const (
	acct      = "000000000000"
	errRepo   = "err/app"
	repoARN   = "arn:aws:ecr:us-east-1:" + acct + ":repository/"
	nobodyARN = "arn:aws:iam::" + acct + ":user/nobody"
	// okSecret and offSecret are stored secrets of pull-through cache
	// rules (offSecret's key is disabled); cacheRepo a repository of
	// the err-hub rule.
	okSecret  = "ecr-pullthroughcache/err-ok"
	offSecret = "ecr-pullthroughcache/err-off"
	secretARN = "arn:aws:secretsmanager:us-east-1:" + acct + ":secret:"
	cacheRepo = "err-hub/cached"
)

// errIdentityFile: root administers; nobody holds no policy; denied may
// do everything but delete repositories and read stored secrets.
const errIdentityFile = `
policies:
  admin: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "*", Resource: "*"}]}
  no-deletes: {Version: "2012-10-17", Statement: [{Sid: NoDeletes, Effect: Deny, Action: "ecr:DeleteRepository", Resource: "*"}]}
  no-secrets: {Version: "2012-10-17", Statement: [{Sid: NoSecrets, Effect: Deny, Action: "secretsmanager:GetSecretValue", Resource: "*"}]}
groups:
  admins: {policies: [admin]}
users:
  root: {groups: [admins]}
  nobody: {}
  denied: {groups: [admins], policies: [no-deletes, no-secrets]}
`

// errFixture is the registry of the error table.
type errFixture struct {
	dir, htpasswd, creds, iamFile string
	addr                          string
	stop                          func()
	// digests of the fixture's content.
	config, layer, manifest string
	manifestJSON            string
}

// configure makes a server on the fixture's store with its identities.
func (f *errFixture) configure(c *cli.Config) {
	c.Data = f.dir
	c.Htpasswd, c.ECRCredentials, c.IAM, c.CreateOnPush = f.htpasswd, f.creds, f.iamFile, false
}

// client is who's SDK client; it does not retry (a 503 answers at once).
func (f *errFixture) client(who string) *ecr.Client {
	if who == "" {
		who = "root"
	}
	return ecr.New(ecr.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + f.addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIA"+strings.ToUpper(who), who+"-secret", "")})
}

func newErrFixture(t *testing.T) *errFixture {
	t.Helper()
	f := &errFixture{dir: t.TempDir()}
	files := t.TempDir()
	f.htpasswd, f.creds, f.iamFile = filepath.Join(files, "htpasswd"), filepath.Join(files, "creds"), filepath.Join(files, "iam.yaml")
	var htpasswd, creds strings.Builder
	for _, u := range []string{"root", "nobody", "denied"} {
		hash, err := bcrypt.GenerateFromPassword([]byte("pw-"+u), bcrypt.MinCost)
		require.NoError(t, err)
		htpasswd.WriteString(u + ":" + string(hash) + "\n")
		creds.WriteString("AKIA" + strings.ToUpper(u) + ":" + u + "-secret:" + u + "\n")
	}
	require.NoError(t, os.WriteFile(f.htpasswd, []byte(htpasswd.String()), 0o600))
	require.NoError(t, os.WriteFile(f.creds, []byte(creds.String()), 0o600))
	require.NoError(t, os.WriteFile(f.iamFile, []byte(errIdentityFile), 0o600))

	// The keys, made by the operator on the store before it serves.
	ctx := context.Background()
	e, err := engine.Open(f.dir, &engine.Options{Logger: quietLogger()})
	require.NoError(t, err)
	for _, k := range []string{"err-key", "off-key"} {
		_, err := e.CreateKey(ctx, k)
		require.NoError(t, err)
	}
	// The secrets of pull-through cache rules: one that opens, one whose
	// key the operator disables below.
	for name, key := range map[string]string{okSecret: "", offSecret: "off-key"} {
		_, _, err := e.PutSecret(ctx, name, []byte(`{"username":"u","accessToken":"t"}`), key)
		require.NoError(t, err)
	}
	require.NoError(t, e.Close())
	f.addr, f.stop = startStoppableServer(t, f.configure)

	// Repositories and their content, through the ECR API.
	root := f.client("")
	for _, in := range []*ecr.CreateRepositoryInput{
		{RepositoryName: aws.String(errRepo)},
		{RepositoryName: aws.String("err/immutable"), ImageTagMutability: types.ImageTagMutabilityImmutable},
		{RepositoryName: aws.String("err/empty")},
		{RepositoryName: aws.String("err/guarded")},
		{RepositoryName: aws.String("err/locked"), EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms, KmsKey: aws.String("off-key")}},
	} {
		_, err := root.CreateRepository(ctx, in)
		require.NoError(t, err)
	}
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := []byte("the error table's layer")
	f.config, f.layer = sha256Digest(cfg), sha256Digest(layer)
	f.manifestJSON = fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		f.config, len(cfg), f.layer, len(layer))
	f.manifest = sha256Digest([]byte(f.manifestJSON))
	for _, repo := range []string{errRepo, "err/immutable", "err/locked"} {
		for _, b := range [][]byte{cfg, layer} {
			uploadLayer(t, root, repo, b)
		}
		_, err := root.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageManifest: aws.String(f.manifestJSON), ImageTag: aws.String("v1")})
		require.NoError(t, err)
	}
	_, err = root.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("err/guarded"), PolicyText: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Sid":"NoListing","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/denied"},"Action":"ecr:ListImages"}]}`)})
	require.NoError(t, err)
	_, err = root.CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("err-tpl"),
		AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush}})
	require.NoError(t, err)
	_, err = root.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("err-hub"),
		UpstreamRegistryUrl: aws.String("registry.invalid")})
	require.NoError(t, err)

	// off-key is disabled by the operator, on the stopped store.
	f.stop()
	e, err = engine.Open(f.dir, &engine.Options{Logger: quietLogger()})
	require.NoError(t, err)
	require.NoError(t, e.DisableKey(ctx, "off-key"))
	// A repository a fill of err-hub made: the cache's, not for pushes.
	_, err = e.EnsureCacheRepository(ctx, cacheRepo)
	require.NoError(t, err)
	require.NoError(t, e.Close())
	f.addr, f.stop = startStoppableServer(t, f.configure)
	return f
}

// uploadLayer pushes b into repo with the layer upload calls.
func uploadLayer(t *testing.T, c *ecr.Client, repo string, b []byte) {
	t.Helper()
	ctx := context.Background()
	up, err := c.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: aws.String(repo)})
	require.NoError(t, err)
	_, err = c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: aws.String(repo), UploadId: up.UploadId,
		PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(int64(len(b) - 1)), LayerPartBlob: b})
	require.NoError(t, err)
	_, err = c.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: aws.String(repo), UploadId: up.UploadId,
		LayerDigests: []string{sha256Digest(b)}})
	require.NoError(t, err)
}

// withExtraParameter adds a parameter to the request's JSON body, after
// the SDK serialized it (and before it is signed): a parameter the SDK
// does not know, as a newer client might send.
func withExtraParameter(name string, value any) func(*ecr.Options) {
	return ecr.WithAPIOptions(func(stack *middleware.Stack) error {
		return stack.Serialize.Add(middleware.SerializeMiddlewareFunc("extraParameter", func(ctx context.Context, in middleware.SerializeInput, next middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
			req := in.Request.(*smithyhttp.Request)
			body, err := io.ReadAll(req.GetStream())
			if err != nil {
				return middleware.SerializeOutput{}, middleware.Metadata{}, err
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				return middleware.SerializeOutput{}, middleware.Metadata{}, err
			}
			m[name] = value
			body, _ = json.Marshal(m)
			if in.Request, err = req.SetStream(bytes.NewReader(body)); err != nil {
				return middleware.SerializeOutput{}, middleware.Metadata{}, err
			}
			return next.HandleSerialize(ctx, in)
		}), middleware.After)
	})
}

// ecrOperation is one operation Berth serves: a well-formed call of it on
// err/app (or the registry), and the action and resource it is decided
// on.
type ecrOperation struct {
	name, action, resource string
	call                   func(c *ecr.Client) error
}

// ecrOperations are every operation Berth serves, each with a call that
// reaches its authorization.
func (f *errFixture) ecrOperations() []ecrOperation {
	ctx := context.Background()
	repo := aws.String(errRepo)
	arn := aws.String(repoARN + errRepo)
	v1 := []types.ImageIdentifier{{ImageTag: aws.String("v1")}}
	onRepo, onRegistry := repoARN+errRepo, "*"
	policy := aws.String(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	op := func(name, resource string, call func(c *ecr.Client) error) ecrOperation {
		return ecrOperation{name: name, action: "ecr:" + name, resource: resource, call: call}
	}
	ops := []ecrOperation{
		op("CreateRepository", repoARN+"err/new", func(c *ecr.Client) error {
			_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("err/new")})
			return err
		}),
		op("DescribeRepositories", onRegistry, func(c *ecr.Client) error {
			_, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{})
			return err
		}),
		op("DeleteRepository", onRepo, func(c *ecr.Client) error {
			_, err := c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: repo})
			return err
		}),
		op("PutImageTagMutability", onRepo, func(c *ecr.Client) error {
			_, err := c.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: repo, ImageTagMutability: types.ImageTagMutabilityMutable})
			return err
		}),
		op("PutImageScanningConfiguration", onRepo, func(c *ecr.Client) error {
			_, err := c.PutImageScanningConfiguration(ctx, &ecr.PutImageScanningConfigurationInput{RepositoryName: repo,
				ImageScanningConfiguration: &types.ImageScanningConfiguration{}})
			return err
		}),
		op("TagResource", onRepo, func(c *ecr.Client) error {
			_, err := c.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		}),
		op("UntagResource", onRepo, func(c *ecr.Client) error {
			_, err := c.UntagResource(ctx, &ecr.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"k"}})
			return err
		}),
		op("ListTagsForResource", onRepo, func(c *ecr.Client) error {
			_, err := c.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: arn})
			return err
		}),
		op("SetRepositoryPolicy", onRepo, func(c *ecr.Client) error {
			_, err := c.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: repo,
				PolicyText: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:BatchDeleteImage"}]}`)})
			return err
		}),
		op("GetRepositoryPolicy", onRepo, func(c *ecr.Client) error {
			_, err := c.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: repo})
			return err
		}),
		op("DeleteRepositoryPolicy", onRepo, func(c *ecr.Client) error {
			_, err := c.DeleteRepositoryPolicy(ctx, &ecr.DeleteRepositoryPolicyInput{RepositoryName: repo})
			return err
		}),
		op("PutLifecyclePolicy", onRepo, func(c *ecr.Client) error {
			_, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: policy})
			return err
		}),
		op("GetLifecyclePolicy", onRepo, func(c *ecr.Client) error {
			_, err := c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: repo})
			return err
		}),
		op("DeleteLifecyclePolicy", onRepo, func(c *ecr.Client) error {
			_, err := c.DeleteLifecyclePolicy(ctx, &ecr.DeleteLifecyclePolicyInput{RepositoryName: repo})
			return err
		}),
		op("StartLifecyclePolicyPreview", onRepo, func(c *ecr.Client) error {
			_, err := c.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: repo, LifecyclePolicyText: policy})
			return err
		}),
		op("GetLifecyclePolicyPreview", onRepo, func(c *ecr.Client) error {
			_, err := c.GetLifecyclePolicyPreview(ctx, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: repo})
			return err
		}),
		op("ListImages", onRepo, func(c *ecr.Client) error {
			_, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: repo})
			return err
		}),
		op("DescribeImages", onRepo, func(c *ecr.Client) error {
			_, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: repo})
			return err
		}),
		op("BatchGetImage", onRepo, func(c *ecr.Client) error {
			_, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: repo, ImageIds: v1})
			return err
		}),
		op("BatchDeleteImage", onRepo, func(c *ecr.Client) error {
			_, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("nope")}}})
			return err
		}),
		op("PutImage", onRepo, func(c *ecr.Client) error {
			_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: repo, ImageManifest: aws.String(f.manifestJSON), ImageTag: aws.String("v9")})
			return err
		}),
		op("UpdateImageStorageClass", onRepo, func(c *ecr.Client) error {
			_, err := c.UpdateImageStorageClass(ctx, &ecr.UpdateImageStorageClassInput{RepositoryName: repo, ImageId: &v1[0], TargetStorageClass: types.TargetStorageClassArchive})
			return err
		}),
		op("ListImageReferrers", onRepo, func(c *ecr.Client) error {
			_, err := c.ListImageReferrers(ctx, &ecr.ListImageReferrersInput{RepositoryName: repo, SubjectId: &types.SubjectIdentifier{ImageDigest: aws.String(f.manifest)}})
			return err
		}),
		op("BatchCheckLayerAvailability", onRepo, func(c *ecr.Client) error {
			_, err := c.BatchCheckLayerAvailability(ctx, &ecr.BatchCheckLayerAvailabilityInput{RepositoryName: repo, LayerDigests: []string{f.layer}})
			return err
		}),
		op("GetDownloadUrlForLayer", onRepo, func(c *ecr.Client) error {
			_, err := c.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: repo, LayerDigest: aws.String(f.layer)})
			return err
		}),
		op("InitiateLayerUpload", onRepo, func(c *ecr.Client) error {
			_, err := c.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: repo})
			return err
		}),
		op("UploadLayerPart", onRepo, func(c *ecr.Client) error {
			_, err := c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: repo, UploadId: aws.String("00000000-0000-0000-0000-000000000000"),
				PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(0), LayerPartBlob: []byte{1}})
			return err
		}),
		op("CompleteLayerUpload", onRepo, func(c *ecr.Client) error {
			_, err := c.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: repo, UploadId: aws.String("00000000-0000-0000-0000-000000000000"),
				LayerDigests: []string{f.layer}})
			return err
		}),
		op("CreateRepositoryCreationTemplate", onRegistry, func(c *ecr.Client) error {
			_, err := c.CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("err-new"),
				AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush}})
			return err
		}),
		op("UpdateRepositoryCreationTemplate", onRegistry, func(c *ecr.Client) error {
			_, err := c.UpdateRepositoryCreationTemplate(ctx, &ecr.UpdateRepositoryCreationTemplateInput{Prefix: aws.String("err-tpl")})
			return err
		}),
		op("DeleteRepositoryCreationTemplate", onRegistry, func(c *ecr.Client) error {
			_, err := c.DeleteRepositoryCreationTemplate(ctx, &ecr.DeleteRepositoryCreationTemplateInput{Prefix: aws.String("err-tpl")})
			return err
		}),
		op("DescribeRepositoryCreationTemplates", onRegistry, func(c *ecr.Client) error {
			_, err := c.DescribeRepositoryCreationTemplates(ctx, &ecr.DescribeRepositoryCreationTemplatesInput{})
			return err
		}),
		op("CreatePullThroughCacheRule", onRegistry, func(c *ecr.Client) error {
			_, err := c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("err-new"),
				UpstreamRegistryUrl: aws.String("registry.invalid")})
			return err
		}),
		op("DescribePullThroughCacheRules", onRegistry, func(c *ecr.Client) error {
			_, err := c.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{})
			return err
		}),
		op("UpdatePullThroughCacheRule", onRegistry, func(c *ecr.Client) error {
			_, err := c.UpdatePullThroughCacheRule(ctx, &ecr.UpdatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("err-hub"),
				CredentialArn: aws.String(secretARN + okSecret)})
			return err
		}),
		op("ValidatePullThroughCacheRule", onRegistry, func(c *ecr.Client) error {
			_, err := c.ValidatePullThroughCacheRule(ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("err-hub")})
			return err
		}),
		op("DeletePullThroughCacheRule", onRegistry, func(c *ecr.Client) error {
			_, err := c.DeletePullThroughCacheRule(ctx, &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("err-hub")})
			return err
		}),
		op("GetAuthorizationToken", onRegistry, func(c *ecr.Client) error {
			_, err := c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
			return err
		}),
		op("PutRegistryPolicy", onRegistry, func(c *ecr.Client) error {
			_, err := c.PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(
				`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/nobody"},"Action":"ecr:CreateRepository","Resource":"*"}]}`)})
			return err
		}),
		op("GetRegistryPolicy", onRegistry, func(c *ecr.Client) error {
			_, err := c.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{})
			return err
		}),
		op("DeleteRegistryPolicy", onRegistry, func(c *ecr.Client) error {
			_, err := c.DeleteRegistryPolicy(ctx, &ecr.DeleteRegistryPolicyInput{})
			return err
		}),
		op("DescribeRegistry", onRegistry, func(c *ecr.Client) error {
			_, err := c.DescribeRegistry(ctx, &ecr.DescribeRegistryInput{})
			return err
		}),
		op("PutReplicationConfiguration", onRegistry, func(c *ecr.Client) error {
			_, err := c.PutReplicationConfiguration(ctx, &ecr.PutReplicationConfigurationInput{ReplicationConfiguration: &types.ReplicationConfiguration{Rules: []types.ReplicationRule{}}})
			return err
		}),
		op("DescribeImageReplicationStatus", onRepo, func(c *ecr.Client) error {
			_, err := c.DescribeImageReplicationStatus(ctx, &ecr.DescribeImageReplicationStatusInput{RepositoryName: repo, ImageId: &v1[0]})
			return err
		}),
		op("GetAccountSetting", onRegistry, func(c *ecr.Client) error {
			_, err := c.GetAccountSetting(ctx, &ecr.GetAccountSettingInput{Name: aws.String("BLOB_MOUNTING")})
			return err
		}),
		op("PutAccountSetting", onRegistry, func(c *ecr.Client) error {
			_, err := c.PutAccountSetting(ctx, &ecr.PutAccountSettingInput{Name: aws.String("BLOB_MOUNTING"), Value: aws.String("ENABLED")})
			return err
		}),
		op("StartImageScan", onRepo, func(c *ecr.Client) error {
			_, err := c.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: repo, ImageId: &v1[0]})
			return err
		}),
		op("DescribeImageScanFindings", onRepo, func(c *ecr.Client) error {
			_, err := c.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{RepositoryName: repo, ImageId: &v1[0]})
			return err
		}),
		op("PutRegistryScanningConfiguration", onRegistry, func(c *ecr.Client) error {
			_, err := c.PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{ScanType: types.ScanTypeBasic})
			return err
		}),
		op("GetRegistryScanningConfiguration", onRegistry, func(c *ecr.Client) error {
			_, err := c.GetRegistryScanningConfiguration(ctx, &ecr.GetRegistryScanningConfigurationInput{})
			return err
		}),
		op("BatchGetRepositoryScanningConfiguration", onRepo, func(c *ecr.Client) error {
			_, err := c.BatchGetRepositoryScanningConfiguration(ctx, &ecr.BatchGetRepositoryScanningConfigurationInput{RepositoryNames: []string{errRepo}})
			return err
		}),
	}
	for i := range ops {
		if ops[i].name == "ListImageReferrers" {
			ops[i].action = "ecr:BatchGetImage" // ECR's reference: the permission ListImageReferrers needs
		}
	}
	return ops
}

// unknownOperations are the operations of the ECR API Berth does not
// serve, each called through the SDK: each answers
// UnknownOperationException naming it. (UpdateImageStorageClass and the
// scanning operations are left out: the archive tier and the scanner
// serve them.)
func unknownOperations() map[string]func(c *ecr.Client) error {
	ctx := context.Background()
	repo := aws.String(errRepo)
	img := &types.ImageIdentifier{ImageTag: aws.String("v1")}
	return map[string]func(c *ecr.Client) error{
		"DeleteSigningConfiguration": func(c *ecr.Client) error {
			_, err := c.DeleteSigningConfiguration(ctx, &ecr.DeleteSigningConfigurationInput{})
			return err
		},
		"DeregisterPullTimeUpdateExclusion": func(c *ecr.Client) error {
			_, err := c.DeregisterPullTimeUpdateExclusion(ctx, &ecr.DeregisterPullTimeUpdateExclusionInput{PrincipalArn: aws.String(nobodyARN)})
			return err
		},
		"DescribeImageSigningStatus": func(c *ecr.Client) error {
			_, err := c.DescribeImageSigningStatus(ctx, &ecr.DescribeImageSigningStatusInput{RepositoryName: repo, ImageId: img})
			return err
		},
		"DescribeReplicationBackfillResults": func(c *ecr.Client) error {
			_, err := c.DescribeReplicationBackfillResults(ctx, &ecr.DescribeReplicationBackfillResultsInput{ReplicationBackfillId: aws.String("00000000-0000-0000-0000-000000000000")})
			return err
		},
		"GetSigningConfiguration": func(c *ecr.Client) error {
			_, err := c.GetSigningConfiguration(ctx, &ecr.GetSigningConfigurationInput{})
			return err
		},
		"ListPullTimeUpdateExclusions": func(c *ecr.Client) error {
			_, err := c.ListPullTimeUpdateExclusions(ctx, &ecr.ListPullTimeUpdateExclusionsInput{})
			return err
		},
		"ListReplicationBackfills": func(c *ecr.Client) error {
			_, err := c.ListReplicationBackfills(ctx, &ecr.ListReplicationBackfillsInput{})
			return err
		},
		"PutSigningConfiguration": func(c *ecr.Client) error {
			_, err := c.PutSigningConfiguration(ctx, &ecr.PutSigningConfigurationInput{SigningConfiguration: &types.SigningConfiguration{Rules: []types.SigningRule{}}})
			return err
		},
		"RegisterPullTimeUpdateExclusion": func(c *ecr.Client) error {
			_, err := c.RegisterPullTimeUpdateExclusion(ctx, &ecr.RegisterPullTimeUpdateExclusionInput{PrincipalArn: aws.String(nobodyARN)})
			return err
		},
		"StartReplicationBackfill": func(c *ecr.Client) error {
			_, err := c.StartReplicationBackfill(ctx, &ecr.StartReplicationBackfillInput{Destination: &types.ReplicationDestination{Region: aws.String("eu-west-1"), RegistryId: aws.String(acct)}})
			return err
		},
		"StopReplicationBackfill": func(c *ecr.Client) error {
			_, err := c.StopReplicationBackfill(ctx, &ecr.StopReplicationBackfillInput{ReplicationBackfillId: aws.String("00000000-0000-0000-0000-000000000000")})
			return err
		},
	}
}

// requireECRError checks err's AWS error code and message.
func requireECRError(t *testing.T, err error, code, message string) {
	t.Helper()
	require.Error(t, err, "want %s", code)
	var ae smithy.APIError
	require.True(t, errors.As(err, &ae), "not an API error: %v", err)
	assert.Equal(t, code, ae.ErrorCode(), "%v", err)
	assert.Equal(t, message, ae.ErrorMessage())
}

// invalidAt is ECR's InvalidParameterException message for field.
func invalidAt(field, constraint string) string {
	return "Invalid parameter at '" + field + "' failed to satisfy constraint: '" + constraint + "'"
}

// unsupported is Berth's message for a parameter it refuses.
func unsupported(op, field, why string) string {
	return invalidAt(field, "Berth does not support this parameter of "+op+": "+why)
}

// TestECRErrors is the error table: every operation Berth serves, with
// each error the ECR API reference lists for it that a client can cause
// (not found, already exists, each parameter constraint, limits, access
// denied for a caller without the grant and under explicit denies,
// parameters Berth refuses, KMS), every operation Berth does not serve
// (UnknownOperationException), and every operation's ServerException
// when the registry cannot serve (TestECRErrorsServer). Each row checks
// the error code and the message.
func TestECRErrors(t *testing.T) {
	ctx := context.Background()
	f := newErrFixture(t)
	ops := f.ecrOperations()
	cases := f.errorCases(t)

	// Access denied: every operation, to a caller no policy grants it.
	for _, o := range ops {
		cases = append(cases, ecrErrorCase{op: o.name, condition: "a caller no policy grants the action", who: "nobody", call: o.call,
			code: "AccessDeniedException", source: wordIAM,
			message: "User: " + nobodyARN + " is not authorized to perform: " + o.action + " on resource: " + o.resource +
				" because no identity-based policy allows the " + o.action + " action (implicitly denied: no statement allows)"})
	}
	// Unknown operations.
	for name, call := range unknownOperations() {
		cases = append(cases, ecrErrorCase{op: name, condition: "an operation Berth does not serve", call: call,
			code: "UnknownOperationException", source: wordBerth,
			message: fmt.Sprintf("operation %q is not implemented by Berth (docs/ecr-api.md lists the ones that are)", name)})
	}

	served := map[string]bool{}
	for _, o := range ops {
		served[o.name] = true
	}
	perOp := map[string]int{}
	for _, tc := range cases {
		perOp[tc.op]++
		t.Run(tc.op+"/"+tc.condition, func(t *testing.T) {
			err := tc.call(f.client(tc.who))
			requireECRError(t, err, tc.code, tc.message)
		})
	}
	for name := range served {
		assert.GreaterOrEqual(t, perOp[name], 2, "%s: the table has its access denied row and at least one more", name)
	}
	t.Logf("error table: %d rows over %d operations (%d served, %d not)", len(cases), len(perOp), len(served), len(unknownOperations()))

	// The refusals changed nothing: err/app still holds its image.
	out, err := f.client("").DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(errRepo)})
	require.NoError(t, err)
	require.Len(t, out.ImageDetails, 1)
}

// errorCases are the table's rows besides access denied for each
// operation and the unknown operations.
func (f *errFixture) errorCases(t *testing.T) []ecrErrorCase {
	ctx := context.Background()
	repo := aws.String(errRepo)
	notFound := func(name string) string {
		return "The repository with name '" + name + "' does not exist in the registry with id '" + acct + "'"
	}
	nope := aws.String("err/nope")
	const namePattern = "must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*'"
	zeroUpload := aws.String("00000000-0000-0000-0000-000000000000")
	v1 := []types.ImageIdentifier{{ImageTag: aws.String("v1")}}
	policy := `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
	tags := func(n int) []types.Tag {
		var ts []types.Tag
		for i := range n {
			ts = append(ts, types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")})
		}
		return ts
	}
	var ids101 []types.ImageIdentifier
	for range 101 {
		ids101 = append(ids101, types.ImageIdentifier{ImageTag: aws.String("v1")})
	}
	emptyUpload, err := f.client("").InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: repo})
	require.NoError(t, err)
	partUpload, err := f.client("").InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: repo})
	require.NoError(t, err)
	_, err = f.client("").UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: repo, UploadId: partUpload.UploadId,
		PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(9), LayerPartBlob: []byte("0123456789")})
	require.NoError(t, err)
	// A preview to filter.
	_, err = f.client("").StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: aws.String("err/immutable"),
		LifecyclePolicyText: aws.String(policy)})
	require.NoError(t, err)
	c := func(op, condition, code, message, source string, call func(c *ecr.Client) error) ecrErrorCase {
		return ecrErrorCase{op: op, condition: condition, call: call, code: code, message: message, source: source}
	}
	const ip, rnf = "InvalidParameterException", "RepositoryNotFoundException"
	const (
		scanLimit       = "The scan quota per image has been exceeded. Wait and try again."
		continuousBasic = "Invalid parameter at 'rules[0].scanFrequency' failed to satisfy constraint: 'CONTINUOUS_SCAN needs scanType ENHANCED (basic scanning scans on push and manually)'"
		unknownScanType = "Invalid parameter at 'scanType' failed to satisfy constraint: 'Member must satisfy enum value set: [BASIC, ENHANCED]'"
	)
	rows := []ecrErrorCase{
		// CreateRepository.
		c("CreateRepository", "the repository exists", "RepositoryAlreadyExistsException",
			"The repository with name 'err/app' already exists in the registry with id '000000000000'", wordAWS, func(c *ecr.Client) error {
				_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: repo})
				return err
			}),
		c("CreateRepository", "a name outside the pattern", ip, invalidAt("repositoryName", namePattern), wordAWS, func(c *ecr.Client) error {
			_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("Err/App")})
			return err
		}),
		c("CreateRepository", "a name over 256 characters", ip, invalidAt("repositoryName", "Member must have length less than or equal to 256"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(strings.Repeat("a", 257))})
			return err
		}),
		c("CreateRepository", "a registry ID that is no account ID", ip, invalidAt("registryId", "Member must satisfy regular expression pattern: [0-9]{12}"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RegistryId: aws.String("12"), RepositoryName: aws.String("err/x")})
			return err
		}),
		c("CreateRepository", "another registry's ID", ip, invalidAt("registryId", "the registry with id '123456789012' is not this registry ('000000000000'): Berth serves one registry"), wordBerth, func(c *ecr.Client) error {
			_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RegistryId: aws.String("123456789012"), RepositoryName: aws.String("err/x")})
			return err
		}),
		c("CreateRepository", "an imageTagMutability outside the enum", ip, invalidAt("imageTagMutability", "Member must satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("err/x"), ImageTagMutability: "SOMETIMES"})
			return err
		}),
		c("CreateRepository", "exclusion filters without an _WITH_EXCLUSION mutability", ip, invalidAt("imageTagMutabilityExclusionFilters", "are allowed only with IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION"), wordBerth, func(c *ecr.Client) error {
			_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("err/x"), ImageTagMutability: types.ImageTagMutabilityMutable,
				ImageTagMutabilityExclusionFilters: []types.ImageTagMutabilityExclusionFilter{{Filter: aws.String("dev-*"), FilterType: types.ImageTagMutabilityExclusionFilterTypeWildcard}}})
			return err
		}),
		c("CreateRepository", "a reserved tag key", "InvalidTagParameterException", invalidAt("tags[0].Key", `"aws:team": the aws: prefix is reserved`), wordBerth, func(c *ecr.Client) error {
			_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("err/x"), Tags: []types.Tag{{Key: aws.String("aws:team"), Value: aws.String("a")}}})
			return err
		}),
		c("CreateRepository", "51 tags (the limit is 50)", "TooManyTagsException", invalidAt("tags", "51 tags, at most 50"), wordBerth, func(c *ecr.Client) error {
			_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("err/x"), Tags: tags(51)})
			return err
		}),
		c("CreateRepository", "KMS_DSSE (no dual-layer encryption)", ip, unsupported("CreateRepository", "encryptionConfiguration.encryptionType",
			"Berth has no dual-layer encryption (KMS_DSSE): it encrypts each blob once, under a data key that the repository's key wraps; use KMS"), wordBerth, func(c *ecr.Client) error {
			_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("err/x"), EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKmsDsse}})
			return err
		}),
		c("CreateRepository", "a kmsKey with AES256", ip, invalidAt("encryptionConfiguration.kmsKey", "is allowed only with KMS or KMS_DSSE"), wordBerth, func(c *ecr.Client) error {
			_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("err/x"), EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeAes256, KmsKey: aws.String("err-key")}})
			return err
		}),
		c("CreateRepository", "a parameter Berth does not know", ip, unsupported("CreateRepository", "imageStorageTier", "it is not one Berth knows (docs/ecr-api.md lists the parameters of each operation)"), wordBerth, func(c *ecr.Client) error {
			_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("err/x")}, withExtraParameter("imageStorageTier", "COLD"))
			return err
		}),
		// DescribeRepositories.
		c("DescribeRepositories", "a named repository that does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{errRepo, "err/nope"}})
			return err
		}),
		c("DescribeRepositories", "maxResults over 1000", ip, invalidAt("maxResults", "Member must have value less than or equal to 1000"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(1001)})
			return err
		}),
		c("DescribeRepositories", "maxResults 0", ip, invalidAt("maxResults", "Member must have value greater than or equal to 1"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(0)})
			return err
		}),
		c("DescribeRepositories", "a nextToken this registry did not issue", ip, invalidAt("nextToken", "the nextToken is not one this registry issued"), wordBerth, func(c *ecr.Client) error {
			_, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{NextToken: aws.String("!!")})
			return err
		}),
		c("DescribeRepositories", "repositoryNames with maxResults", ip, invalidAt("repositoryNames", "maxResults and nextToken cannot be used with repositoryNames"), wordBerth, func(c *ecr.Client) error {
			_, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{errRepo}, MaxResults: aws.Int32(1)})
			return err
		}),
		c("DescribeRepositories", "101 repositoryNames", ip, invalidAt("repositoryNames", "Member must have length less than or equal to 100"), wordConstraint, func(c *ecr.Client) error {
			names := make([]string, 101)
			for i := range names {
				names[i] = fmt.Sprintf("r%d", i)
			}
			_, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: names})
			return err
		}),
		// DeleteRepository.
		c("DeleteRepository", "the repository holds images", "RepositoryNotEmptyException",
			"The repository with name 'err/app' in registry with id '000000000000' cannot be deleted because it still contains images", wordAWS, func(c *ecr.Client) error {
				_, err := c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: repo})
				return err
			}),
		c("DeleteRepository", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: nope})
			return err
		}),
		{op: "DeleteRepository", condition: "an explicit deny in the caller's identity policy", who: "denied", code: "AccessDeniedException", source: wordIAM,
			message: "User: arn:aws:iam::000000000000:user/denied is not authorized to perform: ecr:DeleteRepository on resource: " + repoARN + "err/empty with an explicit deny in an identity-based policy (explicitly denied by identity policy \"no-deletes\" statement 0 (Sid \"NoDeletes\"))",
			call: func(c *ecr.Client) error {
				_, err := c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("err/empty")})
				return err
			}},
		// PutImageTagMutability, PutImageScanningConfiguration.
		c("PutImageTagMutability", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: nope, ImageTagMutability: types.ImageTagMutabilityMutable})
			return err
		}),
		c("PutImageTagMutability", "an imageTagMutability outside the enum", ip, invalidAt("imageTagMutability", "Member must satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: repo, ImageTagMutability: "NEVER"})
			return err
		}),
		c("PutImageTagMutability", "an _WITH_EXCLUSION mutability without filters", ip, invalidAt("imageTagMutabilityExclusionFilters", "IMMUTABLE_WITH_EXCLUSION needs 1 to 5 filters, got 0"), wordBerth, func(c *ecr.Client) error {
			_, err := c.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: repo, ImageTagMutability: types.ImageTagMutabilityImmutableWithExclusion})
			return err
		}),
		c("PutImageTagMutability", "a filter outside its pattern", ip, invalidAt("imageTagMutabilityExclusionFilters[0].filter", `"a b" must match ^[0-9a-zA-Z._*-]{1,128}$`), wordBerth, func(c *ecr.Client) error {
			_, err := c.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: repo, ImageTagMutability: types.ImageTagMutabilityImmutableWithExclusion,
				ImageTagMutabilityExclusionFilters: []types.ImageTagMutabilityExclusionFilter{{Filter: aws.String("a b"), FilterType: types.ImageTagMutabilityExclusionFilterTypeWildcard}}})
			return err
		}),
		c("PutImageScanningConfiguration", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.PutImageScanningConfiguration(ctx, &ecr.PutImageScanningConfigurationInput{RepositoryName: nope, ImageScanningConfiguration: &types.ImageScanningConfiguration{}})
			return err
		}),
		// Resource tags.
		c("TagResource", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: aws.String(repoARN + "err/nope"), Tags: tags(1)})
			return err
		}),
		c("TagResource", "an ARN that is no repository's", ip, invalidAt("resourceArn", "Invalid ARN"), wordAWS, func(c *ecr.Client) error {
			_, err := c.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: aws.String("arn:aws:s3:::bucket"), Tags: tags(1)})
			return err
		}),
		c("TagResource", "an ARN of another region", ip, invalidAt("resourceArn", "the ARN 'arn:aws:ecr:eu-west-1:000000000000:repository/err/app' is not of this registry (region us-east-1, registry id '000000000000')"), wordBerth, func(c *ecr.Client) error {
			_, err := c.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: aws.String("arn:aws:ecr:eu-west-1:000000000000:repository/err/app"), Tags: tags(1)})
			return err
		}),
		c("TagResource", "a reserved tag key", "InvalidTagParameterException", invalidAt("tags[0].Key", `"aws:x": the aws: prefix is reserved`), wordBerth, func(c *ecr.Client) error {
			_, err := c.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: aws.String(repoARN + errRepo), Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}})
			return err
		}),
		c("TagResource", "a tag value over 256 characters", "InvalidTagParameterException", invalidAt("tags[0].Value", "longer than 256 characters"), wordBerth, func(c *ecr.Client) error {
			_, err := c.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: aws.String(repoARN + errRepo), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String(strings.Repeat("v", 257))}}})
			return err
		}),
		c("TagResource", "51 tags (the limit is 50)", "TooManyTagsException", invalidAt("tags", "51 tags, at most 50"), wordBerth, func(c *ecr.Client) error {
			_, err := c.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: aws.String(repoARN + errRepo), Tags: tags(51)})
			return err
		}),
		c("UntagResource", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.UntagResource(ctx, &ecr.UntagResourceInput{ResourceArn: aws.String(repoARN + "err/nope"), TagKeys: []string{"k"}})
			return err
		}),
		c("UntagResource", "no tag keys", "InvalidTagParameterException", invalidAt("tagKeys", "is empty"), wordBerth, func(c *ecr.Client) error {
			_, err := c.UntagResource(ctx, &ecr.UntagResourceInput{ResourceArn: aws.String(repoARN + errRepo), TagKeys: []string{}})
			return err
		}),
		c("ListTagsForResource", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: aws.String(repoARN + "err/nope")})
			return err
		}),
		c("ListTagsForResource", "an ARN that is no repository's", ip, invalidAt("resourceArn", "Invalid ARN"), wordAWS, func(c *ecr.Client) error {
			_, err := c.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecr:us-east-1:000000000000:cluster/x")})
			return err
		}),
		// Repository policies.
		c("SetRepositoryPolicy", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: nope, PolicyText: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:BatchDeleteImage"}]}`)})
			return err
		}),
		c("SetRepositoryPolicy", "a policy that would lock the caller out, without force", ip, invalidAt("policyText",
			"The repository policy would prevent you from setting another policy in the future (ecr:SetRepositoryPolicy would be refused to you); set force to set it anyway"), wordBerth, func(c *ecr.Client) error {
			_, err := c.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: repo,
				PolicyText: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:SetRepositoryPolicy"}]}`)})
			return err
		}),
		c("SetRepositoryPolicy", "a policy that is no JSON", ip, invalidAt("policyText", `iam: malformed policy: policy "repository/err/app": not a JSON policy: invalid character 'o' in literal null (expecting 'u')`), wordBerth, func(c *ecr.Client) error {
			_, err := c.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: repo, PolicyText: aws.String("not json")})
			return err
		}),
		c("SetRepositoryPolicy", "an action ECR does not have", ip, invalidAt("policyText", `iam: unknown action: policy "repository/err/app", Statement[0], Action: "ecr:PushImage" names no ecr action (see the service's actions in the AWS Service Authorization Reference)`), wordBerth, func(c *ecr.Client) error {
			_, err := c.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: repo, Force: true,
				PolicyText: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:PushImage"}]}`)})
			return err
		}),
		c("SetRepositoryPolicy", "a policy over 10,240 characters", ip, invalidAt("policyText", "Member must have length less than or equal to 10240"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: repo, Force: true, PolicyText: aws.String(`{"Version":"2012-10-17","Id":"` + strings.Repeat("x", 10240) + `"}`)})
			return err
		}),
		c("GetRepositoryPolicy", "the repository has no policy", "RepositoryPolicyNotFoundException",
			"Repository policy does not exist for the repository with name 'err/app' in the registry with id '000000000000'", wordAWS, func(c *ecr.Client) error {
				_, err := c.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: repo})
				return err
			}),
		c("GetRepositoryPolicy", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: nope})
			return err
		}),
		c("DeleteRepositoryPolicy", "the repository has no policy", "RepositoryPolicyNotFoundException",
			"Repository policy does not exist for the repository with name 'err/app' in the registry with id '000000000000'", wordAWS, func(c *ecr.Client) error {
				_, err := c.DeleteRepositoryPolicy(ctx, &ecr.DeleteRepositoryPolicyInput{RepositoryName: repo})
				return err
			}),
		c("DeleteRepositoryPolicy", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.DeleteRepositoryPolicy(ctx, &ecr.DeleteRepositoryPolicyInput{RepositoryName: nope})
			return err
		}),
		// Lifecycle policies.
		c("PutLifecyclePolicy", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: nope, LifecyclePolicyText: aws.String(policy)})
			return err
		}),
		c("PutLifecyclePolicy", "a policy under 100 characters", ip, invalidAt("lifecyclePolicyText", "Member must have length greater than or equal to 100"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: aws.String(`{"rules":[]}`)})
			return err
		}),
		c("PutLifecyclePolicy", "a rule that does not validate", ip, "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: /rules/0/selection/countNumber: numeric instance is lower than the required minimum (minimum: 1, found: 0)'", wordBerth, func(c *ecr.Client) error {
			_, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: aws.String(strings.Replace(policy, `"countNumber":1`, `"countNumber":0`, 1))})
			return err
		}),
		c("PutLifecyclePolicy", "a request body over 1 MiB", "LimitExceededException", "request body of PutLifecyclePolicy larger than 1048576 bytes", wordBerth, func(c *ecr.Client) error {
			_, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: aws.String(strings.Repeat(" ", 1<<20) + policy)})
			return err
		}),
		c("GetLifecyclePolicy", "the repository has no policy", "LifecyclePolicyNotFoundException",
			"Lifecycle policy does not exist for the repository with name 'err/app' in the registry with id '000000000000'", wordAWS, func(c *ecr.Client) error {
				_, err := c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: repo})
				return err
			}),
		c("GetLifecyclePolicy", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: nope})
			return err
		}),
		c("DeleteLifecyclePolicy", "the repository has no policy", "LifecyclePolicyNotFoundException",
			"Lifecycle policy does not exist for the repository with name 'err/app' in the registry with id '000000000000'", wordAWS, func(c *ecr.Client) error {
				_, err := c.DeleteLifecyclePolicy(ctx, &ecr.DeleteLifecyclePolicyInput{RepositoryName: repo})
				return err
			}),
		c("DeleteLifecyclePolicy", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.DeleteLifecyclePolicy(ctx, &ecr.DeleteLifecyclePolicyInput{RepositoryName: nope})
			return err
		}),
		c("StartLifecyclePolicyPreview", "no policy given and none set", "LifecyclePolicyNotFoundException",
			"Lifecycle policy does not exist for the repository with name 'err/app' in the registry with id '000000000000'", wordAWS, func(c *ecr.Client) error {
				_, err := c.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: repo})
				return err
			}),
		c("StartLifecyclePolicyPreview", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: nope, LifecyclePolicyText: aws.String(policy)})
			return err
		}),
		c("StartLifecyclePolicyPreview", "a policy under 100 characters", ip, invalidAt("lifecyclePolicyText", "Member must have length greater than or equal to 100"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: repo, LifecyclePolicyText: aws.String(`{"rules":[]}`)})
			return err
		}),
		c("GetLifecyclePolicyPreview", "no preview was started", "LifecyclePolicyPreviewNotFoundException",
			"Lifecycle policy preview does not exist for the repository with name 'err/app' in the registry with id '000000000000'", wordBerth, func(c *ecr.Client) error {
				_, err := c.GetLifecyclePolicyPreview(ctx, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: repo})
				return err
			}),
		c("GetLifecyclePolicyPreview", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.GetLifecyclePolicyPreview(ctx, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: nope})
			return err
		}),
		c("GetLifecyclePolicyPreview", "a tagStatus outside the enum", ip, invalidAt("filter.tagStatus", "Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.GetLifecyclePolicyPreview(ctx, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: aws.String("err/immutable"), Filter: &types.LifecyclePolicyPreviewFilter{TagStatus: "SOME"}})
			return err
		}),
		// Images.
		c("ListImages", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: nope})
			return err
		}),
		c("ListImages", "a tagStatus outside the enum", ip, invalidAt("filter.tagStatus", "Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: repo, Filter: &types.ListImagesFilter{TagStatus: "SOME"}})
			return err
		}),
		c("ListImages", "maxResults over 1000", ip, invalidAt("maxResults", "Member must have value less than or equal to 1000"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: repo, MaxResults: aws.Int32(1001)})
			return err
		}),
		{op: "ListImages", condition: "an explicit deny in the repository's policy", who: "denied", code: "AccessDeniedException", source: wordIAM,
			message: "User: arn:aws:iam::000000000000:user/denied is not authorized to perform: ecr:ListImages on resource: " + repoARN + "err/guarded with an explicit deny in a resource-based policy (explicitly denied by repository policy \"repository/err/guarded\" statement 0 (Sid \"NoListing\"))",
			call: func(c *ecr.Client) error {
				_, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("err/guarded")})
				return err
			}},
		c("DescribeImages", "an image that does not exist", "ImageNotFoundException",
			"The image with imageId {imageDigest:'null', imageTag:'nope'} does not exist within the repository with name 'err/app' in the registry with id '000000000000'", wordAWS, func(c *ecr.Client) error {
				_, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("nope")}}})
				return err
			}),
		c("DescribeImages", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: nope})
			return err
		}),
		c("DescribeImages", "imageIds with a filter", ip, invalidAt("imageIds", "maxResults, nextToken and filter cannot be used with imageIds"), wordBerth, func(c *ecr.Client) error {
			_, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: repo, ImageIds: v1, Filter: &types.DescribeImagesFilter{TagStatus: types.TagStatusTagged}})
			return err
		}),
		c("DescribeImages", "an image digest outside the pattern", ip, "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'", wordBerth, func(c *ecr.Client) error {
			_, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String("sha256:xyz")}}})
			return err
		}),
		// The archive tier's operation: none of these rows changes the
		// image (the table's end checks err/app still lists it ACTIVE).
		c("UpdateImageStorageClass", "an image that does not exist", "ImageNotFoundException",
			"The image with imageId {imageDigest:'null', imageTag:'nope'} does not exist within the repository with name 'err/app' in the registry with id '000000000000'", wordAWS, func(c *ecr.Client) error {
				_, err := c.UpdateImageStorageClass(ctx, &ecr.UpdateImageStorageClassInput{RepositoryName: repo, ImageId: &types.ImageIdentifier{ImageTag: aws.String("nope")}, TargetStorageClass: types.TargetStorageClassArchive})
				return err
			}),
		c("UpdateImageStorageClass", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.UpdateImageStorageClass(ctx, &ecr.UpdateImageStorageClassInput{RepositoryName: nope, ImageId: &v1[0], TargetStorageClass: types.TargetStorageClassArchive})
			return err
		}),
		c("UpdateImageStorageClass", "a targetStorageClass outside the enum", ip, invalidAt("targetStorageClass", "Member must satisfy enum value set: [STANDARD, ARCHIVE]"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.UpdateImageStorageClass(ctx, &ecr.UpdateImageStorageClassInput{RepositoryName: repo, ImageId: &v1[0], TargetStorageClass: "GLACIER"})
			return err
		}),
		c("UpdateImageStorageClass", "a restore of an image that is not archived", "ImageStorageClassUpdateNotSupportedException",
			"The requested image storage class update is not supported. The image with digest '"+f.manifest+"' is not archived.", wordBerth, func(c *ecr.Client) error {
				_, err := c.UpdateImageStorageClass(ctx, &ecr.UpdateImageStorageClassInput{RepositoryName: repo, ImageId: &v1[0], TargetStorageClass: types.TargetStorageClassStandard})
				return err
			}),
		c("BatchGetImage", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: nope, ImageIds: v1})
			return err
		}),
		c("BatchGetImage", "101 imageIds", ip, invalidAt("imageIds", "Member must have length less than or equal to 100"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: repo, ImageIds: ids101})
			return err
		}),
		c("BatchGetImage", "no imageIds", ip, invalidAt("imageIds", "Member must not be null"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{}})
			return err
		}),
		c("BatchDeleteImage", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: nope, ImageIds: v1})
			return err
		}),
		c("BatchDeleteImage", "101 imageIds", ip, invalidAt("imageIds", "Member must have length less than or equal to 100"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: repo, ImageIds: ids101})
			return err
		}),
		c("PutImage", "the same image and tag again", "ImageAlreadyExistsException",
			"Image with digest '"+f.manifest+"' and tag 'v1' already exists in the repository with name 'err/app' in registry with id '000000000000'", wordAWS, func(c *ecr.Client) error {
				_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: repo, ImageManifest: aws.String(f.manifestJSON), ImageTag: aws.String("v1")})
				return err
			}),
		c("PutImage", "an immutable tag moved", "ImageTagAlreadyExistsException",
			"The image tag 'v1' already exists in the 'err/immutable' repository and cannot be overwritten because the repository is immutable.", wordAWS, func(c *ecr.Client) error {
				other := strings.Replace(f.manifestJSON, `"schemaVersion":2`, `"schemaVersion":2,"annotations":{"v":"2"}`, 1)
				_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("err/immutable"), ImageManifest: aws.String(other), ImageTag: aws.String("v1")})
				return err
			}),
		c("PutImage", "a digest that is not the manifest's", "ImageDigestDoesNotMatchException",
			"The specified image digest 'sha256:"+strings.Repeat("0", 64)+"' does not match the digest '"+f.manifest+"' that Amazon ECR calculated for the image", wordBerth, func(c *ecr.Client) error {
				_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: repo, ImageManifest: aws.String(f.manifestJSON), ImageDigest: aws.String("sha256:" + strings.Repeat("0", 64))})
				return err
			}),
		c("PutImage", "a layer the repository does not hold", "LayersNotFoundException",
			"Layers with digests '[sha256:"+strings.Repeat("2", 64)+"]' required for pushing image into repository with name 'err/app' in the registry with id '000000000000' do not exist", wordBerth, func(c *ecr.Client) error {
				m := strings.Replace(f.manifestJSON, f.layer, "sha256:"+strings.Repeat("2", 64), 1)
				_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: repo, ImageManifest: aws.String(m), ImageTag: aws.String("v2")})
				return err
			}),
		c("PutImage", "an index whose child manifest the repository does not hold", "ReferencedImagesNotFoundException",
			"Images with digests '[sha256:"+strings.Repeat("1", 64)+"]' referenced by the image index do not exist in the repository with name 'err/app' in the registry with id '000000000000'", wordBerth, func(c *ecr.Client) error {
				idx := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("1", 64) + `","size":2}]}`
				_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: repo, ImageManifest: aws.String(idx), ImageTag: aws.String("idx")})
				return err
			}),
		c("PutImage", "a manifest without a media type, none given", ip, invalidAt("imageManifestMediaType", "image manifest mediatype not provided in manifest or parameter"), wordAWS, func(c *ecr.Client) error {
			m := strings.Replace(f.manifestJSON, `"mediaType":"application/vnd.oci.image.manifest.v1+json",`, "", 1)
			_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: repo, ImageManifest: aws.String(m), ImageTag: aws.String("v3")})
			return err
		}),
		c("PutImage", "imageManifestMediaType not the manifest's", ip, invalidAt("imageManifest",
			`manifest invalid: mediaType field "application/vnd.oci.image.manifest.v1+json" does not match Content-Type "application/vnd.docker.distribution.manifest.v2+json"`), wordBerth, func(c *ecr.Client) error {
			_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: repo, ImageManifest: aws.String(f.manifestJSON), ImageTag: aws.String("v4"),
				ImageManifestMediaType: aws.String("application/vnd.docker.distribution.manifest.v2+json")})
			return err
		}),
		c("PutImage", "a manifest that is no JSON", ip, invalidAt("imageManifest", "manifest invalid: not well-formed JSON: invalid character 'o' in literal null (expecting 'u')"), wordBerth, func(c *ecr.Client) error {
			_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: repo, ImageManifest: aws.String("not json"), ImageManifestMediaType: aws.String("application/vnd.oci.image.manifest.v1+json")})
			return err
		}),
		c("PutImage", "a tag outside the pattern", ip, invalidAt("imageTag", "must satisfy regular expression '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}'"), wordBerth, func(c *ecr.Client) error {
			_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: repo, ImageManifest: aws.String(f.manifestJSON), ImageTag: aws.String("-bad")})
			return err
		}),
		c("PutImage", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: nope, ImageManifest: aws.String(f.manifestJSON), ImageTag: aws.String("v1")})
			return err
		}),

		c("ListImageReferrers", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.ListImageReferrers(ctx, &ecr.ListImageReferrersInput{RepositoryName: nope, SubjectId: &types.SubjectIdentifier{ImageDigest: aws.String(f.manifest)}})
			return err
		}),
		c("ListImageReferrers", "a subject digest outside the pattern", ip, invalidAt("subjectId.imageDigest", "Member must satisfy regular expression pattern: [a-zA-Z0-9-_+.]+:[a-fA-F0-9]+"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.ListImageReferrers(ctx, &ecr.ListImageReferrersInput{RepositoryName: repo, SubjectId: &types.SubjectIdentifier{ImageDigest: aws.String("nope")}})
			return err
		}),
		c("ListImageReferrers", "maxResults over 50", ip, invalidAt("maxResults", "Member must have value less than or equal to 50"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.ListImageReferrers(ctx, &ecr.ListImageReferrersInput{RepositoryName: repo, SubjectId: &types.SubjectIdentifier{ImageDigest: aws.String(f.manifest)}, MaxResults: aws.Int32(51)})
			return err
		}),
		c("ListImageReferrers", "an artifactStatus outside the enum", ip, invalidAt("filter.artifactStatus", "Member must satisfy enum value set: [ACTIVE, ARCHIVED, ACTIVATING, ANY]"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.ListImageReferrers(ctx, &ecr.ListImageReferrersInput{RepositoryName: repo, SubjectId: &types.SubjectIdentifier{ImageDigest: aws.String(f.manifest)},
				Filter: &types.ListImageReferrersFilter{ArtifactStatus: "GONE"}})
			return err
		}),
		// Layers.
		c("BatchCheckLayerAvailability", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.BatchCheckLayerAvailability(ctx, &ecr.BatchCheckLayerAvailabilityInput{RepositoryName: nope, LayerDigests: []string{f.layer}})
			return err
		}),
		c("BatchCheckLayerAvailability", "no layer digests", ip, invalidAt("layerDigests", "Member must not be null"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.BatchCheckLayerAvailability(ctx, &ecr.BatchCheckLayerAvailabilityInput{RepositoryName: repo, LayerDigests: []string{}})
			return err
		}),
		c("GetDownloadUrlForLayer", "a layer the repository does not hold", "LayersNotFoundException",
			"The image layer 'sha256:"+strings.Repeat("3", 64)+"' does not exist in the repository with name 'err/app' in the registry with id '000000000000'", wordBerth, func(c *ecr.Client) error {
				_, err := c.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: repo, LayerDigest: aws.String("sha256:" + strings.Repeat("3", 64))})
				return err
			}),
		c("GetDownloadUrlForLayer", "a digest outside the pattern", ip, invalidAt("layerDigest", "Member must satisfy regular expression pattern: [a-zA-Z0-9-_+.]+:[a-fA-F0-9]+"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: repo, LayerDigest: aws.String("nope")})
			return err
		}),
		c("GetDownloadUrlForLayer", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: nope, LayerDigest: aws.String(f.layer)})
			return err
		}),
		c("InitiateLayerUpload", "the repository does not exist (no create on push)", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: nope})
			return err
		}),
		c("UploadLayerPart", "an upload that does not exist", "UploadNotFoundException",
			"The upload with id '00000000-0000-0000-0000-000000000000' does not exist in the repository with name 'err/app' in the registry with id '000000000000'", wordBerth, func(c *ecr.Client) error {
				_, err := c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: repo, UploadId: zeroUpload, PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(0), LayerPartBlob: []byte{1}})
				return err
			}),
		c("UploadLayerPart", "a part that does not follow the last", "InvalidLayerPartException",
			"The layer part covers bytes 0-0 with 1 bytes; the upload with id '"+aws.ToString(partUpload.UploadId)+"' has 10 bytes, so the next part starts at byte 10", wordBerth, func(c *ecr.Client) error {
				_, err := c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: repo, UploadId: partUpload.UploadId, PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(0), LayerPartBlob: []byte{1}})
				var lp *types.InvalidLayerPartException
				if errors.As(err, &lp) && aws.ToInt64(lp.LastValidByteReceived) != 9 {
					return fmt.Errorf("lastValidByteReceived %d, want 9", aws.ToInt64(lp.LastValidByteReceived))
				}
				return err
			}),
		c("UploadLayerPart", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: nope, UploadId: zeroUpload, PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(0), LayerPartBlob: []byte{1}})
			return err
		}),
		c("CompleteLayerUpload", "an upload that does not exist", "UploadNotFoundException",
			"The upload with id '00000000-0000-0000-0000-000000000000' does not exist in the repository with name 'err/app' in the registry with id '000000000000'", wordBerth, func(c *ecr.Client) error {
				_, err := c.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: repo, UploadId: zeroUpload, LayerDigests: []string{f.layer}})
				return err
			}),
		c("CompleteLayerUpload", "an upload without parts", "EmptyUploadException",
			"The upload with id '"+aws.ToString(emptyUpload.UploadId)+"' in the repository with name 'err/app' in the registry with id '000000000000' does not contain any layer parts", wordBerth, func(c *ecr.Client) error {
				_, err := c.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: repo, UploadId: emptyUpload.UploadId, LayerDigests: []string{f.layer}})
				return err
			}),
		c("CompleteLayerUpload", "a layer the repository holds", "LayerAlreadyExistsException",
			"The layer '"+f.layer+"' already exists in the repository with name 'err/app' in the registry with id '000000000000'", wordBerth, func(c *ecr.Client) error {
				up, err := c.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: repo})
				if err != nil {
					return err
				}
				if _, err := c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: repo, UploadId: up.UploadId, PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(0), LayerPartBlob: []byte{1}}); err != nil {
					return err
				}
				_, err = c.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: repo, UploadId: up.UploadId, LayerDigests: []string{f.layer}})
				return err
			}),
		c("CompleteLayerUpload", "a digest that is not the content's", "InvalidLayerException",
			"The layer digest calculated for the upload with id '"+aws.ToString(partUpload.UploadId)+"' does not match the digest 'sha256:"+strings.Repeat("4", 64)+"' specified", wordBerth, func(c *ecr.Client) error {
				_, err := c.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: repo, UploadId: partUpload.UploadId, LayerDigests: []string{"sha256:" + strings.Repeat("4", 64)}})
				return err
			}),
		c("InitiateLayerUpload", "a repository whose key is disabled", "KmsException",
			`The KMS key of the repository with name 'err/locked' in the registry with id '000000000000' cannot be used: encryption key unavailable: upload into err/locked: crypt: key disabled: "off-key"`, wordBerth, func(c *ecr.Client) error {
				_, err := c.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: aws.String("err/locked")})
				return err
			}),
		c("CreateRepository", "a kmsKey no key provider holds", "KmsException",
			`The KMS key of the repository with name 'err/x' in the registry with id '000000000000' cannot be used: encryption key "no-such-key": crypt: key not found: "no-such-key"`, wordBerth, func(c *ecr.Client) error {
				_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("err/x"), EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms, KmsKey: aws.String("no-such-key")}})
				return err
			}),
		c("CompleteLayerUpload", "two layer digests (an upload is one layer)", ip, unsupported("CompleteLayerUpload", "layerDigests", "an upload is one layer, so Berth takes exactly one digest"), wordBerth, func(c *ecr.Client) error {
			_, err := c.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: repo, UploadId: zeroUpload, LayerDigests: []string{f.layer, f.config}})
			return err
		}),
		c("CompleteLayerUpload", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: nope, UploadId: zeroUpload, LayerDigests: []string{f.layer}})
			return err
		}),
		// Creation templates.
		c("CreateRepositoryCreationTemplate", "the prefix has a template", "TemplateAlreadyExistsException",
			"The repository creation template with prefix 'err-tpl' already exists in the registry with id '000000000000'", wordBerth, func(c *ecr.Client) error {
				_, err := c.CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("err-tpl"), AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush}})
				return err
			}),
		c("CreateRepositoryCreationTemplate", "no appliedFor", ip, invalidAt("appliedFor", "needs at least one of CREATE_ON_PUSH, PULL_THROUGH_CACHE, REPLICATION"), wordBerth, func(c *ecr.Client) error {
			_, err := c.CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("err-x"), AppliedFor: []types.RCTAppliedFor{}})
			return err
		}),
		c("CreateRepositoryCreationTemplate", "a customRoleArn (Berth has no roles)", ip, invalidAt("customRoleArn", "Berth has no IAM roles to assume; a repository created from a template is authorized as the caller who causes it (leave customRoleArn out)"), wordBerth, func(c *ecr.Client) error {
			_, err := c.CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("err-x"), AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush},
				CustomRoleArn: aws.String("arn:aws:iam::000000000000:role/x")})
			return err
		}),
		c("CreateRepositoryCreationTemplate", "a description over 256 characters", ip, invalidAt("description", "is 257 characters, at most 256"), wordBerth, func(c *ecr.Client) error {
			_, err := c.CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("err-x"), AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush},
				Description: aws.String(strings.Repeat("d", 257))})
			return err
		}),
		c("CreateRepositoryCreationTemplate", "KMS_DSSE (no dual-layer encryption)", ip, unsupported("a repository creation template", "encryptionConfiguration.encryptionType",
			"Berth has no dual-layer encryption (KMS_DSSE): it encrypts each blob once, under a data key that the repository's key wraps; use KMS"), wordBerth, func(c *ecr.Client) error {
			_, err := c.CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("err-x"), AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush},
				EncryptionConfiguration: &types.EncryptionConfigurationForRepositoryCreationTemplate{EncryptionType: types.EncryptionTypeKmsDsse}})
			return err
		}),
		c("UpdateRepositoryCreationTemplate", "no template has the prefix", "TemplateNotFoundException",
			"The repository creation template with prefix 'err-nope' does not exist in the registry with id '000000000000'", wordBerth, func(c *ecr.Client) error {
				_, err := c.UpdateRepositoryCreationTemplate(ctx, &ecr.UpdateRepositoryCreationTemplateInput{Prefix: aws.String("err-nope"), AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush}})
				return err
			}),
		c("UpdateRepositoryCreationTemplate", "an imageTagMutability outside the enum", ip, invalidAt("imageTagMutability", "Member must satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.UpdateRepositoryCreationTemplate(ctx, &ecr.UpdateRepositoryCreationTemplateInput{Prefix: aws.String("err-tpl"), ImageTagMutability: "NEVER"})
			return err
		}),
		c("DeleteRepositoryCreationTemplate", "no template has the prefix", "TemplateNotFoundException",
			"The repository creation template with prefix 'err-nope' does not exist in the registry with id '000000000000'", wordBerth, func(c *ecr.Client) error {
				_, err := c.DeleteRepositoryCreationTemplate(ctx, &ecr.DeleteRepositoryCreationTemplateInput{Prefix: aws.String("err-nope")})
				return err
			}),
		c("DescribeRepositoryCreationTemplates", "maxResults over 1000", ip, invalidAt("maxResults", "Member must have value less than or equal to 1000"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.DescribeRepositoryCreationTemplates(ctx, &ecr.DescribeRepositoryCreationTemplatesInput{MaxResults: aws.Int32(1001)})
			return err
		}),
		// Pull-through cache rules.
		c("CreatePullThroughCacheRule", "the prefix has a rule", "PullThroughCacheRuleAlreadyExistsException",
			"A pull through cache rule with prefix 'err-hub' already exists in the registry with id '000000000000'", wordBerth, func(c *ecr.Client) error {
				_, err := c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("err-hub"), UpstreamRegistryUrl: aws.String("registry.invalid")})
				return err
			}),
		c("CreatePullThroughCacheRule", "a 51st rule (the limit is 50)", "LimitExceededException",
			"a registry has at most 50 pull-through cache rules", wordBerth, func(c *ecr.Client) error {
				// err-hub is the first; 49 more, then one too many.
				for i := range 50 {
					_, err := c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String(fmt.Sprintf("lim%02d", i)),
						UpstreamRegistryUrl: aws.String("registry.invalid")})
					if err != nil {
						if i < 49 {
							return fmt.Errorf("rule %d of 50: %w", i+2, err)
						}
						return err
					}
				}
				return nil
			}),
		c("DescribePullThroughCacheRules", "a prefix without a rule", "PullThroughCacheRuleNotFoundException",
			"The pull through cache rule with prefix 'err-nope' does not exist in the registry with id '000000000000'", wordBerth, func(c *ecr.Client) error {
				_, err := c.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{"err-nope"}})
				return err
			}),
		c("CreatePullThroughCacheRule", "a credentialArn naming no stored secret", "SecretNotFoundException",
			"The ARN of the secret specified in the pull through cache rule was not found. Update the pull through cache rule with a valid secret ARN and try again.", wordBerth, func(c *ecr.Client) error {
				_, err := c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("err-x"), UpstreamRegistryUrl: aws.String("registry.invalid"),
					CredentialArn: aws.String(secretARN + "ecr-pullthroughcache/err-nope")})
				return err
			}),
		c("CreatePullThroughCacheRule", "a credentialArn whose secret's key is disabled", "UnableToDecryptSecretValueException",
			"The secret is accessible but is unable to be decrypted. Verify the resource permisisons and try again.", wordBerth, func(c *ecr.Client) error {
				_, err := c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("err-x"), UpstreamRegistryUrl: aws.String("registry.invalid"),
					CredentialArn: aws.String(secretARN + offSecret)})
				return err
			}),
		c("CreatePullThroughCacheRule", "a credentialArn outside ecr-pullthroughcache/", ip,
			"Invalid parameter at 'credentialArn' failed to satisfy constraint: 'must be the ARN of a Secrets Manager secret whose name starts with ecr-pullthroughcache/' (got '"+secretARN+"other/err-ok')", wordBerth, func(c *ecr.Client) error {
				_, err := c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("err-x"), UpstreamRegistryUrl: aws.String("registry.invalid"),
					CredentialArn: aws.String(secretARN + "other/err-ok")})
				return err
			}),
		c("CreatePullThroughCacheRule", "a customRoleArn (Berth has no roles)", ip,
			"customRoleArn is not supported: Berth has no IAM roles to assume for an upstream registry; store the upstream's credentials as a secret (registryd secrets put) and name it in credentialArn", wordBerth, func(c *ecr.Client) error {
				_, err := c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("err-x"), UpstreamRegistryUrl: aws.String("registry.invalid"),
					CustomRoleArn: aws.String("arn:aws:iam::000000000000:role/x")})
				return err
			}),
		c("UpdatePullThroughCacheRule", "a prefix without a rule", "PullThroughCacheRuleNotFoundException",
			"The pull through cache rule with prefix 'err-nope' does not exist in the registry with id '000000000000'", wordBerth, func(c *ecr.Client) error {
				_, err := c.UpdatePullThroughCacheRule(ctx, &ecr.UpdatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("err-nope"), CredentialArn: aws.String(secretARN + okSecret)})
				return err
			}),
		c("UpdatePullThroughCacheRule", "no credentialArn", ip,
			"credentialArn is required: it is what UpdatePullThroughCacheRule changes (customRoleArn is not supported)", wordBerth, func(c *ecr.Client) error {
				_, err := c.UpdatePullThroughCacheRule(ctx, &ecr.UpdatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("err-hub")})
				return err
			}),
		ecrErrorCase{op: "UpdatePullThroughCacheRule", condition: "a caller denied the secret (secretsmanager:GetSecretValue)", who: "denied",
			code: "UnableToAccessSecretException", source: wordBerth,
			message: "The secret is unable to be accessed. Verify the resource permissions for the secret and try again.",
			call: func(c *ecr.Client) error {
				_, err := c.UpdatePullThroughCacheRule(ctx, &ecr.UpdatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("err-hub"), CredentialArn: aws.String(secretARN + okSecret)})
				return err
			}},
		c("ValidatePullThroughCacheRule", "a prefix without a rule", "PullThroughCacheRuleNotFoundException",
			"The pull through cache rule with prefix 'err-nope' does not exist in the registry with id '000000000000'", wordBerth, func(c *ecr.Client) error {
				_, err := c.ValidatePullThroughCacheRule(ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("err-nope")})
				return err
			}),
		c("PutImage", "a repository a pull-through cache fills", ip, invalidAt("repositoryName", cacheRepo+" is filled from its upstream by the pull-through cache rule of prefix err-hub; push to a repository outside the rule's prefix"), wordBerth, func(c *ecr.Client) error {
			_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String(cacheRepo), ImageManifest: aws.String(f.manifestJSON), ImageTag: aws.String("v2")})
			return err
		}),
		c("InitiateLayerUpload", "a repository a pull-through cache fills", ip, invalidAt("repositoryName", cacheRepo+" is filled from its upstream by the pull-through cache rule of prefix err-hub; push to a repository outside the rule's prefix"), wordBerth, func(c *ecr.Client) error {
			_, err := c.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: aws.String(cacheRepo)})
			return err
		}),
		c("DeletePullThroughCacheRule", "a prefix without a rule", "PullThroughCacheRuleNotFoundException",
			"The pull through cache rule with prefix 'err-nope' does not exist in the registry with id '000000000000'", wordBerth, func(c *ecr.Client) error {
				_, err := c.DeletePullThroughCacheRule(ctx, &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("err-nope")})
				return err
			}),
		// Login.
		c("GetAuthorizationToken", "another registry's ID", ip, invalidAt("registryId", "the registry with id '123456789012' is not this registry ('000000000000'): Berth serves one registry"), wordBerth, func(c *ecr.Client) error {
			_, err := c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{RegistryIds: []string{"123456789012"}})
			return err
		}),
		c("GetAuthorizationToken", "11 registry IDs", ip, invalidAt("registryIds", "Member must have length less than or equal to 10"), wordConstraint, func(c *ecr.Client) error {
			ids := make([]string, 11)
			for i := range ids {
				ids[i] = acct
			}
			_, err := c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{RegistryIds: ids})
			return err
		}),
		// The registry policy.
		c("PutRegistryPolicy", "an action ECR does not enforce in a registry policy", ip, invalidAt("policyText",
			`iam: unknown action: policy "registry", Statement[0], Action: a registry policy names ecr:ReplicateImage, ecr:BatchImportUpstreamImage, ecr:CreateRepository (or ecr:*) only, as ECR enforces`), wordBerth, func(c *ecr.Client) error {
			_, err := c.PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:PutImage","Resource":"*"}]}`)})
			return err
		}),
		c("GetRegistryPolicy", "the registry has no policy", "RegistryPolicyNotFoundException",
			"Registry policy does not exist in the registry with id '000000000000'", wordAWS, func(c *ecr.Client) error {
				_, err := c.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{})
				return err
			}),
		c("DeleteRegistryPolicy", "the registry has no policy", "RegistryPolicyNotFoundException",
			"Registry policy does not exist in the registry with id '000000000000'", wordAWS, func(c *ecr.Client) error {
				_, err := c.DeleteRegistryPolicy(ctx, &ecr.DeleteRegistryPolicyInput{})
				return err
			}),
		c("DescribeRegistry", "a parameter Berth does not know", ip, unsupported("DescribeRegistry", "registryId", "it is not one Berth knows (docs/ecr-api.md lists the parameters of each operation)"), wordBerth, func(c *ecr.Client) error {
			_, err := c.DescribeRegistry(ctx, &ecr.DescribeRegistryInput{}, withExtraParameter("registryId", acct))
			return err
		}),
		// Scanning: the scan rows run in this order (never scanned, then
		// two manual scans).
		c("DescribeImageReplicationStatus", "the image does not exist", "ImageNotFoundException", "The image with imageId {imageDigest:'null', imageTag:'nope'} does not exist within the repository with name 'err/app' in the registry with id '000000000000'", wordAWS, func(c *ecr.Client) error {
			_, err := c.DescribeImageReplicationStatus(ctx, &ecr.DescribeImageReplicationStatusInput{RepositoryName: repo, ImageId: &types.ImageIdentifier{ImageTag: aws.String("nope")}})
			return err
		}),
		c("DescribeImageReplicationStatus", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.DescribeImageReplicationStatus(ctx, &ecr.DescribeImageReplicationStatusInput{RepositoryName: nope, ImageId: &types.ImageIdentifier{ImageTag: aws.String("v1")}})
			return err
		}),
		c("PutReplicationConfiguration", "a destination with no endpoint", ip, "Invalid parameter: rules[0]: destination 111122223333/eu-west-1 (registryId 111122223333, region eu-west-1) has no endpoint configured: name it in the replication destinations of the configuration first", wordBerth, func(c *ecr.Client) error {
			_, err := c.PutReplicationConfiguration(ctx, &ecr.PutReplicationConfigurationInput{ReplicationConfiguration: &types.ReplicationConfiguration{Rules: []types.ReplicationRule{
				{Destinations: []types.ReplicationDestination{{Region: aws.String("eu-west-1"), RegistryId: aws.String("111122223333")}}}}}})
			return err
		}),
		c("PutReplicationConfiguration", "a filter of another type", ip, invalidAt("replicationConfiguration.rules.1.repositoryFilters.1.filterType", "Member must satisfy enum value set: [PREFIX_MATCH]"), wordAWS, func(c *ecr.Client) error {
			_, err := c.PutReplicationConfiguration(ctx, &ecr.PutReplicationConfigurationInput{ReplicationConfiguration: &types.ReplicationConfiguration{Rules: []types.ReplicationRule{
				{Destinations: []types.ReplicationDestination{{Region: aws.String("eu-west-1"), RegistryId: aws.String("111122223333")}},
					RepositoryFilters: []types.RepositoryFilter{{Filter: aws.String("prod"), FilterType: "WILDCARD"}}}}}})
			return err
		}),
		c("DescribeImageScanFindings", "the image was never scanned", "ScanNotFoundException", "Image scan does not exist for the image with imageId {imageDigest:'"+f.manifest+"', imageTag:'v1'} in the repository with name 'err/app' in the registry with id '000000000000'", wordBerth, func(c *ecr.Client) error {
			_, err := c.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{RepositoryName: repo, ImageId: &types.ImageIdentifier{ImageTag: aws.String("v1")}})
			return err
		}),
		c("DescribeImageScanFindings", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{RepositoryName: nope, ImageId: &types.ImageIdentifier{ImageTag: aws.String("v1")}})
			return err
		}),
		c("DescribeImageScanFindings", "the image does not exist", "ImageNotFoundException", "The image with imageId {imageDigest:'null', imageTag:'nope'} does not exist within the repository with name 'err/app' in the registry with id '000000000000'", wordAWS, func(c *ecr.Client) error {
			_, err := c.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{RepositoryName: repo, ImageId: &types.ImageIdentifier{ImageTag: aws.String("nope")}})
			return err
		}),
		c("DescribeImageScanFindings", "maxResults over 1000", ip, invalidAt("maxResults", "Member must have value less than or equal to 1000"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{RepositoryName: repo, ImageId: &types.ImageIdentifier{ImageTag: aws.String("v1")}, MaxResults: aws.Int32(1001)})
			return err
		}),
		c("StartImageScan", "the repository does not exist", rnf, notFound("err/nope"), wordAWS, func(c *ecr.Client) error {
			_, err := c.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: nope, ImageId: &types.ImageIdentifier{ImageTag: aws.String("v1")}})
			return err
		}),
		c("StartImageScan", "the image does not exist", "ImageNotFoundException", "The image with imageId {imageDigest:'null', imageTag:'nope'} does not exist within the repository with name 'err/app' in the registry with id '000000000000'", wordAWS, func(c *ecr.Client) error {
			_, err := c.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: repo, ImageId: &types.ImageIdentifier{ImageTag: aws.String("nope")}})
			return err
		}),
		c("StartImageScan", "a second manual scan within 24 hours", "LimitExceededException", scanLimit, wordBerth, func(c *ecr.Client) error {
			id := &types.ImageIdentifier{ImageTag: aws.String("v1")}
			if _, err := c.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: repo, ImageId: id}); err != nil {
				return fmt.Errorf("the first manual scan: %w", err)
			}
			_, err := c.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: repo, ImageId: id})
			return err
		}),
		c("PutRegistryScanningConfiguration", "CONTINUOUS_SCAN with BASIC", ip, continuousBasic, wordBerth, func(c *ecr.Client) error {
			_, err := c.PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{ScanType: types.ScanTypeBasic,
				Rules: []types.RegistryScanningRule{{ScanFrequency: types.ScanFrequencyContinuousScan,
					RepositoryFilters: []types.ScanningRepositoryFilter{{Filter: aws.String("*"), FilterType: types.ScanningRepositoryFilterTypeWildcard}}}}})
			return err
		}),
		c("PutRegistryScanningConfiguration", "an unknown scan type", ip, unknownScanType, wordConstraint, func(c *ecr.Client) error {
			_, err := c.PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{ScanType: "DEEP"})
			return err
		}),
		c("GetRegistryScanningConfiguration", "a parameter Berth does not know", ip, unsupported("GetRegistryScanningConfiguration", "registryId", "it is not one Berth knows (docs/ecr-api.md lists the parameters of each operation)"), wordBerth, func(c *ecr.Client) error {
			_, err := c.GetRegistryScanningConfiguration(ctx, &ecr.GetRegistryScanningConfigurationInput{}, withExtraParameter("registryId", acct))
			return err
		}),
		c("BatchGetRepositoryScanningConfiguration", "26 names (the limit is 25)", ip, invalidAt("repositoryNames", "Member must have length less than or equal to 25"), wordConstraint, func(c *ecr.Client) error {
			names := make([]string, 26)
			for i := range names {
				names[i] = fmt.Sprintf("err/r%d", i)
			}
			_, err := c.BatchGetRepositoryScanningConfiguration(ctx, &ecr.BatchGetRepositoryScanningConfigurationInput{RepositoryNames: names})
			return err
		}),
		// Account settings.
		c("GetAccountSetting", "BASIC_SCAN_TYPE_VERSION (Berth's own scanner)", ip, invalidAt("name", "BASIC_SCAN_TYPE_VERSION: Berth's basic scanning is its own offline scanner, neither AWS_NATIVE nor CLAIR, so it has no basic scan type to read or choose"), wordBerth, func(c *ecr.Client) error {
			_, err := c.GetAccountSetting(ctx, &ecr.GetAccountSettingInput{Name: aws.String("BASIC_SCAN_TYPE_VERSION")})
			return err
		}),
		c("GetAccountSetting", "a name that is no setting", ip, invalidAt("name", `"NOPE" is not an account setting (want REGISTRY_POLICY_SCOPE or BLOB_MOUNTING)`), wordBerth, func(c *ecr.Client) error {
			_, err := c.GetAccountSetting(ctx, &ecr.GetAccountSettingInput{Name: aws.String("NOPE")})
			return err
		}),
		c("GetAccountSetting", "a name over 64 characters", ip, invalidAt("name", "Member must have length less than or equal to 64"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.GetAccountSetting(ctx, &ecr.GetAccountSettingInput{Name: aws.String(strings.Repeat("N", 65))})
			return err
		}),
		c("PutAccountSetting", "a value the setting does not take", ip, invalidAt("value", `"V3" of REGISTRY_POLICY_SCOPE (want V1 or V2)`), wordBerth, func(c *ecr.Client) error {
			_, err := c.PutAccountSetting(ctx, &ecr.PutAccountSettingInput{Name: aws.String("REGISTRY_POLICY_SCOPE"), Value: aws.String("V3")})
			return err
		}),
		c("PutAccountSetting", "BASIC_SCAN_TYPE_VERSION (Berth's own scanner)", ip, invalidAt("name", "BASIC_SCAN_TYPE_VERSION: Berth's basic scanning is its own offline scanner, neither AWS_NATIVE nor CLAIR, so it has no basic scan type to read or choose"), wordBerth, func(c *ecr.Client) error {
			_, err := c.PutAccountSetting(ctx, &ecr.PutAccountSettingInput{Name: aws.String("BASIC_SCAN_TYPE_VERSION"), Value: aws.String("AWS_NATIVE")})
			return err
		}),
		c("PutAccountSetting", "an empty value", ip, invalidAt("value", "Member must not be null"), wordConstraint, func(c *ecr.Client) error {
			_, err := c.PutAccountSetting(ctx, &ecr.PutAccountSettingInput{Name: aws.String("BLOB_MOUNTING"), Value: aws.String("")})
			return err
		}),
	}
	return rows
}

// TestECRErrorsServer: when the registry cannot serve (its audit log's
// disk is full, so no decision can be recorded), every operation answers
// ServerException (HTTP 503, retryable): the table's server row of each
// operation. AWS publishes no message for it; Berth's says to retry.
func TestECRErrorsServer(t *testing.T) {
	f := newErrFixture(t)
	f.stop()
	// The daemon runs in this process (cli.Serve), on internal/faultfs:
	// the audit log's own disk fills up (its writes fail with ENOSPC; the
	// store's other files write on). No root, no tmpfs.
	disk := faultfs.New(vfs.Default, 1<<40)
	auditDir := filepath.Join(t.TempDir(), "audit")
	audit := func(c *cli.Config) {
		f.configure(c)
		c.AuditDir, c.AuditMaxBytes, c.FS = auditDir, engine.MinAuditMaxBytes, disk
	}
	f.addr, f.stop = startStoppableServer(t, audit)
	ctx := context.Background()

	disk.Inject(faultfs.OpWrite|faultfs.OpSync, auditDir, syscall.ENOSPC)
	full := false
	for i := 0; i < 1000 && !full; i++ {
		_, err := f.client("").DescribeRegistry(ctx, &ecr.DescribeRegistryInput{})
		full = err != nil
	}
	require.True(t, full, "the audit log's disk never filled")

	for _, o := range f.ecrOperations() {
		t.Run(o.name, func(t *testing.T) {
			requireECRError(t, o.call(f.client("")), "ServerException", "the registry cannot serve this now; retry later")
		})
	}
}
