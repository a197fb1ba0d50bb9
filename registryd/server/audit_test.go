package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/regtest"
)

// The access keys of the audit tests: one for alice, one for bob.
const (
	aliceKey, aliceSecret = "AKIAAUDITALICE000001", "alice-secret"
	bobKey, bobSecret     = "AKIAAUDITBOB00000001", "bob-secret"
	auditUserAgent        = "audit-test/1.0"
)

// auditServer is a live server (on 127.0.0.1) with authentication on:
// htpasswd users alice and bob (password "pw"), and an access key for
// each on the ECR API.
type auditServer struct {
	url string
	e   *engine.Engine
	log *syncBuffer
}

func newAuditServer(t *testing.T, o *engine.Options) *auditServer {
	t.Helper()
	dir := t.TempDir()
	htpasswd := writeHtpasswd(t, "alice", "pw")
	b, err := os.ReadFile(htpasswd)
	require.NoError(t, err)
	bob, err := os.ReadFile(writeHtpasswd(t, "bob", "pw"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(htpasswd, append(b, bob...), 0o600))
	creds := filepath.Join(dir, "ecr-credentials")
	require.NoError(t, os.WriteFile(creds, []byte(aliceKey+":"+aliceSecret+":alice\n"+bobKey+":"+bobSecret+":bob\n"), 0o600))
	if o == nil {
		o = &engine.Options{}
	}
	// One logger for the store and the server, as the daemon has.
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	o.CreateOnPush, o.FrameSize, o.Logger = true, 64<<10, logger
	e, err := engine.Open(filepath.Join(dir, "store"), o)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	s, err := New(e, Config{HtpasswdFile: htpasswd, ECRCredentialsFile: creds, DisableAccessLog: true, Logger: logger})
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return &auditServer{url: ts.URL, e: e, log: logs}
}

// oci sends one OCI or admin request as user and returns the response
// (body read) and its request id.
func (s *auditServer) oci(t *testing.T, user, method, path string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.SetBasicAuth(user, "pw")
	req.Header.Set("User-Agent", auditUserAgent)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return send(t, req)
}

// ecr sends one ECR API call signed with key and secret.
func (s *auditServer) ecr(t *testing.T, key, secret, op, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+"/", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Amz-Target", regtest.ECRTargetPrefix+op)
	req.Header.Set("Content-Type", regtest.ECRContentType)
	req.Header.Set("User-Agent", auditUserAgent)
	sum := sha256.Sum256([]byte(body))
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret},
		req, hex.EncodeToString(sum[:]), "ecr", "us-east-1", time.Now()))
	return send(t, req)
}

func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// records returns the audit records of request id, oldest first.
func (s *auditServer) records(t *testing.T, id string) []engine.AuditRecord {
	t.Helper()
	require.NotEmpty(t, id, "the answer names no request id")
	var out []engine.AuditRecord
	require.NoError(t, s.e.AuditRecords(context.Background(), engine.AuditQuery{OldestFirst: true}, func(r engine.AuditRecord) error {
		if r.RequestID == id {
			out = append(out, r)
		}
		return nil
	}))
	return out
}

// question is one record a request must leave: action on repository
// ("" for the registry), decided so.
type question struct {
	action   authz.Action
	repo     string
	decision engine.AuditDecision
}

// listingPrefix marks the repo of a question that stands for a listing's
// own record (listed).
const listingPrefix = "listing:"

// listed is the record of a listing (ecr:DescribeRepositories on "*",
// allowed) that showed shown repositories and hid hidden ones.
func listed(shown, hidden int) question {
	return question{authz.DescribeRepositories, fmt.Sprintf("%s%d/%d", listingPrefix, shown, hidden), engine.AuditAllow}
}

