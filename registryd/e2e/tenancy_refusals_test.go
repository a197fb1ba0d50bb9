package e2e

// The attempts a hostile tenant makes, one row each: who, what, and the
// exact answer. Every row also leaves the store as it found it and (when
// the request reached a decision) a denial in the audit log; the runner
// checks both (tenancy_run_test.go).

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tnRoute is one OCI request on a repository and the ECR action it is
// (ECR's mapping of docker pull and push to IAM actions).
type tnRoute struct {
	method, path string
	body         []byte
	hdr          map[string]string
	action       string
}

// tnOCIRoutes are the OCI routes on repo, which holds image img and the
// open upload session at upload: manifests, blobs, uploads (start,
// monolithic, chunk, finish, status, cancel), the tags list and
// referrers.
func tnOCIRoutes(repo string, img *tnImage, upload string) []tnRoute {
	chunk := []byte("a chunk of someone else's upload")
	sep := "?"
	if strings.Contains(upload, "?") {
		sep = "&"
	}
	oct := map[string]string{"Content-Type": "application/octet-stream"}
	return []tnRoute{
		{http.MethodGet, "/v2/" + repo + "/manifests/v1", nil, nil, "ecr:BatchGetImage"},
		{http.MethodHead, "/v2/" + repo + "/manifests/v1", nil, nil, "ecr:BatchGetImage"},
		{http.MethodPut, "/v2/" + repo + "/manifests/pwned", img.manifest,
			map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, "ecr:PutImage"},
		{http.MethodDelete, "/v2/" + repo + "/manifests/" + img.digest.String(), nil, nil, "ecr:BatchDeleteImage"},
		{http.MethodGet, "/v2/" + repo + "/blobs/" + img.layer.String(), nil, nil, "ecr:GetDownloadUrlForLayer"},
		{http.MethodHead, "/v2/" + repo + "/blobs/" + img.layer.String(), nil, nil, "ecr:BatchCheckLayerAvailability"},
		{http.MethodDelete, "/v2/" + repo + "/blobs/" + img.layer.String(), nil, nil, "ecr:BatchDeleteImage"},
		{http.MethodPost, "/v2/" + repo + "/blobs/uploads/", nil, nil, "ecr:InitiateLayerUpload"},
		{http.MethodPost, "/v2/" + repo + "/blobs/uploads/?digest=" + digest.FromBytes(chunk).String(), chunk, oct, "ecr:InitiateLayerUpload"},
		{http.MethodPatch, upload, chunk, oct, "ecr:UploadLayerPart"},
		{http.MethodPut, upload + sep + "digest=" + digest.FromBytes(chunk).String(), chunk, oct, "ecr:CompleteLayerUpload"},
		{http.MethodGet, upload, nil, nil, "ecr:UploadLayerPart"},
		{http.MethodDelete, upload, nil, nil, "ecr:UploadLayerPart"},
		{http.MethodGet, "/v2/" + repo + "/tags/list", nil, nil, "ecr:ListImages"},
		{http.MethodGet, "/v2/" + repo + "/referrers/" + img.digest.String(), nil, nil, "ecr:ListImages"},
	}
}

// tnRouteRefusal is the row of who trying route: 403 DENIED for a user,
// 401 with the challenge for an anonymous caller (a HEAD's answer has no
// body to carry a code).
func tnRouteRefusal(who string, r tnRoute) tnRefusal {
	want := tnDenied
	if who == "" {
		want = tnUnauthorized
	}
	if r.method == http.MethodHead {
		want.Code = ""
	}
	path := r.path
	row := tnRefusal{who: who, what: r.method + " " + path, want: want, action: r.action,
		try: func(f *tenancy) tnAnswer { return f.ociAnswer(who, r.method, path, r.body, r.hdr) }}
	if who == "" && !tnAnonymousDecided(r.method, path) {
		row.audit, row.action = tnAuditNone, ""
	}
	return row
}

// tnAnonymousDecided reports whether a request without credentials is
// decided (and audited) as the anonymous principal's: a GET or HEAD of a
// manifest, blob or tag list, which a public repository serves. Any
// other request without credentials is refused by authentication: there
// is no one to decide for.
func tnAnonymousDecided(method, path string) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	return !strings.Contains(path, "/blobs/uploads/") &&
		(strings.Contains(path, "/manifests/") || strings.Contains(path, "/blobs/") || strings.HasSuffix(path, "/tags/list"))
}

// ociRefusals: every OCI route against another team's repository, as the
// other team (alice on team-b/app), the outsider and an anonymous caller
// (on team-a/app), and bob's push routes on team-a/app, where team-a's
// repository policy lets him pull and nothing else.
func (f *tenancy) ociRefusals() []tnRefusal {
	var rows []tnRefusal
	for _, r := range tnOCIRoutes("team-b/app", f.images["team-b/app:v1"], f.uploads["team-b/app"]) {
		rows = append(rows, tnRouteRefusal("alice", r))
	}
	teamA := tnOCIRoutes("team-a/app", f.images["team-a/app:v1"], f.uploads["team-a/app"])
	for _, who := range []string{"mallory", ""} {
		for _, r := range teamA {
			rows = append(rows, tnRouteRefusal(who, r))
		}
	}
	for _, r := range teamA {
		if r.action == "ecr:BatchGetImage" || r.action == "ecr:GetDownloadUrlForLayer" || r.action == "ecr:BatchCheckLayerAvailability" {
			continue // granted by team-a/app's policy (BobPullsApp): a grant row
		}
		rows = append(rows, tnRouteRefusal("bob", r))
	}
	return rows
}

// tnECR is the row of who calling an ECR operation with the AWS SDK.
func tnECR(who, op string, call func(c *ecr.Client) error, want tnAnswer, action string) tnRefusal {
	return tnRefusal{who: who, what: op, want: want, action: action,
		try: func(f *tenancy) tnAnswer { return tnAWSAnswer(call(f.ecr(who))) }}
}

