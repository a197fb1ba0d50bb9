package server

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoginTokens(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "token.key")
	a, err := newLoginTokens(keyFile)
	require.NoError(t, err)
	fi, err := os.Stat(keyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	tok, exp := a.mint("alice")
	assert.WithinDuration(t, time.Now().Add(12*time.Hour), exp, 2*time.Second)
	user, ok := a.check(tok)
	assert.True(t, ok)
	assert.Equal(t, "alice", user, "the token carries its user")
	anonTok, _ := a.mint("")
	user, ok = a.check(anonTok)
	assert.True(t, ok)
	assert.Empty(t, user)

	// The key file makes tokens outlive a restart; another key does not
	// accept them.
	again, err := newLoginTokens(keyFile)
	require.NoError(t, err)
	_, ok = again.check(tok)
	assert.True(t, ok)
	other, err := newLoginTokens("")
	require.NoError(t, err)
	_, ok = other.check(tok)
	assert.False(t, ok)

	// Expired, altered and malformed tokens are refused.
	late := *a
	late.now = func() time.Time { return time.Now().Add(12*time.Hour + time.Minute) }
	_, ok = late.check(tok)
	assert.False(t, ok)
	for _, bad := range []string{"", "berth1.", "berth1..", "berth1.x.y", tok + "A", strings.Replace(tok, "berth1.", "berth2.", 1),
		tok[:len(tok)-2], "berth1." + strings.Repeat("A", 300)} {
		_, ok := a.check(bad)
		assert.False(t, ok, "%q", bad)
	}
	// A forged expiry or user with the old MAC.
	p64, m64, _ := strings.Cut(strings.TrimPrefix(tok, "berth1."), ".")
	payload, err := base64.RawURLEncoding.DecodeString(p64)
	require.NoError(t, err)
	for _, forged := range [][]byte{append([]byte{0xff}, payload[1:]...), append(payload[:8:8], "root"...)} {
		_, ok = a.check("berth1." + base64.RawURLEncoding.EncodeToString(forged) + "." + m64)
		assert.False(t, ok)
	}

	require.NoError(t, os.WriteFile(keyFile, []byte("short"), 0o600))
	_, err = newLoginTokens(keyFile)
	require.ErrorIs(t, err, ErrTokenKey)
}

func TestLoadECRCredentials(t *testing.T) {
	tests := []struct {
		name, text string
		ok         bool
	}{
		{"two keys and a comment", "# keys\nAKIA1:secret/one\n\nAKIA2:two+secret:alice\n", true},
		{"no colon", "AKIA1\n", false},
		{"too many fields", "AKIA1:s:u:x\n", false},
		{"bad user", "AKIA1:s:al ice\n", false},
		{"empty secret", "AKIA1:\n", false},
		{"space in the key id", "AK IA:s\n", false},
		{"duplicate", "A:s\nA:t\n", false},
		{"empty file", "# nothing\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "creds")
			require.NoError(t, os.WriteFile(p, []byte(tt.text), 0o600))
			c, err := loadECRCredentials(p)
			if !tt.ok {
				require.ErrorIs(t, err, ErrECRCredentials)
				return
			}
			require.NoError(t, err)
			s, ok := c.lookup("AKIA2")
			require.True(t, ok)
			assert.Equal(t, "two+secret", s)
			assert.Equal(t, "alice", c.user("AKIA2"))
			assert.Equal(t, "AKIA1", c.user("AKIA1"), "the user defaults to the key ID")
			_, ok = c.lookup("nope")
			assert.False(t, ok)
		})
	}
	_, err := loadECRCredentials(filepath.Join(t.TempDir(), "missing"))
	require.ErrorIs(t, err, ErrECRCredentials)
}

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

// ecrDo sends one ECR API call to h (no signature: the server has no
// credentials and no htpasswd, so the API is open).
func ecrDo(h http.Handler, op string, body string) *httptest.ResponseRecorder {
	return do(h, http.MethodPost, "/", []byte(body), map[string]string{
		"X-Amz-Target": ecrTargetPrefix + op, "Content-Type": ecrContentType})
}

func TestECRErrorsOnTheWire(t *testing.T) {
	srv, _ := newTestHandler(t, Config{})
	h := srv.Handler()
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
		{"DescribeRegistry", `{}`, 400, "UnknownOperationException"},
	}
	for _, tt := range tests {
		t.Run(tt.op+" "+tt.body, func(t *testing.T) {
			rec := ecrDo(h, tt.op, tt.body)
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			assert.Equal(t, tt.typ, rec.Header().Get("X-Amzn-ErrorType"))
			assert.Equal(t, ecrContentType, rec.Header().Get("Content-Type"))
			var eb ecrErrorBody
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &eb))
			assert.Equal(t, tt.typ, eb.Type)
			assert.NotEmpty(t, eb.Message)
			assert.NotEmpty(t, rec.Header().Get("X-Amzn-RequestId"))
		})
	}
	// Each call is counted by operation and result; operations Berth does
	// not serve count as unknown.
	require.Equal(t, 200, ecrDo(h, "DescribeRepositories", `{}`).Code)
	metrics := do(h, http.MethodGet, "/metrics", nil, nil).Body.String()
	assert.Contains(t, metrics, `berth_ecr_calls_total{operation="DescribeRepositories",result="RepositoryNotFoundException"} 1`)
	assert.Contains(t, metrics, `berth_ecr_calls_total{operation="DescribeRepositories",result="ok"} 1`)
	assert.Contains(t, metrics, `berth_ecr_calls_total{operation="unknown",result="UnknownOperationException"} 1`)

	// A body over the limit is refused before it is read whole.
	big := `{"repositoryName":"a","x":"` + strings.Repeat("x", maxECRBody) + `"}`
	rec := ecrDo(h, "CreateRepository", big)
	assert.Equal(t, "LimitExceededException", rec.Header().Get("X-Amzn-ErrorType"))
}

// FuzzECRAPI sends random operations and bodies to the ECR API: it must
// never panic, never answer 5xx (the store does not fail here), and every
// error must be an AWS JSON error with its type.
func FuzzECRAPI(f *testing.F) {
	srv, _ := newTestHandler(f, Config{MaxManifestSize: 1 << 16})
	h := srv.Handler()
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
	} {
		f.Add(seed.op, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		if !validHeader("X-Amz-Target", ecrTargetPrefix+op) {
			return
		}
		rec := ecrDo(h, op, string(body))
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", op, body, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 {
			var eb ecrErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Type == "" || eb.Type != rec.Header().Get("X-Amzn-ErrorType") {
				t.Fatalf("%s %q: %d with a body that is no AWS error: %q", op, body, rec.Code, rec.Body.String())
			}
		}
	})
}
