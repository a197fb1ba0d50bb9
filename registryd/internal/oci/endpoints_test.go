package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/auth"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/regtest"
)

// allEndpoints lists every endpoint of the table.
var allEndpoints = map[string]*endpoint{
	"base": &baseEndpoint, "catalog": &catalogEndpoint, "tags": &tagsEndpoint, "referrers": &referrersEndpoint,
	"manifest": &manifestEndpoint, "blob": &blobEndpoint, "upload start": &uploadStartEndpoint, "upload": &uploadEndpoint,
}

// TestEveryMethodDeclaresItsAccess: no method of any endpoint can be
// served without asking the Authorizer about a known action (a per-item
// method, the catalog, asks about each item itself), and the Allow
// header lists exactly the methods served.
func TestEveryMethodDeclaresItsAccess(t *testing.T) {
	rt := route{name: "team/app", ref: "sha256:" + strings.Repeat("0", 64)}
	for name, ep := range allEndpoints {
		for method, m := range ep.methods {
			if m.perItem {
				require.Nil(t, m.access, "%s %s: a per-item method declares no access of its own", name, method)
				continue
			}
			r := httptest.NewRequest(method, "/v2/team/app/blobs/uploads/?digest=x&from=other&mount=y", nil)
			access := m.access(r, rt)
			require.NotEmpty(t, access, "%s %s", name, method)
			for _, a := range access {
				assert.True(t, a.Action.Known(), "%s %s: %s", name, method, a.Action)
			}
			assert.Contains(t, strings.Split(ep.allow, ", "), method, name)
		}
		assert.Len(t, strings.Split(ep.allow, ", "), len(ep.methods), name)
	}
}

// recorder is the real authorizer, recording each question it answers.
type recorder struct {
	authz.Authorizer
	mu    sync.Mutex
	asked []string
}

func (r *recorder) Authorize(ctx context.Context, who engine.Principal, action authz.Action, res authz.Resource) error {
	r.mu.Lock()
	r.asked = append(r.asked, authz.Access{Action: action, Resource: res}.String())
	r.mu.Unlock()
	return r.Authorizer.Authorize(ctx, who, action, res)
}

// TestRequestsAskForECRActions: each request asks the Authorizer for the
// ECR actions docs/policies.md lists, on the repository it names (the
// registry for the version check; each repository for the catalog; the
// source of a mount, and the repository a push creates).
func TestRequestsAskForECRActions(t *testing.T) {
	a, _ := newTestAPI(t, Config{})
	rec := &recorder{Authorizer: a.authz}
	a.authz = rec
	d := pushBlob(t, a, "r", []byte("hello")).String()
	loc := do(a, http.MethodPost, "/v2/r/blobs/uploads/", nil, nil).Header().Get("Location")
	tests := []struct {
		method, target string
		want           []string
	}{
		{http.MethodGet, "/v2/", []string{"ecr:GetAuthorizationToken on the registry"}},
		{http.MethodGet, "/v2/_catalog", []string{"ecr:DescribeRepositories on repository r"}},
		{http.MethodGet, "/v2/r/tags/list", []string{"ecr:ListImages on repository r"}},
		{http.MethodGet, "/v2/r/referrers/" + d, []string{"ecr:ListImages on repository r"}},
		{http.MethodGet, "/v2/r/manifests/v1", []string{"ecr:BatchGetImage on repository r"}},
		{http.MethodHead, "/v2/r/manifests/v1", []string{"ecr:BatchGetImage on repository r"}},
		{http.MethodPut, "/v2/r/manifests/v1", []string{"ecr:PutImage on repository r"}},
		{http.MethodDelete, "/v2/r/manifests/v1", []string{"ecr:BatchDeleteImage on repository r"}},
		{http.MethodGet, "/v2/r/blobs/" + d, []string{"ecr:GetDownloadUrlForLayer on repository r"}},
		{http.MethodHead, "/v2/r/blobs/" + d, []string{"ecr:BatchCheckLayerAvailability on repository r"}},
		{http.MethodDelete, "/v2/r/blobs/" + d, []string{"ecr:BatchDeleteImage on repository r"}},
		{http.MethodPost, "/v2/r/blobs/uploads/", []string{"ecr:InitiateLayerUpload on repository r"}},
		{http.MethodPost, "/v2/r/blobs/uploads/?digest=" + d, []string{"ecr:InitiateLayerUpload on repository r", "ecr:CompleteLayerUpload on repository r"}},
		{http.MethodPost, "/v2/s/blobs/uploads/?mount=" + d + "&from=r", []string{"ecr:InitiateLayerUpload on repository s",
			"ecr:GetDownloadUrlForLayer on repository r", "ecr:BatchCheckLayerAvailability on repository r", "ecr:CreateRepository on repository s"}},
		{http.MethodPost, "/v2/t/blobs/uploads/?mount=" + d, []string{"ecr:InitiateLayerUpload on repository t", "ecr:CreateRepository on repository t"}},
		{http.MethodGet, loc, []string{"ecr:UploadLayerPart on repository r"}},
		{http.MethodPatch, loc, []string{"ecr:UploadLayerPart on repository r"}},
		{http.MethodPut, loc + "?digest=" + d, []string{"ecr:CompleteLayerUpload on repository r"}},
		{http.MethodDelete, loc, []string{"ecr:UploadLayerPart on repository r"}},
		// Nothing is done, nothing is asked.
		{http.MethodPost, "/v2/r/manifests/v1", nil},
		{http.MethodGet, "/v2/nothing", nil},
		{http.MethodGet, "/v2/UPPER/tags/list", nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec.asked = nil
			do(a, tt.method, tt.target, nil, nil)
			assert.Equal(t, tt.want, rec.asked)
		})
	}
}