// ecrRefusals: every ECR operation on another team's repository (alice on
// team-b/app) through the AWS SDK for Go v2.
func (f *tenancy) ecrRefusals() []tnRefusal {
	repo := aws.String("team-b/app")
	arn := aws.String("arn:aws:ecr:us-east-1:000000000000:repository/team-b/app")
	img := f.images["team-b/app:v1"]
	part := []byte("alice's part in bob's upload")
	v1 := []types.ImageIdentifier{{ImageTag: aws.String("v1")}}
	expireAll := aws.String(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	calls := []struct {
		op   string
		call func(c *ecr.Client) error
	}{
		{"DescribeRepositories", func(c *ecr.Client) error {
			_, err := c.DescribeRepositories(tnCtx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"team-b/app"}})
			return err
		}},
		{"DeleteRepository", func(c *ecr.Client) error {
			_, err := c.DeleteRepository(tnCtx, &ecr.DeleteRepositoryInput{RepositoryName: repo, Force: true})
			return err
		}},
		{"PutImageTagMutability", func(c *ecr.Client) error {
			_, err := c.PutImageTagMutability(tnCtx, &ecr.PutImageTagMutabilityInput{RepositoryName: repo, ImageTagMutability: types.ImageTagMutabilityMutable})
			return err
		}},
		{"PutImageScanningConfiguration", func(c *ecr.Client) error {
			_, err := c.PutImageScanningConfiguration(tnCtx, &ecr.PutImageScanningConfigurationInput{RepositoryName: repo,
				ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: false}})
			return err
		}},
		{"TagResource", func(c *ecr.Client) error {
			_, err := c.TagResource(tnCtx, &ecr.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}})
			return err
		}},
		{"UntagResource", func(c *ecr.Client) error {
			_, err := c.UntagResource(tnCtx, &ecr.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"team"}})
			return err
		}},
		{"ListTagsForResource", func(c *ecr.Client) error {
			_, err := c.ListTagsForResource(tnCtx, &ecr.ListTagsForResourceInput{ResourceArn: arn})
			return err
		}},
		{"SetRepositoryPolicy", func(c *ecr.Client) error {
			_, err := c.SetRepositoryPolicy(tnCtx, &ecr.SetRepositoryPolicyInput{RepositoryName: repo, PolicyText: aws.String(
				`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"ecr:*"}]}`)})
			return err
		}},
		{"GetRepositoryPolicy", func(c *ecr.Client) error {
			_, err := c.GetRepositoryPolicy(tnCtx, &ecr.GetRepositoryPolicyInput{RepositoryName: repo})
			return err
		}},
		{"DeleteRepositoryPolicy", func(c *ecr.Client) error {
			_, err := c.DeleteRepositoryPolicy(tnCtx, &ecr.DeleteRepositoryPolicyInput{RepositoryName: repo})
			return err
		}},
		{"PutLifecyclePolicy", func(c *ecr.Client) error {
			_, err := c.PutLifecyclePolicy(tnCtx, &ecr.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: expireAll})
			return err
		}},
		{"GetLifecyclePolicy", func(c *ecr.Client) error {
			_, err := c.GetLifecyclePolicy(tnCtx, &ecr.GetLifecyclePolicyInput{RepositoryName: repo})
			return err
		}},
		{"DeleteLifecyclePolicy", func(c *ecr.Client) error {
			_, err := c.DeleteLifecyclePolicy(tnCtx, &ecr.DeleteLifecyclePolicyInput{RepositoryName: repo})
			return err
		}},
		{"StartLifecyclePolicyPreview", func(c *ecr.Client) error {
			_, err := c.StartLifecyclePolicyPreview(tnCtx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: repo, LifecyclePolicyText: expireAll})
			return err
		}},
		{"GetLifecyclePolicyPreview", func(c *ecr.Client) error {
			_, err := c.GetLifecyclePolicyPreview(tnCtx, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: repo})
			return err
		}},
		{"ListImages", func(c *ecr.Client) error {
			_, err := c.ListImages(tnCtx, &ecr.ListImagesInput{RepositoryName: repo})
			return err
		}},
		{"DescribeImages", func(c *ecr.Client) error {
			_, err := c.DescribeImages(tnCtx, &ecr.DescribeImagesInput{RepositoryName: repo})
			return err
		}},
		{"BatchGetImage", func(c *ecr.Client) error {
			_, err := c.BatchGetImage(tnCtx, &ecr.BatchGetImageInput{RepositoryName: repo, ImageIds: v1})
			return err
		}},
		{"BatchDeleteImage", func(c *ecr.Client) error {
			_, err := c.BatchDeleteImage(tnCtx, &ecr.BatchDeleteImageInput{RepositoryName: repo, ImageIds: v1})
			return err
		}},
		{"PutImage", func(c *ecr.Client) error {
			_, err := c.PutImage(tnCtx, &ecr.PutImageInput{RepositoryName: repo, ImageManifest: aws.String(string(img.manifest)), ImageTag: aws.String("pwned")})
			return err
		}},
		{"BatchCheckLayerAvailability", func(c *ecr.Client) error {
			_, err := c.BatchCheckLayerAvailability(tnCtx, &ecr.BatchCheckLayerAvailabilityInput{RepositoryName: repo, LayerDigests: []string{img.layer.String()}})
			return err
		}},
		{"GetDownloadUrlForLayer", func(c *ecr.Client) error {
			_, err := c.GetDownloadUrlForLayer(tnCtx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: repo, LayerDigest: aws.String(img.layer.String())})
			return err
		}},
		{"InitiateLayerUpload", func(c *ecr.Client) error {
			_, err := c.InitiateLayerUpload(tnCtx, &ecr.InitiateLayerUploadInput{RepositoryName: repo})
			return err
		}},
		{"UploadLayerPart", func(c *ecr.Client) error {
			_, err := c.UploadLayerPart(tnCtx, &ecr.UploadLayerPartInput{RepositoryName: repo, UploadId: aws.String(f.ecrUpload),
				PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(int64(len(part) - 1)), LayerPartBlob: part})
			return err
		}},
		{"CompleteLayerUpload", func(c *ecr.Client) error {
			_, err := c.CompleteLayerUpload(tnCtx, &ecr.CompleteLayerUploadInput{RepositoryName: repo, UploadId: aws.String(f.ecrUpload),
				LayerDigests: []string{digest.FromBytes(part).String()}})
			return err
		}},
		{"CreateRepository", func(c *ecr.Client) error {
			_, err := c.CreateRepository(tnCtx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("team-b/alices")})
			return err
		}},
	}
	var rows []tnRefusal
	for _, c := range calls {
		rows = append(rows, tnECR("alice", c.op+" on team-b", c.call, tnAWS("AccessDeniedException"), "ecr:"+c.op))
	}
	return rows
}

// registryRefusals: every registry-level ECR call (templates, pull-through
// cache rules, the registry policy) as a team member and as the
// outsider. A template or rule of theirs would take over other teams'
// repositories as they are made.
func (f *tenancy) registryRefusals() []tnRefusal {
	grab := aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/mallory"},"Action":"ecr:CreateRepository","Resource":"*"}]}`)
	calls := []struct {
		op   string
		call func(c *ecr.Client) error
	}{
		{"CreateRepositoryCreationTemplate", func(c *ecr.Client) error {
			_, err := c.CreateRepositoryCreationTemplate(tnCtx, &ecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("team-b"),
				AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush}, RepositoryPolicy: aws.String(
					`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"}]}`)})
			return err
		}},
		{"UpdateRepositoryCreationTemplate", func(c *ecr.Client) error {
			_, err := c.UpdateRepositoryCreationTemplate(tnCtx, &ecr.UpdateRepositoryCreationTemplateInput{Prefix: aws.String("team-a"),
				EncryptionConfiguration: &types.EncryptionConfigurationForRepositoryCreationTemplate{EncryptionType: types.EncryptionTypeAes256}})
			return err
		}},
		{"DeleteRepositoryCreationTemplate", func(c *ecr.Client) error {
			_, err := c.DeleteRepositoryCreationTemplate(tnCtx, &ecr.DeleteRepositoryCreationTemplateInput{Prefix: aws.String("team-a")})
			return err
		}},
		{"DescribeRepositoryCreationTemplates", func(c *ecr.Client) error {
			_, err := c.DescribeRepositoryCreationTemplates(tnCtx, &ecr.DescribeRepositoryCreationTemplatesInput{})
			return err
		}},
		{"CreatePullThroughCacheRule", func(c *ecr.Client) error {
			_, err := c.CreatePullThroughCacheRule(tnCtx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("team-a"),
				UpstreamRegistryUrl: aws.String("http://" + f.upstream)})
			return err
		}},
		{"DeletePullThroughCacheRule", func(c *ecr.Client) error {
			_, err := c.DeletePullThroughCacheRule(tnCtx, &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("hub")})
			return err
		}},
		{"DescribePullThroughCacheRules", func(c *ecr.Client) error {
			_, err := c.DescribePullThroughCacheRules(tnCtx, &ecr.DescribePullThroughCacheRulesInput{})
			return err
		}},
		{"PutRegistryPolicy", func(c *ecr.Client) error {
			_, err := c.PutRegistryPolicy(tnCtx, &ecr.PutRegistryPolicyInput{PolicyText: grab})
			return err
		}},
		{"GetRegistryPolicy", func(c *ecr.Client) error {
			_, err := c.GetRegistryPolicy(tnCtx, &ecr.GetRegistryPolicyInput{})
			return err
		}},
		{"DeleteRegistryPolicy", func(c *ecr.Client) error {
			_, err := c.DeleteRegistryPolicy(tnCtx, &ecr.DeleteRegistryPolicyInput{})
			return err
		}},
		{"DescribeRegistry", func(c *ecr.Client) error {
			_, err := c.DescribeRegistry(tnCtx, &ecr.DescribeRegistryInput{})
			return err
		}},
	}
	var rows []tnRefusal
	for _, who := range []string{"alice", "mallory"} {
		for _, c := range calls {
			rows = append(rows, tnECR(who, c.op, c.call, tnAWS("AccessDeniedException"), "ecr:"+c.op))
		}
	}
	return rows
}