// TestAuditEveryRoute: each OCI route and method, each ECR API operation
// and each admin operation leaves one record per authorization question,
// with the request's id, the caller, the action, the resource, the final
// decision and its statement; an allowed caller (alice, on repository
// scratch) and a denied one (bob, whom the policy of repository app
// denies every ecr: action).
func TestAuditEveryRoute(t *testing.T) {
	ctx := context.Background()
	s := newAuditServer(t, nil)
	for _, repo := range []string{"app", "scratch"} {
		_, err := s.e.CreateRepository(ctx, repo, engine.RepositorySettings{})
		require.NoError(t, err)
		data := []byte("a layer of " + repo)
		_, err = s.e.PutBlob(ctx, repo, bytes.NewReader(data), digest.FromBytes(data))
		require.NoError(t, err)
	}
	require.NoError(t, s.e.SetRepositoryPolicy(ctx, "app", `{"Version":"2012-10-17","Statement":[{"Sid":"NotBob","Effect":"Deny",`+
		`"Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:*"}]}`))
	blob := digest.FromBytes([]byte("a layer of app")).String()
	mt := map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}

	type ociCase struct {
		method, path string // %s: the repository
		hdr          map[string]string
		want         func(repo string, d engine.AuditDecision) []question
	}
	one := func(a authz.Action) func(string, engine.AuditDecision) []question {
		return func(repo string, d engine.AuditDecision) []question { return []question{{a, repo, d}} }
	}
	onRegistry := func(a authz.Action) func(string, engine.AuditDecision) []question {
		return func(string, engine.AuditDecision) []question { return []question{{a, "", engine.AuditAllow}} }
	}
	ociCases := []ociCase{
		{"GET", "/v2/", nil, onRegistry(authz.GetAuthorizationToken)},
		{"HEAD", "/v2/", nil, onRegistry(authz.GetAuthorizationToken)},
		{"GET", "/v2/_catalog", nil, func(_ string, d engine.AuditDecision) []question {
			// bob's denial of app is recorded on its own and hides it;
			// the listing is recorded once, shown and hidden counted
			// (alice's allowed app and scratch have no records of their
			// own).
			if d.Denied() {
				return []question{{authz.DescribeRepositories, "app", d}, listed(1, 1)}
			}
			return []question{listed(2, 0)}
		}},
		{"GET", "/v2/%s/tags/list", nil, one(authz.ListImages)},
		{"GET", "/v2/%s/referrers/" + blob, nil, one(authz.ListImages)},
		{"GET", "/v2/%s/manifests/v1", nil, one(authz.BatchGetImage)},
		{"HEAD", "/v2/%s/manifests/v1", nil, one(authz.BatchGetImage)},
		{"PUT", "/v2/%s/manifests/v1", mt, one(authz.PutImage)},
		{"DELETE", "/v2/%s/manifests/" + digest.FromString("none").String(), nil, one(authz.BatchDeleteImage)},
		{"GET", "/v2/%s/blobs/" + blob, nil, one(authz.GetDownloadURLForLayer)},
		{"HEAD", "/v2/%s/blobs/" + blob, nil, one(authz.BatchCheckLayerAvailability)},
		{"DELETE", "/v2/%s/blobs/" + digest.FromString("none").String(), nil, one(authz.BatchDeleteImage)},
		{"POST", "/v2/%s/blobs/uploads/", nil, one(authz.InitiateLayerUpload)},
		{"POST", "/v2/%s/blobs/uploads/?digest=" + digest.FromString("").String(), nil, func(repo string, d engine.AuditDecision) []question {
			if d.Denied() {
				return []question{{authz.InitiateLayerUpload, repo, d}} // the first refusal ends the questions
			}
			return []question{{authz.InitiateLayerUpload, repo, d}, {authz.CompleteLayerUpload, repo, d}}
		}},
		{"POST", "/v2/%s/blobs/uploads/?mount=" + blob + "&from=app", nil, func(repo string, d engine.AuditDecision) []question {
			if d.Denied() {
				return []question{{authz.InitiateLayerUpload, repo, d}}
			}
			return []question{{authz.InitiateLayerUpload, repo, d}, {authz.GetDownloadURLForLayer, "app", d}, {authz.BatchCheckLayerAvailability, "app", d}}
		}},
		{"GET", "/v2/%s/blobs/uploads/nope", nil, one(authz.UploadLayerPart)},
		{"PATCH", "/v2/%s/blobs/uploads/nope", nil, one(authz.UploadLayerPart)},
		{"PUT", "/v2/%s/blobs/uploads/nope?digest=" + blob, nil, one(authz.CompleteLayerUpload)},
		{"DELETE", "/v2/%s/blobs/uploads/nope", nil, one(authz.UploadLayerPart)},
		{"POST", "/admin/v1/gc?dry-run=true", nil, onRegistry(authz.AdminCollectGarbage)},
		{"POST", "/admin/v1/fsck?verify=false", nil, onRegistry(authz.AdminFsck)},
		{"GET", "/admin/v1/audit?limit=1", nil, onRegistry(authz.AdminReadAuditLog)},
		{"GET", "/admin/v1/repositories/describe?name=%s", nil, one(authz.DescribeRepositories)},
		{"GET", "/admin/v1/templates", nil, onRegistry(authz.DescribeRepositoryCreationTemplates)},
		{"GET", "/admin/v1/iam/identities", nil, onRegistry(authz.AdminDescribeIdentities)},
	}
	type user struct {
		name, key, secret, repo string
		decision                engine.AuditDecision
	}
	users := []user{
		{"alice", aliceKey, aliceSecret, "scratch", engine.AuditAllow},
		{"bob", bobKey, bobSecret, "app", engine.AuditExplicitDeny},
	}
	check := func(t *testing.T, u user, resp *http.Response, api engine.AuditAPI, method, path string, want []question) {
		t.Helper()
		id := resp.Header.Get("X-Request-Id")
		if api == engine.AuditAPIECR {
			assert.Equal(t, id, resp.Header.Get("X-Amzn-RequestId"), "one request id")
		}
		got := s.records(t, id)
		require.Len(t, got, len(want), "status %d; records %+v", resp.StatusCode, got)
		for i, q := range want {
			r := got[i]
			assert.Equal(t, string(q.action), r.Action)
			assert.Equal(t, q.decision, r.Decision, "%s", r.Statement)
			if counts, ok := strings.CutPrefix(q.repo, listingPrefix); ok {
				shown, hidden, _ := strings.Cut(counts, "/")
				assert.Equal(t, "*", r.Resource)
				assert.Empty(t, r.Repository)
				assert.Equal(t, map[string]string{"repositoriesShown": shown, "repositoriesHidden": hidden}, r.Parameters)
				assert.Equal(t, "a listing: "+shown+" shown, "+hidden+" hidden (each hidden one recorded as its own denial)", r.Statement)
				assert.False(t, r.Mutating)
				assert.Equal(t, "arn:aws:iam::000000000000:user/"+u.name, r.PrincipalARN)
				assert.Equal(t, api, r.API)
				assert.Equal(t, path, r.Path)
				continue
			}
			if q.repo == "" {
				assert.Equal(t, "*", r.Resource)
			} else {
				assert.Equal(t, s.e.RepositoryARN(q.repo), r.Resource)
				assert.Equal(t, q.repo, r.Repository)
			}
			switch {
			case q.decision == engine.AuditExplicitDeny:
				assert.Contains(t, r.Statement, `Sid "NotBob"`)
				assert.Equal(t, "AccessDenied", r.ErrorCode)
			default:
				assert.Contains(t, r.Statement, `identity policy "administrator`)
			}
			assert.Equal(t, authz.Mutating(q.action) && q.decision == engine.AuditAllow, r.Mutating, "%s", q.action)
			assert.Equal(t, "arn:aws:iam::000000000000:user/"+u.name, r.PrincipalARN)
			assert.Equal(t, u.name, r.UserName)
			assert.Equal(t, engine.AuditIAMUser, r.PrincipalType)
			assert.Equal(t, "127.0.0.1", r.SourceIP)
			assert.Equal(t, auditUserAgent, r.UserAgent)
			assert.Equal(t, api, r.API)
			assert.Equal(t, method, r.Method)
			assert.Equal(t, path, r.Path)
		}
	}
	for _, u := range users {
		for _, c := range ociCases {
			path := c.path
			if strings.Contains(path, "%s") {
				path = fmt.Sprintf(path, u.repo)
			}
			t.Run(u.name+" "+c.method+" "+path, func(t *testing.T) {
				resp, _ := s.oci(t, u.name, c.method, path, []byte("{}"), c.hdr)
				api := engine.AuditAPIOCI
				if strings.HasPrefix(path, "/admin/") {
					api = engine.AuditAPIAdmin
				}
				want := c.want(u.repo, u.decision)
				if want[len(want)-1].decision.Denied() {
					assert.Equal(t, 403, resp.StatusCode)
				}
				check(t, u, resp, api, c.method, strings.SplitN(path, "?", 2)[0], want)
			})
		}
	}

	// Every ECR operation: the repository ones on the user's repository,
	// the registry-level ones on the registry.
	repoOps := []string{
		"CreateRepository", "DeleteRepository", "PutImageTagMutability", "PutImageScanningConfiguration",
		"SetRepositoryPolicy", "GetRepositoryPolicy", "DeleteRepositoryPolicy",
		"PutLifecyclePolicy", "GetLifecyclePolicy", "DeleteLifecyclePolicy", "StartLifecyclePolicyPreview", "GetLifecyclePolicyPreview",
		"ListImages", "DescribeImages", "BatchGetImage", "BatchDeleteImage", "PutImage", "UpdateImageStorageClass",
		"BatchCheckLayerAvailability", "GetDownloadUrlForLayer", "InitiateLayerUpload", "UploadLayerPart", "CompleteLayerUpload",
	}
	registryOps := map[string]string{
		"CreateRepositoryCreationTemplate":    `{"prefix":"t-%s","appliedFor":["CREATE_ON_PUSH"]}`,
		"UpdateRepositoryCreationTemplate":    `{"prefix":"t-%s","description":"d"}`,
		"DescribeRepositoryCreationTemplates": `{}`,
		"DeleteRepositoryCreationTemplate":    `{"prefix":"t-%s"}`,
		"CreatePullThroughCacheRule":          `{"ecrRepositoryPrefix":"p-%s","upstreamRegistryUrl":"registry.invalid"}`,
		"DescribePullThroughCacheRules":       `{}`,
		"DeletePullThroughCacheRule":          `{"ecrRepositoryPrefix":"p-%s"}`,
		"GetAuthorizationToken":               `{}`,
		"GetAccountSetting":                   `{"name":"BLOB_MOUNTING"}`,
		"PutAccountSetting":                   `{"name":"BLOB_MOUNTING","value":"ENABLED"}`,
	}
	arn := func(repo string) string { return s.e.RepositoryARN(repo) }
	for _, u := range users {
		run := func(op, body string, want []question) {
			t.Run(u.name+" "+op, func(t *testing.T) {
				resp, b := s.ecr(t, u.key, u.secret, op, body)
				if want[len(want)-1].decision.Denied() {
					require.Equal(t, 400, resp.StatusCode, "%s", b)
					require.Contains(t, string(b), "AccessDeniedException")
				}
				check(t, u, resp, engine.AuditAPIECR, http.MethodPost, "/", want)
			})
		}
		for _, op := range repoOps {
			want := []question{{authz.Action("ecr:" + op), u.repo, u.decision}}
			if op == "InitiateLayerUpload" && !u.decision.Denied() {
				// The repository was deleted above: the upload creates it
				// on push, which asks ecr:CreateRepository too.
				want = append(want, question{authz.CreateRepository, u.repo, u.decision})
			}
			run(op, `{"repositoryName":"`+u.repo+`"}`, want)
		}
		for _, op := range []string{"TagResource", "UntagResource", "ListTagsForResource"} {
			run(op, `{"resourceArn":"`+arn(u.repo)+`"}`, []question{{authz.Action("ecr:" + op), u.repo, u.decision}})
		}
		run("DescribeRepositories", `{"repositoryNames":["`+u.repo+`"]}`, []question{{authz.DescribeRepositories, u.repo, u.decision}})
		// A listing asks about the registry, then about each repository
		// it would show: each one hidden is recorded as its denial, and
		// the listing once, with what it showed and hid.
		listing := []question{{authz.DescribeRepositories, "", engine.AuditAllow}, listed(2, 0)}
		if u.decision.Denied() {
			listing = []question{{authz.DescribeRepositories, "", engine.AuditAllow}, {authz.DescribeRepositories, "app", u.decision}, listed(1, 1)}
		}
		run("DescribeRepositories", `{}`, listing)
		for op, body := range registryOps {
			if strings.Contains(body, "%s") {
				body = fmt.Sprintf(body, u.name)
			}
			run(op, body, []question{{authz.Action("ecr:" + op), "", engine.AuditAllow}})
		}
	}

	// A request that authentication refuses asks no question: no record.
	resp, _ := s.oci(t, "mallory", "GET", "/v2/", nil, nil)
	require.Equal(t, 401, resp.StatusCode)
	require.Empty(t, s.records(t, resp.Header.Get("X-Request-Id")))

	// The metrics count the records by decision.
	st := s.e.AuditStatus()
	_, metrics := s.oci(t, "alice", "GET", "/metrics", nil, nil)
	assert.Contains(t, string(metrics), fmt.Sprintf(`berth_audit_records_total{decision="ExplicitDeny"} %d`, st.ExplicitDenied))
	assert.Contains(t, string(metrics), `berth_audit_records_total{decision="ImplicitDeny"} 0`)
	assert.Contains(t, string(metrics), "berth_audit_write_errors_total 0")
	assert.Contains(t, string(metrics), "berth_audit_healthy 1")
	assert.Positive(t, st.Allowed)
	assert.Positive(t, st.ExplicitDenied)
}
