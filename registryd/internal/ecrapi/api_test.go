package ecrapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/registryd/internal/regtest"
)

func TestPaginate(t *testing.T) {
	items := []string{"a", "b", "c", "d", "e"}
	id := func(s string) string { return s }
	var got []string
	tok := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		page, next, err := paginate(items, id, tok, 2)
		require.NoError(t, err)
		got = append(got, page...)
		if next == "" {
			break
		}
		tok = next
	}
	assert.Equal(t, items, got)
	_, _, err := paginate(items, id, "!!not base64", 2)
	require.Error(t, err)
	// An item deleted between pages does not stop the walk.
	page, next, err := paginate([]string{"a", "c"}, id, pageToken("b"), 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"c"}, page)
	assert.Empty(t, next)
}

func TestECRErrorsOnTheWire(t *testing.T) {
	a := newTestAPI(t)
	h := a.API
	tests := []struct {
		op, body string
		status   int
		typ      string
	}{
		{"DescribeRepositories", `{"repositoryNames":["nope"]}`, 400, "RepositoryNotFoundException"},
		{"DescribeRepositories", `{"maxResults":0}`, 400, "InvalidParameterException"},
		{"DescribeRepositories", `{"registryId":"123456789012"}`, 400, "InvalidParameterException"},
		{"CreateRepository", `{"repositoryName":"UPPER"}`, 400, "InvalidParameterException"},
		{"CreateRepository", `{"repositoryName":"a","imageTagMutability":"SOMETIMES"}`, 400, "InvalidParameterException"},
		{"CreateRepository", `not json`, 400, "SerializationException"},
		{"ListImages", `{"repositoryName":"nope"}`, 400, "RepositoryNotFoundException"},
		{"BatchGetImage", `{"repositoryName":"nope","imageIds":[]}`, 400, "InvalidParameterException"},
		{"GetLifecyclePolicy", `{"repositoryName":"nope"}`, 400, "RepositoryNotFoundException"},
		{"DeleteRepositoryCreationTemplate", `{"prefix":"nope"}`, 400, "TemplateNotFoundException"},
		{"TagResource", `{"resourceArn":"arn:aws:s3:::bucket","tags":[]}`, 400, "InvalidParameterException"},
		{"UploadLayerPart", `{"repositoryName":"a","uploadId":"x"}`, 400, "InvalidParameterException"},
		{"PutSigningConfiguration", `{}`, 400, "UnknownOperationException"},
	}
	for _, tt := range tests {
		t.Run(tt.op+" "+tt.body, func(t *testing.T) {
			rec := ecrDo(h, tt.op, tt.body)
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			assert.Equal(t, tt.typ, rec.Header().Get("X-Amzn-ErrorType"))
			assert.Equal(t, ContentType, rec.Header().Get("Content-Type"))
			var eb errorBody
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &eb))
			assert.Equal(t, tt.typ, eb.Type)
			assert.NotEmpty(t, eb.Message)
			assert.NotEmpty(t, rec.Header().Get("X-Amzn-RequestId"))
		})
	}
	// Each call is counted by operation and result; operations Berth does
	// not serve count as unknown.
	require.Equal(t, 200, ecrDo(h, "DescribeRepositories", `{}`).Code)
	metrics := a.scrape()
	assert.Contains(t, metrics, `berth_ecr_calls_total{operation="DescribeRepositories",result="RepositoryNotFoundException"} 1`)
	assert.Contains(t, metrics, `berth_ecr_calls_total{operation="DescribeRepositories",result="ok"} 1`)
	assert.Contains(t, metrics, `berth_ecr_calls_total{operation="unknown",result="UnknownOperationException"} 1`)

	// A body over the operation's limit is refused before it is read
	// whole.
	big := `{"repositoryName":"a","x":"` + strings.Repeat("x", maxCallBody) + `"}`
	rec := ecrDo(h, "CreateRepository", big)
	assert.Equal(t, "LimitExceededException", rec.Header().Get("X-Amzn-ErrorType"))
}