// TestRepositoryPolicyOnTheOCIAPI: a Deny of a repository's policy
// refuses the OCI requests that map to its action (DENIED, 403), for that
// user only, and a mount whose source's policy denies the read starts an
// upload instead (202, as for a blob the source does not hold).
func TestRepositoryPolicyOnTheOCIAPI(t *testing.T) {
	ctx := context.Background()
	file := regtest.WriteHtpasswd(t, "bob", "pw")
	a, e := newTestAPI(t, Config{}, auth.Config{Account: "000000000000", HtpasswdFile: file})
	bob := map[string]string{"Authorization": regtest.Basic("bob", "pw")}
	d := digestOf(t, a, bob)
	require.NoError(t, e.SetRepositoryPolicy(ctx, "r",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":["ecr:GetDownloadUrlForLayer"]}]}`))
	requireOCIError(t, do(a, http.MethodGet, "/v2/r/blobs/"+d, nil, bob), 403, "DENIED")
	assert.Equal(t, 200, do(a, http.MethodHead, "/v2/r/blobs/"+d, nil, bob).Code, "another action")
	rec := do(a, http.MethodPost, "/v2/s/blobs/uploads/?mount="+d+"&from=r", nil, bob)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	_, err := e.StatBlob(ctx, "s", digest.Digest(d))
	require.ErrorIs(t, err, engine.ErrBlobUnknown, "nothing mounted")
	requireOCIError(t, do(a, http.MethodGet, "/v2/r/blobs/"+d, nil, nil), 401, "UNAUTHORIZED")
}

// digestOf pushes a blob into r as who and returns its digest.
func digestOf(t *testing.T, a *API, who map[string]string) string {
	t.Helper()
	rec := do(a, http.MethodPost, "/v2/r/blobs/uploads/?digest=sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", []byte("hello"), who)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	return rec.Header().Get("Docker-Content-Digest")
}

// TestCreateOnPushAsksForTheRepositoryAndItsKey: a push that creates its
// repository asks ecr:CreateRepository on it and, when the creation
// template names a KMS key, kms:CreateGrant and kms:DescribeKey on the
// key; a refusal of any creates nothing.
func TestCreateOnPushAsksForTheRepositoryAndItsKey(t *testing.T) {
	ctx := context.Background()
	a, e := newTestAPI(t, Config{})
	_, err := e.CreateKey(ctx, "team-key")
	require.NoError(t, err)
	require.NoError(t, e.PutCreationTemplate(ctx, engine.CreationTemplate{Prefix: "team", AppliedFor: []string{engine.AppliedForCreateOnPush},
		RepositorySettings: engine.RepositorySettings{Encryption: engine.EncryptionConfig{EncryptionType: engine.EncryptionKMS, KMSKey: "team-key"}}}))
	rec := &recorder{Authorizer: a.authz}
	a.authz = rec
	require.Equal(t, http.StatusAccepted, do(a, http.MethodPost, "/v2/team/app/blobs/uploads/", nil, nil).Code)
	assert.Equal(t, []string{"ecr:InitiateLayerUpload on repository team/app", "ecr:CreateRepository on repository team/app",
		"kms:CreateGrant on key team-key", "kms:DescribeKey on key team-key"}, rec.asked)

	a.authz = refuseKMS{a.authz}
	requireOCIError(t, do(a, http.MethodPost, "/v2/team/other/blobs/uploads/", nil, nil), http.StatusForbidden, "DENIED")
	_, err = e.Repository(ctx, "team/other")
	require.ErrorIs(t, err, engine.ErrNameUnknown)
}

// refuseKMS refuses every kms: action and asks its Authorizer the rest.
type refuseKMS struct{ authz.Authorizer }

func (r refuseKMS) Authorize(ctx context.Context, who engine.Principal, action authz.Action, res authz.Resource) error {
	if strings.HasPrefix(string(action), "kms:") {
		return engine.ErrAccessDenied
	}
	return r.Authorizer.Authorize(ctx, who, action, res)
}

// TestMountWithoutFromAsksEachSource: a mount without "from" mounts from
// the first repository holding the blob that the caller may pull from and
// whose key reads it, asking pull access on each candidate in name order
// (the refused ones are the Authorizer's refusals) and on at most
// maxMountSources of them; a blob only in repositories the caller may not
// read, or beyond the bound, answers 202 as a digest in no repository
// does, and links nothing.
func TestMountWithoutFromAsksEachSource(t *testing.T) {
	ctx := context.Background()
	file := regtest.WriteHtpasswd(t, "bob", "pw")
	a, e := newTestAPI(t, Config{}, auth.Config{Account: "000000000000", HtpasswdFile: file})
	rec := &recorder{Authorizer: a.authz}
	a.authz = rec
	bob := map[string]string{"Authorization": regtest.Basic("bob", "pw")}
	_, err := e.CreateKey(ctx, "k05")
	require.NoError(t, err)
	_, err = e.CreateRepository(ctx, "src05", engine.RepositorySettings{Encryption: engine.EncryptionConfig{EncryptionType: engine.EncryptionKMS, KMSKey: "k05"}})
	require.NoError(t, err)
	content := []byte("a layer in twenty repositories")
	d := digest.FromBytes(content)
	src := func(i int) string { return fmt.Sprintf("src%02d", i) }
	const n = maxMountSources + 4
	for i := range n {
		_, err := e.PutBlob(ctx, src(i), bytes.NewReader(content), d)
		require.NoError(t, err)
	}
	// bob may pull from the repositories readable says, from no other.
	readable := func(which ...int) {
		t.Helper()
		for i := range n {
			policy := `{"Version":"2012-10-17","Statement":[{"Sid":"not bob","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:GetDownloadUrlForLayer"}]}`
			if slices.Contains(which, i) {
				policy = `{"Version":"2012-10-17","Statement":[{"Sid":"bob","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:*"}]}`
			}
			require.NoError(t, e.SetRepositoryPolicy(ctx, src(i), policy))
		}
	}
	// pullsAsked lists the repositories whose pull access was asked.
	pullsAsked := func() []string {
		var out []string
		for _, q := range rec.asked {
			if r, ok := strings.CutPrefix(q, "ecr:GetDownloadUrlForLayer on repository "); ok {
				out = append(out, r)
			}
		}
		return out
	}
	mount := func(target string, d digest.Digest) *httptest.ResponseRecorder {
		t.Helper()
		rec.asked = nil
		return do(a, http.MethodPost, "/v2/"+target+"/blobs/uploads/?mount="+d.String(), nil, bob)
	}
	linked := func(repo string) bool {
		_, err := e.StatBlob(ctx, repo, d)
		if errors.Is(err, engine.ErrBlobUnknown) || errors.Is(err, engine.ErrNameUnknown) {
			return false
		}
		require.NoError(t, err)
		return true
	}

	// Readable nowhere: 202, as for a digest in no repository; the
	// candidates asked stop at the bound.
	readable()
	r := mount("bob/a", d)
	require.Equal(t, http.StatusAccepted, r.Code, r.Body.String())
	assert.Empty(t, r.Header().Get("Docker-Content-Digest"))
	assert.Len(t, pullsAsked(), maxMountSources)
	assert.Equal(t, src(0), pullsAsked()[0])
	assert.False(t, linked("bob/a"))
	r = mount("bob/a", digest.FromString("in no repository"))
	require.Equal(t, http.StatusAccepted, r.Code, r.Body.String())
	assert.Empty(t, pullsAsked())

	// Readable only beyond the bound: 202.
	readable(maxMountSources + 1)
	r = mount("bob/a", d)
	require.Equal(t, http.StatusAccepted, r.Code, r.Body.String())
	assert.Len(t, pullsAsked(), maxMountSources)
	assert.False(t, linked("bob/a"))

	// Readable from src05, whose key is disabled, and src07: src07 it
	// is, after asking about src00 to src07.
	readable(5, 7)
	require.NoError(t, e.DisableKey(ctx, "k05"))
	r = mount("bob/b", d)
	require.Equal(t, http.StatusCreated, r.Code, r.Body.String())
	assert.Equal(t, d.String(), r.Header().Get("Docker-Content-Digest"))
	assert.Equal(t, []string{src(0), src(1), src(2), src(3), src(4), src(5), src(6), src(7)}, pullsAsked())
	assert.True(t, linked("bob/b"))
	got, err := e.OpenBlob(ctx, "bob/b", d)
	require.NoError(t, err)
	b, err := io.ReadAll(got)
	require.NoError(t, err)
	require.NoError(t, got.Close())
	assert.Equal(t, content, b)

	// A target that holds the blob is asked about first.
	r = mount("bob/b", d)
	require.Equal(t, http.StatusCreated, r.Code, r.Body.String())
	assert.Equal(t, []string{"bob/b"}, pullsAsked())
}