// adminRefusals: every /admin/v1 route as a team member and the
// outsider (403 DENIED) and without credentials (401 with the challenge:
// the anonymous caller is decided, and audited, like any other, and no
// policy grants it the admin API). The key operations are refused on the
// registry's default key, which every repository without a key of its own
// uses.
func (f *tenancy) adminRefusals() []tnRefusal {
	expireAll := []byte(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	simulate := []byte(`{"user":"admin","action":"ecr:PutImage","repository":"team-a/app"}`)
	template := []byte(`{"prefix":"team-a","appliedFor":["CREATE_ON_PUSH"]}`)
	routes := []struct {
		method, path string
		body         []byte
		action       string
	}{
		{http.MethodPost, "/admin/v1/gc?grace=0s", nil, "berth:CollectGarbage"},
		{http.MethodPost, "/admin/v1/gc?dry-run=true", nil, "berth:CollectGarbage"},
		{http.MethodPost, "/admin/v1/fsck?verify=true", nil, "berth:Fsck"},
		{http.MethodPost, "/admin/v1/lifecycle/preview?repository=%s", nil, "berth:PreviewLifecycle"},
		{http.MethodPost, "/admin/v1/lifecycle/apply?repository=%s", expireAll, "berth:ApplyLifecycle"},
		{http.MethodPost, "/admin/v1/iam/reload", nil, "berth:ReloadIdentities"},
		{http.MethodPost, "/admin/v1/iam/simulate", simulate, "berth:SimulatePolicy"},
		{http.MethodGet, "/admin/v1/iam/identities", nil, "berth:DescribeIdentities"},
		{http.MethodGet, "/admin/v1/audit", nil, "berth:ReadAuditLog"},
		{http.MethodGet, "/admin/v1/keys", nil, "kms:ListKeys"},
		{http.MethodPost, "/admin/v1/keys/create?name=stolen", nil, "kms:CreateKey"},
		{http.MethodPost, "/admin/v1/keys/rotate?name=berth-default", nil, "kms:EnableKeyRotation"},
		{http.MethodPost, "/admin/v1/keys/disable?name=berth-default", nil, "kms:DisableKey"},
		{http.MethodPost, "/admin/v1/keys/enable?name=berth-default", nil, "kms:EnableKey"},
		{http.MethodPost, "/admin/v1/keys/destroy?name=berth-default", nil, "kms:ScheduleKeyDeletion"},
		{http.MethodPost, "/admin/v1/repositories/delete?name=%s&force=true", nil, "ecr:DeleteRepository"},
		{http.MethodGet, "/admin/v1/repositories/describe?name=%s", nil, "ecr:DescribeRepositories"},
		{http.MethodPost, "/admin/v1/templates/put", template, "ecr:UpdateRepositoryCreationTemplate"},
		{http.MethodPost, "/admin/v1/templates/delete?prefix=team-a", nil, "ecr:DeleteRepositoryCreationTemplate"},
		{http.MethodGet, "/admin/v1/templates", nil, "ecr:DescribeRepositoryCreationTemplates"},
	}
	var rows []tnRefusal
	for _, who := range []string{"alice", "mallory", ""} {
		victim := "team-a/app"
		if who == "alice" {
			victim = "team-b/app" // alice's own repositories are hers to clean up: a grant
		}
		for _, r := range routes {
			path := r.path
			if strings.Contains(path, "%s") {
				path = fmt.Sprintf(path, victim)
			}
			row := tnRefusal{who: who, what: r.method + " " + path, want: tnDenied, action: r.action,
				try: func(f *tenancy) tnAnswer { return f.ociAnswer(who, r.method, path, r.body, nil) }}
			if who == "" {
				row.want = tnUnauthorized
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// credentialRefusals: what authentication refuses, before any decision:
// SigV4 signatures replayed, scoped to another region or service, made
// with another key's secret or over another body, or missing; unknown
// and removed keys; login tokens minted before authentication was on,
// forged, tampered with, or of a user who left; oversize bodies refused
// before they are read.
func (f *tenancy) credentialRefusals() []tnRefusal {
	describe := func(c *ecr.Client) error {
		_, err := c.DescribeRepositories(tnCtx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"team-a/app"}})
		return err
	}
	auth := func(who, what string, try func(f *tenancy) tnAnswer, want tnAnswer) tnRefusal {
		return tnRefusal{who: who, what: what, try: try, want: want, audit: tnAuditNone}
	}
	tagsAs := func(authz string) func(f *tenancy) tnAnswer {
		return func(f *tenancy) tnAnswer {
			status, h, b := f.send(http.MethodGet, "/v2/team-a/app/tags/list", nil, map[string]string{"Authorization": authz})
			return tnParseOCI(status, h, b)
		}
	}
	awsBasic := func(token string) string { return "Basic " + tnBase64("AWS:"+token) }
	tampered := []byte(f.eveToken)
	tampered[len(tampered)/2] ^= 1
	huge := `{"rules":[{"rulePriority":1,"description":"` + strings.Repeat("x", 2<<20) + `","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
	return []tnRefusal{
		auth("alice", "a SigV4 request replayed 16 minutes after it was signed", func(f *tenancy) tnAnswer {
			return f.signedCall("DescribeRepositories", `{"repositoryNames":["team-a/app"]}`, "", tnAccessKey("alice"), "secret-alice", time.Now().Add(-16*time.Minute))
		}, tnAnswer{Status: http.StatusForbidden, Code: "InvalidSignatureException", Msg: "Signature expired"}),
		auth("alice", "a signature scoped to another region (eu-west-1)", func(f *tenancy) tnAnswer {
			return tnAWSAnswer(describe(f.ecrKey(tnAccessKey("alice"), "secret-alice", "eu-west-1")))
		}, tnAnswer{Code: "InvalidSignatureException", Msg: "Credential should be scoped to a valid region"}),
		auth("alice", "a signature scoped to another service (s3)", func(f *tenancy) tnAnswer {
			return tnAWSAnswer(describe(f.ecr("alice", ecr.WithSigV4SigningName("s3"))))
		}, tnAnswer{Code: "InvalidSignatureException", Msg: "Credential should be scoped to correct service"}),
		auth("mallory", "alice's access key signed with mallory's secret", func(f *tenancy) tnAnswer {
			return tnAWSAnswer(describe(f.ecrKey(tnAccessKey("alice"), "secret-mallory", tnRegion)))
		}, tnAWS("InvalidSignatureException")),
		auth("mallory", "alice's signed request with its body changed to name team-b", func(f *tenancy) tnAnswer {
			return f.signedCall("DescribeRepositories", `{"repositoryNames":["team-a/app"]}`, `{"repositoryNames":["team-b/app"]}`,
				tnAccessKey("alice"), "secret-alice", time.Now())
		}, tnAnswer{Status: http.StatusForbidden, Code: "InvalidSignatureException"}),
		auth("mallory", "an unknown access key", func(f *tenancy) tnAnswer {
			return tnAWSAnswer(describe(f.ecrKey("AKIAMALLORYFORGED", "x", tnRegion)))
		}, tnAWS("UnrecognizedClientException")),
		auth("", "an ECR call without a signature", func(f *tenancy) tnAnswer {
			status, h, b := f.send(http.MethodPost, "/", []byte(`{}`), map[string]string{
				"X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories", "Content-Type": "application/x-amz-json-1.1"})
			return tnAnswer{Status: status, Code: h.Get("X-Amzn-ErrorType"), Msg: string(b)}
		}, tnAnswer{Status: http.StatusForbidden, Code: "MissingAuthenticationTokenException"}),
		auth("", "a login token minted before authentication was turned on", tagsAs(awsBasic(f.preAuthToken)), tnUnauthorized),
		auth("", "a forged login token", tagsAs(awsBasic("berth2.forged.token")), tnUnauthorized),
		auth("", "eve's login token with one bit flipped", tagsAs(awsBasic(string(tampered))), tnUnauthorized),
		auth("", "alice with a wrong password", tagsAs("Basic "+tnBase64("alice:not-her-password")), tnUnauthorized),
		auth("eve", "the login token of eve, who was removed", tagsAs(awsBasic(f.eveToken)), tnUnauthorized),
		auth("eve", "the password of eve, who was removed", tagsAs(tnBasic("eve")), tnUnauthorized),
		auth("eve", "the access key of eve, who was removed", func(f *tenancy) tnAnswer {
			return tnAWSAnswer(describe(f.ecr("eve")))
		}, tnAWS("UnrecognizedClientException")),
		{who: "", what: "50 forged login tokens cost no password hashing", audit: tnAuditNone, want: tnUnauthorized,
			try: func(f *tenancy) tnAnswer {
				start := time.Now()
				var last tnAnswer
				for i := range 50 {
					last = tagsAs(awsBasic("berth2.forged." + strconv.Itoa(i)))(f)
				}
				last.Msg = time.Since(start).String()
				return last
			},
			check: func(t *testing.T, f *tenancy, got tnAnswer) {
				took, err := time.ParseDuration(got.Msg)
				require.NoError(t, err)
				t.Logf("50 forged tokens: %v", took)
				// A bcrypt of cost 10 takes ~60 ms here: 50 would take 3 s.
				assert.Less(t, took, 1500*time.Millisecond, "a forged token costs an HMAC, not a bcrypt")
			}},
		auth("mallory", "a 2 MiB ECR body with an unknown key, refused unread", func(f *tenancy) tnAnswer {
			before := f.metric(`berth_http_request_bytes_total{route="ecr"}`)
			_, err := f.ecrKey("AKIAMALLORYFORGED", "x", tnRegion).PutLifecyclePolicy(tnCtx, &ecr.PutLifecyclePolicyInput{
				RepositoryName: aws.String("team-a/app"), LifecyclePolicyText: aws.String(huge)})
			a := tnAWSAnswer(err)
			if read := f.metric(`berth_http_request_bytes_total{route="ecr"}`) - before; read != 0 {
				a.Msg = fmt.Sprintf("%d bytes read", read)
			}
			return a
		}, tnAnswer{Code: "UnrecognizedClientException", Msg: "The security token included in the request is invalid"}),
		auth("mallory", "a 2 MiB ECR body with mallory's key, over PutLifecyclePolicy's limit, refused unread", func(f *tenancy) tnAnswer {
			before := f.metric(`berth_http_request_bytes_total{route="ecr"}`)
			_, err := f.ecr("mallory").PutLifecyclePolicy(tnCtx, &ecr.PutLifecyclePolicyInput{
				RepositoryName: aws.String("team-a/app"), LifecyclePolicyText: aws.String(huge)})
			a := tnAWSAnswer(err)
			if read := f.metric(`berth_http_request_bytes_total{route="ecr"}`) - before; read != 0 {
				a.Msg = fmt.Sprintf("%d bytes read", read)
			}
			return a
		}, tnAnswer{Code: "LimitExceededException", Msg: "larger than 1048576 bytes"}),
		auth("", "a 5 MiB manifest without credentials, refused unread", func(f *tenancy) tnAnswer {
			before := f.metric(`berth_http_request_bytes_total{route="manifest"}`)
			a := f.ociAnswer("", http.MethodPut, "/v2/team-a/app/manifests/huge", bytes.Repeat([]byte("m"), 5<<20),
				map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
			if read := f.metric(`berth_http_request_bytes_total{route="manifest"}`) - before; read != 0 {
				a.Msg = fmt.Sprintf("%d bytes read", read)
			}
			return a
		}, tnAnswer{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Challenge: `Basic realm="berth"`, Msg: "authentication required"}),
		auth("", "a 1 MiB lifecycle policy to the admin API without credentials", func(f *tenancy) tnAnswer {
			return f.ociAnswer("", http.MethodPost, "/admin/v1/lifecycle/apply?repository=team-a/app", bytes.Repeat([]byte(" "), 1<<20), nil)
		}, tnUnauthorized),
	}
}

// tnBase64 is s in standard base64.
func tnBase64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// signedCall sends an ECR call signed with key and secret at signedAt
// over body, then sends sent instead of body when not "" (a tampered
// request), and reads the AWS error.
func (f *tenancy) signedCall(op, body, sent, key, secret string, signedAt time.Time) tnAnswer {
	t := f.t
	req, err := http.NewRequest(http.MethodPost, "https://"+f.addr+"/", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	sum := sha256.Sum256([]byte(body))
	require.NoError(t, v4.NewSigner().SignHTTP(tnCtx, aws.Credentials{AccessKeyID: key, SecretAccessKey: secret},
		req, hex.EncodeToString(sum[:]), "ecr", tnRegion, signedAt))
	if sent != "" {
		req.Body = io.NopCloser(strings.NewReader(sent))
		req.ContentLength = int64(len(sent))
	}
	resp, err := f.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return tnAnswer{Status: resp.StatusCode, Code: resp.Header.Get("X-Amzn-ErrorType"), Msg: string(b)}
}

// metric reads one sample of the registry's metrics (0 when absent).
func (f *tenancy) metric(sample string) int64 {
	status, _, body := f.send(http.MethodGet, "/metrics", nil, nil)
	require.Equal(f.t, http.StatusOK, status)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	n, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(f.t, err)
	return int64(n)
}

// defectRefusals: the defects a shared registry must not have, each as
// the attempt that would exploit it. Two have no row: a chained-symlink
// image escaping the FUSE view is the fuse package's
// TestSymlinksCannotLeaveTheMount (it needs a mount, not a tenant); and
// the type-assertion fail-open (an authorizer that allowed when an
// interface assertion on the policy failed) can no longer happen: every
// handler asks authz.All, which asks engine.Authorize, whose Decision is
// a value whose zero Outcome is ImplicitDeny; no assertion is on the
// path, so there is no request to send.
func (f *tenancy) defectRefusals() []tnRefusal {
	bLayer := f.images["team-b/app:v1"].layer
	secretLayer := f.images["team-a/secret:v1"].layer
	absent := digest.FromString("a digest no repository holds")
	mount := func(who, into, d, from string) func(f *tenancy) tnAnswer {
		return func(f *tenancy) tnAnswer {
			path := "/v2/" + into + "/blobs/uploads/?mount=" + d
			if from != "" {
				path += "&from=" + from
			}
			status, h, b := f.do(who, http.MethodPost, path, nil, nil)
			a := tnParseOCI(status, h, b)
			// A mount is answered 201 with the digest; a refusal looks like
			// any blob the source lacks: an upload session (202).
			a.Msg = "[digest=" + h.Get("Docker-Content-Digest") + " range=" + h.Get("Range") + "]"
			return a
		}
	}
	accepted := tnAnswer{Status: http.StatusAccepted, Msg: "[digest= range=0-0]"}
	pull := func(who, ref string) func(f *tenancy) tnAnswer {
		return func(f *tenancy) tnAnswer {
			_, err := remote.Image(f.ref(ref), f.remote(who)...)
			return tnRegistryAnswer(err)
		}
	}
	policy := func(principal string) func(c *ecr.Client) error {
		return func(c *ecr.Client) error {
			_, err := c.SetRepositoryPolicy(tnCtx, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("team-a/app"), PolicyText: aws.String(
				`{"Version":"2012-10-17","Statement":[{"Sid":"Unmatchable","Effect":"Allow","Principal":` + principal + `,"Action":"ecr:BatchGetImage"}]}`)})
			return err
		}
	}
	createRepo := func(name string, in ecr.CreateRepositoryInput) func(c *ecr.Client) error {
		return func(c *ecr.Client) error {
			in.RepositoryName = aws.String(name)
			_, err := c.CreateRepository(tnCtx, &in)
			return err
		}
	}
	teamTag := func(v string) []types.Tag { return []types.Tag{{Key: aws.String("team"), Value: aws.String(v)}} }
	decided := func(r tnRefusal) tnRefusal { r.audit = tnAuditDecision; return r }
	denied := tnAWS("AccessDeniedException")
	invalid := tnAWS("InvalidParameterException")
	return []tnRefusal{
		// Mounts: without from, the engine never looks outside the target
		// (no link, no oracle: the same 202 for a digest that exists
		// elsewhere and one that exists nowhere); with a from the caller
		// may not read, the same.
		decided(tnRefusal{who: "mallory", what: "mount team-b's layer into team-a/inbox without from", try: mount("mallory", "team-a/inbox", bLayer.String(), ""),
			want: accepted, oracle: "mount without from"}),
		decided(tnRefusal{who: "mallory", what: "mount an absent digest into team-a/inbox without from", try: mount("mallory", "team-a/inbox", absent.String(), ""),
			want: accepted, oracle: "mount without from"}),
		{who: "mallory", what: "mount team-b's layer into team-a/inbox from team-b/app", try: mount("mallory", "team-a/inbox", bLayer.String(), "team-b/app"),
			want: accepted, oracle: "mount from a refused source", action: "ecr:GetDownloadUrlForLayer"},
		{who: "mallory", what: "mount an absent digest into team-a/inbox from team-b/app", try: mount("mallory", "team-a/inbox", absent.String(), "team-b/app"),
			want: accepted, oracle: "mount from a refused source", action: "ecr:GetDownloadUrlForLayer"},
		{who: "bob", what: "mount team-a/secret's KMS-sealed layer into team-b/app", try: mount("bob", "team-b/app", secretLayer.String(), "team-a/secret"),
			want: accepted, action: "ecr:GetDownloadUrlForLayer"},

		// The pull-through cache: a fill needs a grant; a careless rule over
		// team-b never fills team-b's pushed repositories.
		{who: "carol", what: "pull hub/library/base:v1 through the cache", try: pull("carol", "hub/library/base:v1"), want: tnDenied, action: "ecr:BatchGetImage"},
		{who: "mallory", what: "pull hub/library/base:v1 through the cache", try: pull("mallory", "hub/library/base:v1"), want: tnDenied, action: "ecr:BatchGetImage"},
		decided(tnRefusal{who: "bob", what: "pull team-b/app:evil, a tag only the upstream of the rule over team-b has", try: pull("bob", "team-b/app:evil"),
			want: tnAnswer{Status: http.StatusNotFound, Code: "MANIFEST_UNKNOWN"}}),

		// A hostile upstream (hub/evil's proxy, lying for these rows): bytes
		// that fail their digest are refused as the upstream's failure
		// (503, retryable) and nothing of them is kept.
		f.lyingUpstream(decided(tnRefusal{who: "alice", what: "GET a blob the hostile upstream alters, through hub/evil",
			want: tnAnswer{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE"},
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodGet, "/v2/hub/evil/library/base/blobs/"+f.evil.layer.String(), nil, nil)
			}})),
		f.lyingUpstream(decided(tnRefusal{who: "alice", what: "GET a manifest by digest the hostile upstream alters, through hub/evil",
			want: tnAnswer{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE"},
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodGet, "/v2/hub/evil/library/base/manifests/"+f.evil.digest.String(), nil,
					map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"})
			}})),
		f.lyingUpstream(decided(tnRefusal{who: "alice", what: "pull hub/evil/library/base:evil, whose manifest the hostile upstream alters under its digest",
			want: tnAnswer{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE"}, try: pull("alice", "hub/evil/library/base:evil")})),

		// Creation: on push, by CreateRepository, with a key.
		{who: "mallory", what: "push into home/mallory (create on push)", want: tnDenied, action: "ecr:InitiateLayerUpload",
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("mallory", http.MethodPost, "/v2/home/mallory/app/blobs/uploads/", nil, nil)
			}},
		{who: "bob", what: "push into team-a/new (create on push under team-a's template)", want: tnDenied, action: "ecr:InitiateLayerUpload",
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("bob", http.MethodPost, "/v2/team-a/new/blobs/uploads/", nil, nil)
			}},
		{who: "alice", what: "push into home/bob (another user's home)", want: tnDenied, action: "ecr:InitiateLayerUpload",
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodPost, "/v2/home/bob/app/blobs/uploads/", nil, nil)
			}},
		{who: "bob", what: "push into team-b/vault/app, whose creation template seals under team-a's key", want: tnDenied, action: "kms:CreateGrant",
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("bob", http.MethodPost, "/v2/team-b/vault/app/blobs/uploads/?digest="+digest.FromString("bob's layer").String(),
					[]byte("bob's layer"), map[string]string{"Content-Type": "application/octet-stream"})
			}},
		tnDecidedBy(tnECR("mallory", "CreateRepository mallory/app (the registry policy denies outsiders)", createRepo("mallory/app", ecr.CreateRepositoryInput{}), denied, "ecr:CreateRepository"),
			`explicitly denied by registry policy "registry" statement 1 (Sid "OutsidersCreateNothing")`),
		tnECR("bob", "CreateRepository team-b/sealed with team-a's key", createRepo("team-b/sealed", ecr.CreateRepositoryInput{
			EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms, KmsKey: aws.String("team-a-key")}}), denied, "kms:CreateGrant"),
		tnECR("alice", "CreateRepository projects/untagged without the team tag", createRepo("projects/untagged", ecr.CreateRepositoryInput{}), denied, "ecr:CreateRepository"),
		tnECR("alice", "CreateRepository projects/b-look-alike tagged team=b", createRepo("projects/b-look-alike", ecr.CreateRepositoryInput{Tags: teamTag("b")}), denied, "ecr:CreateRepository"),
		tnECR("alice", "TagResource projects/beta team=a (taking another team's project by its tag)", func(c *ecr.Client) error {
			_, err := c.TagResource(tnCtx, &ecr.TagResourceInput{ResourceArn: aws.String("arn:aws:ecr:us-east-1:000000000000:repository/projects/beta"), Tags: teamTag("a")})
			return err
		}, denied, "ecr:TagResource"),
		tnECR("alice", "TagResource projects/alpha team=b", func(c *ecr.Client) error {
			_, err := c.TagResource(tnCtx, &ecr.TagResourceInput{ResourceArn: aws.String("arn:aws:ecr:us-east-1:000000000000:repository/projects/alpha"), Tags: teamTag("b")})
			return err
		}, denied, "ecr:TagResource"),

		// Conditions that do not hold.
		{who: "alice", what: "pull projects/beta (its resource tag is team=b)", try: pull("alice", "projects/beta:v1"), want: tnDenied, action: "ecr:BatchGetImage"},
		{who: "alice", what: "push a manifest to team-a/app from 203.0.113.9 (through the trusted proxy)", want: tnDenied, action: "ecr:PutImage", statement: "PushFromLoopbackOnly",
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodPut, "/v2/team-a/app/manifests/from-afar", f.images["team-a/app:v1"].manifest,
					map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json", "X-Forwarded-For": "203.0.113.9"})
			}},
		tnECR("carol", "BatchDeleteImage team-b/app:v1 (her grant ended in 2001)", func(c *ecr.Client) error {
			_, err := c.BatchDeleteImage(tnCtx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("team-b/app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
			return err
		}, denied, "ecr:BatchDeleteImage"),
		{who: "carol", what: "DELETE team-b/app's manifest (her grant ended in 2001)", want: tnDenied, action: "ecr:BatchDeleteImage",
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("carol", http.MethodDelete, "/v2/team-b/app/manifests/"+f.images["team-b/app:v1"].digest.String(), nil, nil)
			}},

		// Repository policies: what they grant and no more.
		{who: "bob", what: "pull team-a/secret (team-a lets him pull team-a/app only)", try: pull("bob", "team-a/secret:v1"), want: tnDenied, action: "ecr:BatchGetImage"},
		{who: "mallory", what: "list team-a/inbox's tags (she may push there, not read)", want: tnDenied, action: "ecr:ListImages",
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("mallory", http.MethodGet, "/v2/team-a/inbox/tags/list", nil, nil)
			}},
		{who: "mallory", what: "push to the public shared/base", want: tnDenied, action: "ecr:InitiateLayerUpload",
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("mallory", http.MethodPost, "/v2/shared/base/blobs/uploads/", nil, nil)
			}},
		{who: "", what: "push a manifest to the public shared/base", want: tnUnauthorized, audit: tnAuditNone,
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("", http.MethodPut, "/v2/shared/base/manifests/pwned", f.images["shared/base:v1"].manifest,
					map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
			}},
		{who: "", what: "delete the public shared/base's manifest", want: tnUnauthorized, audit: tnAuditNone,
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("", http.MethodDelete, "/v2/shared/base/manifests/"+f.images["shared/base:v1"].digest.String(), nil, nil)
			}},
		{who: "", what: "pull team-b/docs, whose Principal \"*\" is narrowed by a condition (not public)", want: tnUnauthorized, action: "ecr:BatchGetImage",
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("", http.MethodGet, "/v2/team-b/docs/manifests/v1", nil, nil)
			}},
		{who: "mallory", what: "pull team-b/docs (its condition names alice)", want: tnDenied, action: "ecr:BatchGetImage",
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("mallory", http.MethodGet, "/v2/team-b/docs/manifests/v1", nil, nil)
			}},

		// A user the identity file does not name holds no policy: not even
		// the version check; only what a resource policy grants everyone.
		{who: "frank", what: "GET /v2/ (the version check a login makes)", want: tnDenied, action: "ecr:GetAuthorizationToken",
			try: func(f *tenancy) tnAnswer { return f.ociAnswer("frank", http.MethodGet, "/v2/", nil, nil) }},
		tnECR("frank", "GetAuthorizationToken", func(c *ecr.Client) error {
			_, err := c.GetAuthorizationToken(tnCtx, &ecr.GetAuthorizationTokenInput{})
			return err
		}, denied, "ecr:GetAuthorizationToken"),
		{who: "frank", what: "push to team-a/inbox (its policy names mallory)", want: tnDenied, action: "ecr:InitiateLayerUpload",
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("frank", http.MethodPost, "/v2/team-a/inbox/blobs/uploads/", nil, nil)
			}},

		// The audit log cannot be forged through what a caller sends: a
		// path and a User-Agent that close the JSON line and open another.
		{who: "mallory", what: "GET a manifest whose reference and User-Agent would inject an audit line", want: tnDenied, action: "ecr:BatchGetImage",
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("mallory", http.MethodGet, "/v2/team-a/app/manifests/x%22%7D%0A%7B%22eventName%22:%22Forged", nil,
					map[string]string{"User-Agent": `evil","eventName":"Forged","userIdentity":{"arn":"arn:aws:iam::000000000000:user/admin"},"x":"`})
			}},

		// Principals Berth cannot match are refused when set, not
		// accepted and silently never matched.
		decided(tnECR("alice", "SetRepositoryPolicy naming a role", policy(`{"AWS":"arn:aws:iam::000000000000:role/ci"}`), invalid, "")),
		decided(tnECR("alice", "SetRepositoryPolicy naming a service", policy(`{"Service":"codebuild.amazonaws.com"}`), invalid, "")),
		decided(tnECR("alice", "SetRepositoryPolicy naming users by wildcard", policy(`{"AWS":"arn:aws:iam::000000000000:user/*"}`), invalid, "")),
		decided(tnECR("alice", "SetRepositoryPolicy naming a group", policy(`{"AWS":"arn:aws:iam::000000000000:group/team-b"}`), invalid, "")),

		// The catalog lists only what the caller may describe.
		decided(tnRefusal{who: "bob", what: "list the catalog", want: tnAnswer{Status: http.StatusOK, Msg: "[team-b/app,team-b/docs]"},
			try: func(f *tenancy) tnAnswer { return f.catalog("bob") }}),
		decided(tnRefusal{who: "mallory", what: "list the catalog", want: tnAnswer{Status: http.StatusOK, Msg: "[]"},
			try: func(f *tenancy) tnAnswer { return f.catalog("mallory") }}),
		{who: "", what: "list the catalog", want: tnUnauthorized, audit: tnAuditNone,
			try: func(f *tenancy) tnAnswer { return f.ociAnswer("", http.MethodGet, "/v2/_catalog", nil, nil) }},

		// Content is per repository, though the store keeps each blob once:
		// a digest that exists in another repository is unknown here, cannot
		// be named by a manifest pushed here, and cannot be claimed by an
		// upload that does not carry its bytes.
		decided(tnRefusal{who: "alice", what: "GET team-b/app's layer through team-a/app", oracle: "blob of another repository",
			want: tnAnswer{Status: http.StatusNotFound, Code: "BLOB_UNKNOWN"},
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodGet, "/v2/team-a/app/blobs/"+bLayer.String(), nil, nil)
			}}),
		decided(tnRefusal{who: "alice", what: "GET an absent blob through team-a/app", oracle: "blob of another repository",
			want: tnAnswer{Status: http.StatusNotFound, Code: "BLOB_UNKNOWN"},
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodGet, "/v2/team-a/app/blobs/"+absent.String(), nil, nil)
			}}),
		decided(tnRefusal{who: "alice", what: "HEAD team-b/app's layer through team-a/app", want: tnAnswer{Status: http.StatusNotFound},
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodHead, "/v2/team-a/app/blobs/"+bLayer.String(), nil, nil)
			}}),
		decided(tnRefusal{who: "alice", what: "GET team-b/app's manifest by digest through team-a/app", want: tnAnswer{Status: http.StatusNotFound, Code: "MANIFEST_UNKNOWN"},
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodGet, "/v2/team-a/app/manifests/"+f.images["team-b/app:v1"].digest.String(), nil, nil)
			}}),
		decided(tnRefusal{who: "alice", what: "PUT team-b/app's manifest into team-a/app", want: tnAnswer{Status: http.StatusBadRequest, Code: "MANIFEST_BLOB_UNKNOWN"},
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodPut, "/v2/team-a/app/manifests/stolen", f.images["team-b/app:v1"].manifest,
					map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
			}}),
		decided(tnRefusal{who: "alice", what: "PUT an index naming team-b/app's manifest into team-a/app", want: tnAnswer{Status: http.StatusBadRequest, Code: "MANIFEST_BLOB_UNKNOWN"},
			try: func(f *tenancy) tnAnswer {
				b := f.images["team-b/app:v1"]
				idx, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
					"manifests": []any{map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": b.digest, "size": len(b.manifest)}}})
				require.NoError(f.t, err)
				return f.ociAnswer("alice", http.MethodPut, "/v2/team-a/app/manifests/stolen-index", idx,
					map[string]string{"Content-Type": "application/vnd.oci.image.index.v1+json"})
			}}),
		decided(tnRefusal{who: "alice", what: "POST a monolithic upload into team-a/app claiming team-b's layer digest", want: tnAnswer{Status: http.StatusBadRequest, Code: "DIGEST_INVALID"},
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodPost, "/v2/team-a/app/blobs/uploads/?digest="+bLayer.String(), []byte("not those bytes"),
					map[string]string{"Content-Type": "application/octet-stream"})
			}}),
		decided(tnRefusal{who: "alice", what: "finish an empty upload session in team-a/app claiming team-b's layer digest", want: tnAnswer{Status: http.StatusBadRequest, Code: "DIGEST_INVALID"},
			try: func(f *tenancy) tnAnswer {
				status, h, body := f.do("alice", http.MethodPost, "/v2/team-a/app/blobs/uploads/", nil, nil)
				require.Equal(f.t, http.StatusAccepted, status, "%s", body)
				loc := h.Get("Location")
				if i := strings.Index(loc, "/v2/"); i > 0 {
					loc = loc[i:]
				}
				return f.ociAnswer("alice", http.MethodPut, loc+"?digest="+bLayer.String(), nil, map[string]string{"Content-Type": "application/octet-stream"})
			}}),
		decided(tnECR("alice", "GetDownloadUrlForLayer of team-b's layer through team-a/app", func(c *ecr.Client) error {
			_, err := c.GetDownloadUrlForLayer(tnCtx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: aws.String("team-a/app"), LayerDigest: aws.String(bLayer.String())})
			return err
		}, tnAWS("LayersNotFoundException"), "")),
		decided(tnRefusal{who: "alice", what: "BatchCheckLayerAvailability of team-b's layer through team-a/app", want: tnAnswer{Msg: "[available=0 failures=[MissingLayerDigest]]"},
			try: func(f *tenancy) tnAnswer {
				out, err := f.ecr("alice").BatchCheckLayerAvailability(tnCtx, &ecr.BatchCheckLayerAvailabilityInput{RepositoryName: aws.String("team-a/app"),
					LayerDigests: []string{bLayer.String()}})
				if err != nil {
					return tnAWSAnswer(err)
				}
				var failures []string
				for _, x := range out.Failures {
					failures = append(failures, string(x.FailureCode))
				}
				return tnAnswer{Msg: fmt.Sprintf("[available=%d failures=%v]", len(out.Layers), failures)}
			}}),
		decided(tnECR("alice", "PutImage of team-b/app's manifest into team-a/app", func(c *ecr.Client) error {
			_, err := c.PutImage(tnCtx, &ecr.PutImageInput{RepositoryName: aws.String("team-a/app"), ImageTag: aws.String("stolen"),
				ImageManifest: aws.String(string(f.images["team-b/app:v1"].manifest))})
			return err
		}, tnAWS("LayersNotFoundException"), "")),
		decided(tnECR("alice", "CompleteLayerUpload in team-a/app claiming team-b's layer digest over other bytes", func(c *ecr.Client) error {
			up, err := c.InitiateLayerUpload(tnCtx, &ecr.InitiateLayerUploadInput{RepositoryName: aws.String("team-a/app")})
			if err != nil {
				return err
			}
			if _, err := c.UploadLayerPart(tnCtx, &ecr.UploadLayerPartInput{RepositoryName: aws.String("team-a/app"), UploadId: up.UploadId,
				PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(0), LayerPartBlob: []byte("x")}); err != nil {
				return err
			}
			_, err = c.CompleteLayerUpload(tnCtx, &ecr.CompleteLayerUploadInput{RepositoryName: aws.String("team-a/app"), UploadId: up.UploadId,
				LayerDigests: []string{bLayer.String()}})
			return err
		}, tnAWS("InvalidLayerException"), "")),

		// Upload sessions belong to their repository: another repository's
		// session id, through a repository the caller may write, is unknown.
		decided(tnRefusal{who: "alice", what: "PATCH bob's upload session through team-a/app", want: tnAnswer{Status: http.StatusNotFound, Code: "BLOB_UPLOAD_UNKNOWN"},
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodPatch, "/v2/team-a/app/blobs/uploads/"+tnSessionID(f.uploads["team-b/app"]), []byte("alice's bytes"),
					map[string]string{"Content-Type": "application/octet-stream"})
			}}),
		decided(tnRefusal{who: "alice", what: "GET the status of bob's upload session through team-a/app", want: tnAnswer{Status: http.StatusNotFound, Code: "BLOB_UPLOAD_UNKNOWN"},
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodGet, "/v2/team-a/app/blobs/uploads/"+tnSessionID(f.uploads["team-b/app"]), nil, nil)
			}}),
		decided(tnRefusal{who: "alice", what: "DELETE bob's upload session through team-a/app", want: tnAnswer{Status: http.StatusNotFound, Code: "BLOB_UPLOAD_UNKNOWN"},
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodDelete, "/v2/team-a/app/blobs/uploads/"+tnSessionID(f.uploads["team-b/app"]), nil, nil)
			}}),
		decided(tnECR("alice", "UploadLayerPart into bob's ECR upload through team-a/app", func(c *ecr.Client) error {
			_, err := c.UploadLayerPart(tnCtx, &ecr.UploadLayerPartInput{RepositoryName: aws.String("team-a/app"), UploadId: aws.String(f.ecrUpload),
				PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(0), LayerPartBlob: []byte("x")})
			return err
		}, tnAWS("UploadNotFoundException"), "")),
		decided(tnECR("alice", "CompleteLayerUpload of bob's OCI session through team-a/app", func(c *ecr.Client) error {
			_, err := c.CompleteLayerUpload(tnCtx, &ecr.CompleteLayerUploadInput{RepositoryName: aws.String("team-a/app"),
				UploadId: aws.String(tnSessionID(f.uploads["team-b/app"])), LayerDigests: []string{absent.String()}})
			return err
		}, tnAWS("UploadNotFoundException"), "")),

		// Names that would lead out of a granted prefix are invalid, on both
		// APIs, before any decision.
		tnNoDecision(tnRefusal{who: "alice", what: "GET /v2/team-a/../team-b/app/manifests/v1", want: tnAnswer{Status: http.StatusBadRequest, Code: "NAME_INVALID"},
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodGet, "/v2/team-a/../team-b/app/manifests/v1", nil, nil)
			}}),
		tnNoDecision(tnRefusal{who: "alice", what: "GET /v2/team-a/..%2Fteam-b/app/manifests/v1", want: tnAnswer{Status: http.StatusBadRequest, Code: "NAME_INVALID"},
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodGet, "/v2/team-a/..%2Fteam-b/app/manifests/v1", nil, nil)
			}}),
		tnNoDecision(tnECR("alice", "ListImages team-a/../team-b/app", func(c *ecr.Client) error {
			_, err := c.ListImages(tnCtx, &ecr.ListImagesInput{RepositoryName: aws.String("team-a/../team-b/app")})
			return err
		}, invalid, "")),
		tnNoDecision(tnECR("alice", "TagResource naming team-b/app in another region", func(c *ecr.Client) error {
			_, err := c.TagResource(tnCtx, &ecr.TagResourceInput{ResourceArn: aws.String("arn:aws:ecr:eu-west-1:000000000000:repository/team-b/app"), Tags: teamTag("a")})
			return err
		}, invalid, "")),
		tnNoDecision(tnECR("alice", "ListImages team-b/app in another registry id", func(c *ecr.Client) error {
			_, err := c.ListImages(tnCtx, &ecr.ListImagesInput{RepositoryName: aws.String("team-b/app"), RegistryId: aws.String("111111111111")})
			return err
		}, invalid, "")),
		decided(tnRefusal{who: "dave", what: "page through DescribeRepositories for team-a/secret, hidden from him (pages of 1 to 9, tokens decoded)",
			want: tnAnswer{Msg: "[team-a/secret seen 0 times]"}, try: func(f *tenancy) tnAnswer { return f.hiddenInPages("dave", "team-a/secret") }}),
		decided(tnRefusal{who: "dave", what: "list the catalog, team-a/secret hidden from him",
			want: tnAnswer{Status: http.StatusOK, Msg: "[hub/evil/library/base,projects/alpha,projects/beta,shared/base,team-a/app,team-a/inbox,team-b/app,team-b/docs]"},
			try:  func(f *tenancy) tnAnswer { return f.catalog("dave") }}),
		tnECR("mallory", "DescribeRepositories (every repository)", func(c *ecr.Client) error {
			_, err := c.DescribeRepositories(tnCtx, &ecr.DescribeRepositoriesInput{})
			return err
		}, denied, "ecr:DescribeRepositories"),

		// Overlapping ranges: the blob once, never a multiple of it.
		decided(tnRefusal{who: "carol", what: "GET team-b/app's layer with 64 overlapping ranges", want: tnAnswer{Status: http.StatusOK},
			try: func(f *tenancy) tnAnswer {
				status, h, b := f.do("carol", http.MethodGet, "/v2/team-b/app/blobs/"+bLayer.String(), nil,
					map[string]string{"Range": "bytes=" + strings.TrimSuffix(strings.Repeat("0-,", 64), ",")})
				return tnAnswer{Status: status, Msg: fmt.Sprintf("%d bytes, %s", len(b), h.Get("Content-Length"))}
			},
			check: func(t *testing.T, f *tenancy, got tnAnswer) {
				n := len(f.images["team-b/app:v1"].plain)
				assert.Equal(t, fmt.Sprintf("%d bytes, %d", n, n), got.Msg, "the blob once")
			}}),
	}
}

// hiddenInPages pages through DescribeRepositories as user with every
// page size from 1 to 9 and counts how often hidden is named: in a page,
// or in a nextToken (opaque to the SDK, but base64 to whoever looks).
func (f *tenancy) hiddenInPages(user, hidden string) tnAnswer {
	seen := 0
	for n := int32(1); n <= 9; n++ {
		p := ecr.NewDescribeRepositoriesPaginator(f.ecr(user), &ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(n)})
		for p.HasMorePages() {
			out, err := p.NextPage(tnCtx)
			if err != nil {
				return tnAWSAnswer(err)
			}
			for _, r := range out.Repositories {
				if aws.ToString(r.RepositoryName) == hidden {
					seen++
				}
			}
			if tok, err := base64.RawURLEncoding.DecodeString(aws.ToString(out.NextToken)); err == nil && strings.Contains(string(tok), hidden) {
				seen++
			}
		}
	}
	return tnAnswer{Msg: fmt.Sprintf("[%s seen %d times]", hidden, seen)}
}

// lyingUpstream makes r run while the hostile upstream lies.
func (f *tenancy) lyingUpstream(r tnRefusal) tnRefusal {
	try := r.try
	r.try = func(f *tenancy) tnAnswer {
		f.lying.Store(true)
		defer f.lying.Store(false)
		return try(f)
	}
	return r
}

// tnSessionID is the upload session id at the end of an upload path.
func tnSessionID(path string) string {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return path[strings.LastIndexByte(path, '/')+1:]
}

// tnDecidedBy names the statement that must decide r's refusal.
func tnDecidedBy(r tnRefusal, statement string) tnRefusal { r.statement = statement; return r }

// tnNoDecision marks a row refused before any decision (an invalid
// request): the audit log has no record of it.
func tnNoDecision(r tnRefusal) tnRefusal { r.audit, r.action = tnAuditNone, ""; return r }

// catalog is user's /v2/_catalog: the status and the repositories, comma
// separated.
func (f *tenancy) catalog(user string) tnAnswer {
	status, h, b := f.do(user, http.MethodGet, "/v2/_catalog", nil, nil)
	a := tnParseOCI(status, h, b)
	if status == http.StatusOK {
		var out struct{ Repositories []string }
		require.NoError(f.t, json.Unmarshal(b, &out))
		a.Msg = "[" + strings.Join(out.Repositories, ",") + "]" // bracketed: a row's expected list matches it whole
	}
	return a
}

// oracleRefusals: a refused caller gets the same answer for what exists
// and what does not (the twins of rows above, and their own pairs).
func (f *tenancy) oracleRefusals() []tnRefusal {
	img := f.images["team-a/app:v1"]
	absent := digest.FromString("no such blob")
	get := func(who, path string) func(f *tenancy) tnAnswer {
		return func(f *tenancy) tnAnswer { return f.ociAnswer(who, http.MethodGet, path, nil, nil) }
	}
	describe := func(repo string) func(c *ecr.Client) error {
		return func(c *ecr.Client) error {
			_, err := c.DescribeRepositories(tnCtx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
			return err
		}
	}
	images := func(tag string) func(c *ecr.Client) error {
		return func(c *ecr.Client) error {
			_, err := c.DescribeImages(tnCtx, &ecr.DescribeImagesInput{RepositoryName: aws.String("team-a/app"),
				ImageIds: []types.ImageIdentifier{{ImageTag: aws.String(tag)}}})
			return err
		}
	}
	oracle := func(r tnRefusal, name string) tnRefusal { r.oracle = name; return r }
	denied := tnAWS("AccessDeniedException")
	return []tnRefusal{
		oracle(tnRefusal{who: "mallory", what: "GET a manifest of team-a/app", try: get("mallory", "/v2/team-a/app/manifests/v1"), want: tnDenied, action: "ecr:BatchGetImage"}, "manifest, repository"),
		oracle(tnRefusal{who: "mallory", what: "GET a manifest of team-a/missing", try: get("mallory", "/v2/team-a/missing/manifests/v1"), want: tnDenied, action: "ecr:BatchGetImage"}, "manifest, repository"),
		oracle(tnRefusal{who: "mallory", what: "GET team-a/app:v1", try: get("mallory", "/v2/team-a/app/manifests/v1"), want: tnDenied, action: "ecr:BatchGetImage"}, "manifest, tag"),
		oracle(tnRefusal{who: "mallory", what: "GET team-a/app:missing", try: get("mallory", "/v2/team-a/app/manifests/missing"), want: tnDenied, action: "ecr:BatchGetImage"}, "manifest, tag"),
		oracle(tnRefusal{who: "mallory", what: "GET a blob team-a/app holds", try: get("mallory", "/v2/team-a/app/blobs/"+img.layer.String()), want: tnDenied, action: "ecr:GetDownloadUrlForLayer"}, "blob"),
		oracle(tnRefusal{who: "mallory", what: "GET a blob team-a/app lacks", try: get("mallory", "/v2/team-a/app/blobs/"+absent.String()), want: tnDenied, action: "ecr:GetDownloadUrlForLayer"}, "blob"),
		oracle(tnRefusal{who: "", what: "GET a manifest of team-a/app", try: get("", "/v2/team-a/app/manifests/v1"), want: tnUnauthorized, action: "ecr:BatchGetImage"}, "anonymous manifest"),
		oracle(tnRefusal{who: "", what: "GET a manifest of team-a/missing", try: get("", "/v2/team-a/missing/manifests/v1"), want: tnUnauthorized, action: "ecr:BatchGetImage"}, "anonymous manifest"),
		oracle(tnECR("mallory", "DescribeRepositories team-a/app", describe("team-a/app"), denied, "ecr:DescribeRepositories"), "describe repository"),
		oracle(tnECR("mallory", "DescribeRepositories team-a/missing", describe("team-a/missing"), denied, "ecr:DescribeRepositories"), "describe repository"),
		oracle(tnECR("mallory", "DescribeImages team-a/app:v1", images("v1"), denied, "ecr:DescribeImages"), "describe image"),
		oracle(tnECR("mallory", "DescribeImages team-a/app:missing", images("missing"), denied, "ecr:DescribeImages"), "describe image"),
	}
}

// plantedRefusals run after the grants, over what they made: alice's
// artifact naming team-b/app:v1 as its subject (a signature, say) lives
// in team-a/app and is no referrer of team-b/app's image there.
func (f *tenancy) plantedRefusals() []tnRefusal {
	referrers := func(who string) func(f *tenancy) tnAnswer {
		return func(f *tenancy) tnAnswer {
			status, h, b := f.do(who, http.MethodGet, "/v2/team-b/app/referrers/"+f.images["team-b/app:v1"].digest.String(), nil, nil)
			a := tnParseOCI(status, h, b)
			if status == http.StatusOK {
				var idx struct{ Manifests []json.RawMessage }
				require.NoError(f.t, json.Unmarshal(b, &idx))
				a.Msg = fmt.Sprintf("[%d referrers]", len(idx.Manifests))
			}
			return a
		}
	}
	var rows []tnRefusal
	for _, who := range []string{"bob", "carol"} {
		rows = append(rows, tnRefusal{who: who, what: "list team-b/app:v1's referrers: alice's artifact in team-a/app is not one", audit: tnAuditDecision,
			want: tnAnswer{Status: http.StatusOK, Msg: "[0 referrers]"}, try: referrers(who)})
	}
	return rows
}