// TestBodyLimits: each operation's body limit, from ECR's limits and the
// registry's manifest limit.
func TestBodyLimits(t *testing.T) {
	l := newBodyLimits(4 << 20)
	assert.Equal(t, int64(64<<20), l.of("UploadLayerPart"), "a 48 MiB part, base64-encoded")
	assert.Equal(t, int64(6*(4<<20)+64<<10), l.of("PutImage"), "a manifest escaped in a JSON string")
	assert.Equal(t, int64(1<<20), l.of("CreateRepository"))
	assert.Equal(t, int64(1<<20), l.of("NoSuchOperation"))
	assert.Equal(t, int64(6*(1<<10)+64<<10), newBodyLimits(1<<10).of("PutImage"))
	assert.Equal(t, l, newBodyLimits(0), "the default manifest limit")
}

// FuzzECRAPI sends random operations and bodies to the ECR API: it must
// never panic, never answer 5xx (the store does not fail here), and every
// error must be an AWS JSON error with its type.
func FuzzECRAPI(f *testing.F) {
	h := newTestAPI(f).API
	for _, seed := range []struct{ op, body string }{
		{"CreateRepository", `{"repositoryName":"r","imageTagMutability":"IMMUTABLE_WITH_EXCLUSION","imageTagMutabilityExclusionFilters":[{"filter":"l*","filterType":"WILDCARD"}]}`},
		{"DescribeRepositories", `{"maxResults":1,"nextToken":"cg"}`},
		{"PutImage", `{"repositoryName":"r","imageManifest":"{\"schemaVersion\":2}","imageTag":"v1"}`},
		{"ListImages", `{"repositoryName":"r","filter":{"tagStatus":"UNTAGGED"}}`},
		{"DescribeImages", `{"repositoryName":"r","imageIds":[{"imageTag":"v1"}]}`},
		{"BatchGetImage", `{"repositoryName":"r","imageIds":[{"imageDigest":"sha256:00"}]}`},
		{"BatchDeleteImage", `{"repositoryName":"r","imageIds":[{"imageTag":"v1","imageDigest":"x"}]}`},
		{"UploadLayerPart", `{"repositoryName":"r","uploadId":"u","partFirstByte":0,"partLastByte":1,"layerPartBlob":"AAA="}`},
		{"CompleteLayerUpload", `{"repositoryName":"r","uploadId":"u","layerDigests":["sha256:00"]}`},
		{"StartLifecyclePolicyPreview", `{"repositoryName":"r","lifecyclePolicyText":"{\"rules\":[]}"}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"r","maxResults":100}`},
		{"CreateRepositoryCreationTemplate", `{"prefix":"ROOT","appliedFor":["CREATE_ON_PUSH"]}`},
		{"TagResource", `{"resourceArn":"arn:aws:ecr:us-east-1:000000000000:repository/r","tags":[{"Key":"k","Value":"v"}]}`},
		{"GetAuthorizationToken", `{"registryIds":["000000000000"]}`},
		{"CreatePullThroughCacheRule", `{"ecrRepositoryPrefix":"hub","upstreamRegistryUrl":"http://127.0.0.1:1","upstreamRepositoryPrefix":"library"}`},
		{"DescribePullThroughCacheRules", `{"ecrRepositoryPrefixes":["hub"],"maxResults":1}`},
		{"DeletePullThroughCacheRule", `{"ecrRepositoryPrefix":"ROOT"}`},
		{"PutAccountSetting", `{"name":"BLOB_MOUNTING","value":"DISABLED"}`},
		{"GetAccountSetting", `{"name":"REGISTRY_POLICY_SCOPE"}`},
		{"ListImageReferrers", `{"repositoryName":"r","subjectId":{"imageDigest":"sha256:00"},"filter":{"artifactStatus":"ANY"}}`},
		{"SetRepositoryPolicy", `{"repositoryName":"r","policyText":"{\"Version\":\"2012-10-17\",\"Statement\":[]}","force":false}`},
		{"CreateRepository", `{"repositoryName":"r","unknown":{"deep":[1]}}`},
	} {
		f.Add(seed.op, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		if !regtest.ValidHeader("X-Amz-Target", TargetPrefix+op) {
			return
		}
		rec := ecrDo(h, op, string(body))
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", op, body, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 {
			var eb errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Type == "" || eb.Type != rec.Header().Get("X-Amzn-ErrorType") {
				t.Fatalf("%s %q: %d with a body that is no AWS error: %q", op, body, rec.Code, rec.Body.String())
			}
		}
	})
}
