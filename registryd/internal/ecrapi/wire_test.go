package ecrapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/registryd/internal/regtest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of the wire tests")

// wireCall is one ECR API call of the wire script. Its body may name
// values that earlier answers gave: {{nextToken}}, {{uploadId}}, and the
// digests the script pushed ({{config}}, {{layer}}, {{m1}}, {{m2}},
// {{untagged}}).
type wireCall struct{ op, body string }

// wireVolatile are the answers' fields whose values change from run to
// run (times and tokens); the golden file holds a placeholder.
var wireVolatile = regexp.MustCompile(`"(createdAt|updatedAt|imagePushedAt|expiresAt|lastRecordedPullTime|lastArchivedAt|lastActivatedAt|authorizationToken)":("[^"]*"|[0-9.]+)`)

// TestECRWireGolden pins the ECR API's answers byte for byte: a script of
// calls over every operation, their errors and their pages runs against a
// fresh registry and each answer (status, error type, body) is compared
// with testdata/ecr-wire.golden (bodies with their keys sorted: the
// order of keys is no part of the protocol). go test -run ECRWireGolden -update
// rewrites the file after a deliberate change.
func TestECRWireGolden(t *testing.T) {
	a := newTestAPI(t)
	h := a.API
	vars := map[string]string{}

	// Content for the image calls.
	config := a.pushBlob(t, "team/app", []byte(`{"os":"linux"}`))
	layer := a.pushBlob(t, "team/app", []byte("layer bytes"))
	m1 := regtest.ImageManifest(config, layer, 14, 11, nil, "")
	m2 := regtest.ImageManifest(config, layer, 14, 11, nil, "application/vnd.example")
	m3 := regtest.ImageManifest(config, config, 14, 14, nil, "")
	m1d := digest.FromBytes(m1)
	sig := regtest.ImageManifest(config, layer, 14, 11, &m1d, "application/vnd.example.signature")
	for _, p := range []struct {
		ref string
		m   []byte
	}{{"v1", m1}, {"v2", m2}, {digest.FromBytes(m3).String(), m3}, {"latest", m1}} {
		a.pushManifest(t, "team/app", p.ref, p.m)
	}
	vars["config"], vars["layer"] = config.String(), layer.String()
	vars["m1"], vars["m2"], vars["untagged"] = digest.FromBytes(m1).String(), digest.FromBytes(m2).String(), digest.FromBytes(m3).String()
	vars["m1json"] = jsonString(string(m1))
	vars["sigjson"] = jsonString(string(sig))
	// A manifest without a mediaType, and an index whose child the
	// repository does not hold.
	vars["bareJSON"] = jsonString(strings.Replace(string(m3), `"mediaType":"application/vnd.oci.image.manifest.v1+json",`, "", 1))
	vars["orphanIndex"] = jsonString(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("1", 64) + `","size":2}]}`)
	newLayer := []byte("a layer uploaded in parts")
	vars["newLayer"] = digest.FromBytes(newLayer).String()
	vars["part1"] = jsonString(string(b64(newLayer[:10])))
	vars["part2"] = jsonString(string(b64(newLayer[10:])))
	const arn = "arn:aws:ecr:us-east-1:000000000000:repository/team/app"
	lifecycle := jsonString(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	denyAnonymous := jsonString(`{"Version":"2012-10-17","Statement":[{"Sid":"no","Effect":"Deny","Principal":"*","Action":["ecr:DescribeImages","ecr:DescribeRepositories"]}]}`)

	script := []wireCall{
		// Repositories.
		{"CreateRepository", `{"repositoryName":"team/app"}`},
		{"CreateRepository", `{"repositoryName":"team/full","imageTagMutability":"IMMUTABLE_WITH_EXCLUSION","imageTagMutabilityExclusionFilters":[{"filter":"latest","filterType":"WILDCARD"}],"imageScanningConfiguration":{"scanOnPush":false},"encryptionConfiguration":{"encryptionType":"AES256"},"tags":[{"Key":"team","Value":"a"}]}`},
		{"CreateRepository", `{"repositoryName":"team/scan","imageScanningConfiguration":{"scanOnPush":true}}`},
		{"CreateRepository", `{"repositoryName":"team/dsse","encryptionConfiguration":{"encryptionType":"KMS_DSSE"}}`},
		{"CreateRepository", `{"repositoryName":"team/kms","encryptionConfiguration":{"encryptionType":"KMS"}}`},
		{"CreateRepository", `{"repositoryName":"team/odd","someParameter":1}`},
		{"CreateRepository", `{"repositoryName":"team/tags","tags":[{"Key":"aws:x","Value":"v"}]}`},
		{"DeleteRepository", `{"repositoryName":"team/kms"}`},
		{"CreateRepository", `{"repositoryName":"other"}`},
		{"CreateRepository", `{"repositoryName":"other"}`},
		{"CreateRepository", `{"repositoryName":"Bad Name"}`},
		{"CreateRepository", `{"repositoryName":"x","imageTagMutability":"SOMETIMES"}`},
		{"CreateRepository", `{"registryId":"123456789012","repositoryName":"x"}`},
		{"CreateRepository", `{}`},
		{"CreateRepository", `not json`},
		{"DescribeRepositories", `{}`},
		{"DescribeRepositories", `{"maxResults":2}`},
		{"DescribeRepositories", `{"maxResults":2,"nextToken":"{{nextToken}}"}`},
		{"DescribeRepositories", `{"nextToken":"!!"}`},
		{"DescribeRepositories", `{"maxResults":0}`},
		{"DescribeRepositories", `{"repositoryNames":["team/full","other"]}`},
		{"DescribeRepositories", `{"repositoryNames":["nope"]}`},
		{"DescribeRepositories", `{"repositoryNames":["other"],"maxResults":1}`},
		{"PutImageTagMutability", `{"repositoryName":"other","imageTagMutability":"IMMUTABLE"}`},
		{"PutImageTagMutability", `{"repositoryName":"other","imageTagMutability":"MUTABLE_WITH_EXCLUSION","imageTagMutabilityExclusionFilters":[{"filter":"rc-*","filterType":"WILDCARD"}]}`},
		{"PutImageTagMutability", `{"repositoryName":"other"}`},
		{"PutImageTagMutability", `{"repositoryName":"nope","imageTagMutability":"IMMUTABLE"}`},
		{"PutImageScanningConfiguration", `{"repositoryName":"other","imageScanningConfiguration":{"scanOnPush":true}}`},
		{"PutImageScanningConfiguration", `{"repositoryName":"other","imageScanningConfiguration":{"scanOnPush":false}}`},
		{"PutImageScanningConfiguration", `{"repositoryName":"other"}`},
		// Resource tags.
		{"TagResource", `{"resourceArn":"` + arn + `","tags":[{"Key":"k","Value":"v"},{"Key":"a","Value":"b"}]}`},
		{"ListTagsForResource", `{"resourceArn":"` + arn + `"}`},
		{"UntagResource", `{"resourceArn":"` + arn + `","tagKeys":["k"]}`},
		{"ListTagsForResource", `{"resourceArn":"` + arn + `"}`},
		{"ListTagsForResource", `{"resourceArn":"arn:aws:ecr:us-east-1:000000000000:repository/other"}`},
		{"ListTagsForResource", `{"resourceArn":"arn:aws:ecr:eu-west-1:000000000000:repository/other"}`},
		{"ListTagsForResource", `{"resourceArn":"arn:aws:s3:::bucket"}`},
		{"ListTagsForResource", `{"resourceArn":"arn:aws:ecr:us-east-1:000000000000:repository/nope"}`},
		{"TagResource", `{"resourceArn":"` + arn + `","tags":[{"Key":"","Value":"v"}]}`},
		// Images.
		{"ListImages", `{"repositoryName":"team/app"}`},
		{"ListImages", `{"repositoryName":"team/app","filter":{"tagStatus":"TAGGED"}}`},
		{"ListImages", `{"repositoryName":"team/app","filter":{"tagStatus":"UNTAGGED"}}`},
		{"ListImages", `{"repositoryName":"team/app","filter":{"tagStatus":"SOME"}}`},
		{"ListImages", `{"repositoryName":"team/app","maxResults":2}`},
		{"ListImages", `{"repositoryName":"team/app","maxResults":2,"nextToken":"{{nextToken}}"}`},
		{"ListImages", `{"repositoryName":"nope"}`},
		{"DescribeImages", `{"repositoryName":"team/app"}`},
		{"DescribeImages", `{"repositoryName":"team/app","imageIds":[{"imageTag":"v1"},{"imageDigest":"{{m2}}"}]}`},
		{"DescribeImages", `{"repositoryName":"team/app","imageIds":[{"imageTag":"nope"}]}`},
		{"DescribeImages", `{"repositoryName":"team/app","imageIds":[{"imageDigest":"sha256:xyz"}]}`},
		{"DescribeImages", `{"repositoryName":"team/app","imageIds":[{"imageTag":"v1"}],"maxResults":1}`},
		{"DescribeImages", `{"repositoryName":"team/app","maxResults":1,"filter":{"tagStatus":"TAGGED"}}`},
		{"DescribeImages", `{"repositoryName":"team/app","maxResults":1,"nextToken":"{{nextToken}}","filter":{"tagStatus":"TAGGED"}}`},
		{"BatchGetImage", `{"repositoryName":"team/app","imageIds":[{"imageTag":"v1"},{"imageDigest":"{{m2}}"},{"imageTag":"nope"},{"imageDigest":"{{m2}}","imageTag":"v1"},{},{"imageTag":"-bad"}]}`},
		{"BatchGetImage", `{"repositoryName":"team/app","imageIds":[{"imageTag":"v1"}],"acceptedMediaTypes":["application/vnd.docker.distribution.manifest.v2+json"]}`},
		{"BatchGetImage", `{"repositoryName":"team/app","imageIds":[]}`},
		{"BatchGetImage", `{"repositoryName":"nope","imageIds":[{"imageTag":"v1"}]}`},
		{"PutImage", `{"repositoryName":"team/app","imageManifest":{{m1json}},"imageTag":"v3"}`},
		{"PutImage", `{"repositoryName":"team/app","imageManifest":{{m1json}},"imageTag":"v3"}`},
		{"PutImage", `{"repositoryName":"team/app","imageManifest":{{m1json}}}`},
		{"PutImage", `{"repositoryName":"team/app","imageManifest":{{m1json}},"imageDigest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}`},
		{"PutImage", `{"repositoryName":"team/app","imageManifest":{{m1json}},"imageTag":"-bad"}`},
		{"PutImage", `{"repositoryName":"team/app"}`},
		{"PutImage", `{"repositoryName":"team/full","imageManifest":{{m1json}},"imageTag":"v1"}`},
		{"PutImage", `{"repositoryName":"team/app","imageManifest":{{bareJSON}},"imageTag":"bare"}`},
		{"PutImage", `{"repositoryName":"team/app","imageManifest":{{bareJSON}},"imageTag":"bare","imageManifestMediaType":"application/vnd.docker.distribution.manifest.v2+json"}`},
		{"PutImage", `{"repositoryName":"team/app","imageManifest":{{bareJSON}},"imageTag":"bare","imageManifestMediaType":"application/vnd.oci.image.manifest.v1+json"}`},
		{"PutImage", `{"repositoryName":"team/app","imageManifest":{{orphanIndex}},"imageTag":"orphan"}`},
		{"PutImage", `{"repositoryName":"team/app","imageManifest":{{sigjson}}}`},
		{"ListImageReferrers", `{"repositoryName":"team/app","subjectId":{"imageDigest":"{{m1}}"}}`},
		{"ListImageReferrers", `{"repositoryName":"team/app","subjectId":{"imageDigest":"{{m1}}"},"filter":{"artifactTypes":["application/vnd.example.sbom"]}}`},
		{"ListImageReferrers", `{"repositoryName":"team/app","subjectId":{"imageDigest":"{{m1}}"},"filter":{"artifactStatus":"ARCHIVED"}}`},
		{"ListImageReferrers", `{"repositoryName":"team/app","subjectId":{"imageDigest":"{{m2}}"}}`},
		{"ListImageReferrers", `{"repositoryName":"team/app","subjectId":{"imageDigest":"nope"}}`},
		{"ListImageReferrers", `{"repositoryName":"team/app"}`},
		{"ListImageReferrers", `{"repositoryName":"team/app","subjectId":{"imageDigest":"{{m1}}"},"maxResults":51}`},
		{"ListImageReferrers", `{"repositoryName":"nope","subjectId":{"imageDigest":"{{m1}}"}}`},
		{"BatchDeleteImage", `{"repositoryName":"team/app","imageIds":[{"imageTag":"bare"}]}`},
		{"BatchCheckLayerAvailability", `{"repositoryName":"team/app","layerDigests":["{{layer}}","sha256:0000000000000000000000000000000000000000000000000000000000000000","nope"]}`},
		{"BatchCheckLayerAvailability", `{"repositoryName":"team/app","layerDigests":[]}`},
		{"BatchCheckLayerAvailability", `{"repositoryName":"nope","layerDigests":["{{layer}}"]}`},
		{"GetDownloadUrlForLayer", `{"repositoryName":"team/app","layerDigest":"{{layer}}"}`},
		{"GetDownloadUrlForLayer", `{"repositoryName":"team/app","layerDigest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}`},
		{"GetDownloadUrlForLayer", `{"repositoryName":"team/app","layerDigest":"nope"}`},
		// Layer uploads.
		{"InitiateLayerUpload", `{"repositoryName":"team/app"}`},
		{"CompleteLayerUpload", `{"repositoryName":"team/app","uploadId":"{{uploadId}}","layerDigests":["{{newLayer}}"]}`},
		{"UploadLayerPart", `{"repositoryName":"team/app","uploadId":"{{uploadId}}","partFirstByte":0,"partLastByte":9,"layerPartBlob":{{part1}}}`},
		{"UploadLayerPart", `{"repositoryName":"team/app","uploadId":"{{uploadId}}","partFirstByte":0,"partLastByte":14,"layerPartBlob":{{part2}}}`},
		{"UploadLayerPart", `{"repositoryName":"team/app","uploadId":"{{uploadId}}","partFirstByte":10,"partLastByte":24,"layerPartBlob":{{part2}}}`},
		{"UploadLayerPart", `{"repositoryName":"team/app","uploadId":"nope","partFirstByte":0,"partLastByte":0,"layerPartBlob":"AA=="}`},
		{"UploadLayerPart", `{"repositoryName":"team/app","uploadId":"{{uploadId}}"}`},
		{"CompleteLayerUpload", `{"repositoryName":"team/app","uploadId":"{{uploadId}}","layerDigests":["{{layer}}"]}`},
		{"CompleteLayerUpload", `{"repositoryName":"team/app","uploadId":"{{uploadId}}","layerDigests":["nope"]}`},
		{"CompleteLayerUpload", `{"repositoryName":"team/app","uploadId":"{{uploadId}}","layerDigests":["{{newLayer}}"]}`},
		{"InitiateLayerUpload", `{"repositoryName":"team/app"}`},
		{"UploadLayerPart", `{"repositoryName":"team/app","uploadId":"{{uploadId}}","partFirstByte":0,"partLastByte":9,"layerPartBlob":{{part1}}}`},
		{"CompleteLayerUpload", `{"repositoryName":"team/app","uploadId":"{{uploadId}}","layerDigests":["{{newLayer}}"]}`},
		{"InitiateLayerUpload", `{"repositoryName":"nope"}`},
		// Lifecycle policies and previews.
		{"GetLifecyclePolicy", `{"repositoryName":"team/app"}`},
		{"PutLifecyclePolicy", `{"repositoryName":"team/app","lifecyclePolicyText":` + lifecycle + `}`},
		{"PutLifecyclePolicy", `{"repositoryName":"team/app","lifecyclePolicyText":"{}"}`},
		{"GetLifecyclePolicy", `{"repositoryName":"team/app"}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"team/app"}`},
		{"StartLifecyclePolicyPreview", `{"repositoryName":"team/app"}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"team/app"}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"team/app","maxResults":1}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"team/app","maxResults":1,"nextToken":"{{nextToken}}"}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"team/app","filter":{"tagStatus":"UNTAGGED"}}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"team/app","imageIds":[{"imageTag":"v2"}]}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"team/app","imageIds":[{"imageDigest":"{{m1}}"},{"imageDigest":"{{m2}}","imageTag":"v1"}]}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"team/app","imageIds":[{"imageTag":"v2"}],"maxResults":1}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"team/app","imageIds":[]}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"team/app","imageIds":[{}]}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"team/app","maxResults":101}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"team/app","filter":{"tagStatus":"SOME"}}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"team/app","filter":{"tagStatus":"TAGGED"},"maxResults":1}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"no/such-repo"}`},
		{"StartLifecyclePolicyPreview", `{"repositoryName":"other","lifecyclePolicyText":` + lifecycle + `}`},
		{"StartLifecyclePolicyPreview", `{"repositoryName":"team/full"}`},
		{"DeleteLifecyclePolicy", `{"repositoryName":"team/app"}`},
		{"DeleteLifecyclePolicy", `{"repositoryName":"team/app"}`},
		// Repository policies.
		{"GetRepositoryPolicy", `{"repositoryName":"other"}`},
		{"SetRepositoryPolicy", `{"repositoryName":"other","policyText":"not json"}`},
		{"SetRepositoryPolicy", `{"repositoryName":"other","policyText":` + denyAnonymous + `}`},
		{"GetRepositoryPolicy", `{"repositoryName":"other"}`},
		{"DescribeRepositories", `{}`},
		{"DescribeRepositories", `{"repositoryNames":["other"]}`},
		{"DescribeImages", `{"repositoryName":"other"}`},
		{"DeleteRepositoryPolicy", `{"repositoryName":"other"}`},
		{"DeleteRepositoryPolicy", `{"repositoryName":"other"}`},
		// The archive storage class (v2 stays archived).
		{"UpdateImageStorageClass", `{"repositoryName":"team/app","imageId":{"imageTag":"v2"},"targetStorageClass":"ARCHIVE"}`},
		{"UpdateImageStorageClass", `{"repositoryName":"team/app","imageId":{"imageDigest":"{{m2}}"},"targetStorageClass":"ARCHIVE"}`},
		{"UpdateImageStorageClass", `{"repositoryName":"team/app","imageId":{"imageTag":"v2"},"targetStorageClass":"GLACIER"}`},
		{"UpdateImageStorageClass", `{"repositoryName":"team/app","imageId":{"imageTag":"nope"},"targetStorageClass":"ARCHIVE"}`},
		{"ListImages", `{"repositoryName":"team/app","filter":{"imageStatus":"ARCHIVED"}}`},
		{"ListImages", `{"repositoryName":"team/app","filter":{"imageStatus":"SOMETIMES"}}`},
		{"DescribeImages", `{"repositoryName":"team/app","filter":{"imageStatus":"ARCHIVED"}}`},
		{"BatchGetImage", `{"repositoryName":"team/app","imageIds":[{"imageTag":"v2"}]}`},
		// Deletes.
		{"BatchDeleteImage", `{"repositoryName":"team/app","imageIds":[{"imageTag":"v3"},{"imageTag":"nope"},{"imageDigest":"{{untagged}}"},{"imageDigest":"{{untagged}}"},{"imageDigest":"sha256:xyz"}]}`},
		{"BatchDeleteImage", `{"repositoryName":"team/app","imageIds":[{"imageTag":"v1"},{"imageTag":"latest"}]}`},
		{"BatchDeleteImage", `{"repositoryName":"team/app","imageIds":[]}`},
		{"ListImages", `{"repositoryName":"team/app"}`},
		// Creation templates.
		{"CreateRepositoryCreationTemplate", `{"prefix":"ROOT","appliedFor":["CREATE_ON_PUSH"]}`},
		{"CreateRepositoryCreationTemplate", `{"prefix":"team","description":"team repos","appliedFor":["CREATE_ON_PUSH","PULL_THROUGH_CACHE"],"imageTagMutability":"IMMUTABLE_WITH_EXCLUSION","imageTagMutabilityExclusionFilters":[{"filter":"dev-*","filterType":"WILDCARD"}],"resourceTags":[{"Key":"t","Value":"1"}],"lifecyclePolicy":` + lifecycle + `,"encryptionConfiguration":{"encryptionType":"AES256"}}`},
		{"CreateRepositoryCreationTemplate", `{"prefix":"roles","appliedFor":["CREATE_ON_PUSH"],"customRoleArn":"arn:aws:iam::000000000000:role/x"}`},
		{"CreateRepositoryCreationTemplate", `{"prefix":"mirror","appliedFor":["REPLICATION"]}`},
		{"CreateRepositoryCreationTemplate", `{"prefix":"team/","appliedFor":["CREATE_ON_PUSH"]}`},
		{"CreateRepositoryCreationTemplate", `{"prefix":"x","appliedFor":[]}`},
		{"UpdateRepositoryCreationTemplate", `{"prefix":"team","appliedFor":["CREATE_ON_PUSH"],"imageTagMutability":"IMMUTABLE"}`},
		{"UpdateRepositoryCreationTemplate", `{"prefix":"team","description":"appliedFor left out: kept"}`},
		{"UpdateRepositoryCreationTemplate", `{"prefix":"nope","appliedFor":["CREATE_ON_PUSH"]}`},
		{"UpdateRepositoryCreationTemplate", `{"prefix":"nope"}`},
		{"DescribeRepositoryCreationTemplates", `{}`},
		{"DescribeRepositoryCreationTemplates", `{"prefixes":["team/"]}`},
		{"DescribeRepositoryCreationTemplates", `{"maxResults":1}`},
		{"DescribeRepositoryCreationTemplates", `{"maxResults":1,"nextToken":"{{nextToken}}"}`},
		{"DeleteRepositoryCreationTemplate", `{"prefix":"team"}`},
		{"DeleteRepositoryCreationTemplate", `{"prefix":"team"}`},
		// Login.
		{"GetAuthorizationToken", `{}`},
		{"GetAuthorizationToken", `{"registryIds":["000000000000"]}`},
		{"GetAuthorizationToken", `{"registryIds":["123456789012"]}`},
		// Pull-through cache rules.
		{"CreatePullThroughCacheRule", `{"ecrRepositoryPrefix":"hub","upstreamRegistryUrl":"registry-1.docker.io","upstreamRepositoryPrefix":"library"}`},
		{"CreatePullThroughCacheRule", `{"ecrRepositoryPrefix":"hub","upstreamRegistryUrl":"registry-1.docker.io"}`},
		{"CreatePullThroughCacheRule", `{"ecrRepositoryPrefix":"q","upstreamRegistryUrl":"registry-1.docker.io"}`},
		{"CreatePullThroughCacheRule", `{"ecrRepositoryPrefix":"quay","upstreamRegistryUrl":"quay.io","credentialArn":"arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/x"}`},
		{"CreatePullThroughCacheRule", `{"ecrRepositoryPrefix":"ghcr","upstreamRegistryUrl":"https://ghcr.io"}`},
		{"DescribePullThroughCacheRules", `{}`},
		{"DescribePullThroughCacheRules", `{"ecrRepositoryPrefixes":["hub"]}`},
		{"DescribePullThroughCacheRules", `{"ecrRepositoryPrefixes":["nope"]}`},
		{"DescribePullThroughCacheRules", `{"maxResults":1}`},
		{"DescribePullThroughCacheRules", `{"maxResults":1,"nextToken":"{{nextToken}}"}`},
		{"DeletePullThroughCacheRule", `{"ecrRepositoryPrefix":"hub"}`},
		{"DeletePullThroughCacheRule", `{"ecrRepositoryPrefix":"hub"}`},
		// Repository deletion and the protocol's own errors.
		{"DeleteRepository", `{"repositoryName":"team/app"}`},
		{"DeleteRepository", `{"repositoryName":"team/app","force":true}`},
		{"DeleteRepository", `{"repositoryName":"team/app"}`},
		// The registry policy, DescribeRegistry, and an operation Berth
		// does not serve.
		{"GetRegistryPolicy", `{}`},
		{"PutRegistryPolicy", `{"policyText":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"NoImport\",\"Effect\":\"Deny\",\"Principal\":{\"AWS\":\"arn:aws:iam::000000000000:user/bob\"},\"Action\":\"ecr:BatchImportUpstreamImage\",\"Resource\":\"*\"}]}"}`},
		{"GetRegistryPolicy", `{}`},
		{"PutRegistryPolicy", `{"policyText":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"ecr:PutImage\",\"Resource\":\"*\"}]}"}`},
		{"PutRegistryPolicy", `{"policyText":""}`},
		{"DeleteRegistryPolicy", `{}`},
		{"DeleteRegistryPolicy", `{}`},
		{"DescribeRegistry", `{}`},
		{"DescribeRegistry", `{"registryId":"000000000000"}`},
		// Replication (the wire test's registry names no destination).
		{"PutReplicationConfiguration", `{"replicationConfiguration":{"rules":[{"destinations":[{"region":"eu-west-1","registryId":"111122223333"}],"repositoryFilters":[{"filter":"prod/","filterType":"PREFIX_MATCH"}]}]}}`},
		{"PutReplicationConfiguration", `{"replicationConfiguration":{"rules":[{"destinations":[{"region":"eu-west-1","registryId":"111122223333"}],"repositoryFilters":[{"filter":"prod/","filterType":"WILDCARD"}]}]}}`},
		{"PutReplicationConfiguration", `{}`},
		{"PutReplicationConfiguration", `{"replicationConfiguration":{"rules":[]}}`},
		{"DescribeImageReplicationStatus", `{"repositoryName":"team/app","imageId":{"imageTag":"nope"}}`},
		// Account settings.
		{"GetAccountSetting", `{"name":"REGISTRY_POLICY_SCOPE"}`},
		{"GetAccountSetting", `{"name":"BLOB_MOUNTING"}`},
		{"GetAccountSetting", `{"name":"BASIC_SCAN_TYPE_VERSION"}`},
		{"GetAccountSetting", `{"name":"NOPE"}`},
		{"GetAccountSetting", `{}`},
		{"PutAccountSetting", `{"name":"BLOB_MOUNTING","value":"DISABLED"}`},
		{"GetAccountSetting", `{"name":"BLOB_MOUNTING"}`},
		{"PutAccountSetting", `{"name":"REGISTRY_POLICY_SCOPE","value":"V3"}`},
		{"PutAccountSetting", `{"name":"BASIC_SCAN_TYPE_VERSION","value":"AWS_NATIVE"}`},
		{"PutAccountSetting", `{"name":"BLOB_MOUNTING"}`},
		// Scanning (no image is pushed after these).
		{"GetRegistryScanningConfiguration", `{}`},
		{"PutRegistryScanningConfiguration", `{"scanType":"BASIC","rules":[{"scanFrequency":"CONTINUOUS_SCAN","repositoryFilters":[{"filter":"*","filterType":"WILDCARD"}]}]}`},
		{"PutRegistryScanningConfiguration", `{"scanType":"DEEP"}`},
		{"PutRegistryScanningConfiguration", `{"scanType":"BASIC","rules":[{"scanFrequency":"SCAN_ON_PUSH","repositoryFilters":[]}]}`},
		{"PutRegistryScanningConfiguration", `{"scanType":"BASIC","rules":[{"scanFrequency":"SCAN_ON_PUSH","repositoryFilters":[{"filter":"team/*","filterType":"WILDCARD"}]}]}`},
		{"GetRegistryScanningConfiguration", `{}`},
		{"BatchGetRepositoryScanningConfiguration", `{"repositoryNames":["team/app","nope"]}`},
		{"BatchGetRepositoryScanningConfiguration", `{"repositoryNames":[]}`},
		{"DescribeImageScanFindings", `{"repositoryName":"team/app","imageId":{"imageTag":"v1"}}`},
		{"DescribeImageScanFindings", `{"repositoryName":"team/app","imageId":{"imageTag":"v1"},"maxResults":1001}`},
		{"StartImageScan", `{"repositoryName":"nope","imageId":{"imageTag":"v1"}}`},
		{"StartImageScan", `{"repositoryName":"team/app"}`},
		{"PutSigningConfiguration", `{"signingConfiguration":{"rules":[]}}`},
	}

	var out bytes.Buffer
	for i, c := range script {
		body := c.body
		for k, v := range vars {
			body = strings.ReplaceAll(body, "{{"+k+"}}", v)
		}
		require.NotContains(t, body, "{{", "call %d %s: unknown variable", i, c.op)
		rec := ecrDo(h, c.op, body)
		ans := canonicalJSON(t, rec.Body.Bytes())
		var fields map[string]any
		if json.Unmarshal(rec.Body.Bytes(), &fields) == nil {
			if v, ok := fields["uploadId"].(string); ok {
				vars["uploadId"] = v
			}
			if v, ok := fields["nextToken"].(string); ok {
				vars["nextToken"] = v
			}
		}
		if id := vars["uploadId"]; id != "" {
			ans = strings.ReplaceAll(ans, id, "<uploadId>")
		}
		ans = wireVolatile.ReplaceAllString(ans, `"$1":"<volatile>"`)
		fmt.Fprintf(&out, "%s %s\n-> %d %s %s\n%s\n\n", c.op, c.body, rec.Code, rec.Header().Get("X-Amzn-ErrorType"), rec.Header().Get("Content-Type"), ans)
	}
	golden := filepath.Join("testdata", "ecr-wire.golden")
	if *updateGolden {
		require.NoError(t, os.WriteFile(golden, out.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), out.String())
}

// canonicalJSON is b with its object keys sorted, so that answers compare
// by content (keys, values, null and [] told apart), not by key order.
func canonicalJSON(t *testing.T, b []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v), "answer is not JSON: %s", b)
	out, err := json.Marshal(v)
	require.NoError(t, err)
	return string(out)
}

// jsonString is s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// b64 is the JSON encoding of p (a base64 string, quotes stripped).
func b64(p []byte) []byte {
	b, _ := json.Marshal(p)
	return bytes.Trim(b, `"`)
}
