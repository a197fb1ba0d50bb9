package e2e

// Every path enforced: what a hostile tenant tries against a registry
// with authentication on, driven by real clients (go-containerregistry,
// net/http, the AWS SDK for Go v2) against registryd on 127.0.0.1; each
// refusal is checked on the wire (the exact OCI or AWS error) and in the
// store afterwards (opened once the daemon stopped).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/cli"
)

// tenants is a registry with authentication on and three users (alice,
// bob, mallory; password "pw-<user>", ECR access key "AKIA<USER>" with
// secret "secret-<user>"), over a store in dir.
type tenants struct {
	t    *testing.T
	addr string
	dir  string
	stop func()
}

var tenantUsers = []string{"alice", "bob", "mallory"}

// startTenants starts the registry over dir (a fresh one when "");
// mutate adjusts the configuration further.
func startTenants(t *testing.T, dir string, mutate func(*cli.Config)) *tenants {
	t.Helper()
	files := t.TempDir()
	var htpasswd, creds strings.Builder
	for _, u := range tenantUsers {
		hash, err := bcrypt.GenerateFromPassword([]byte("pw-"+u), bcrypt.MinCost)
		require.NoError(t, err)
		htpasswd.WriteString(u + ":" + string(hash) + "\n")
		creds.WriteString(accessKey(u) + ":secret-" + u + ":" + u + "\n")
	}
	require.NoError(t, os.WriteFile(filepath.Join(files, "htpasswd"), []byte(htpasswd.String()), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(files, "creds"), []byte(creds.String()), 0o600))
	if dir == "" {
		dir = t.TempDir()
	}
	addr, stop := startStoppableServer(t, func(c *cli.Config) {
		c.Data = dir
		c.Htpasswd, c.ECRCredentials = filepath.Join(files, "htpasswd"), filepath.Join(files, "creds")
		if mutate != nil {
			mutate(c)
		}
	})
	return &tenants{t: t, addr: addr, dir: dir, stop: stop}
}

func accessKey(user string) string { return "AKIA" + strings.ToUpper(user) }

// quietLogger writes nothing.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// ecr is user's AWS SDK client.
func (r *tenants) ecr(user string) *ecr.Client {
	return ecr.New(ecr.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + r.addr),
		Credentials: credentials.NewStaticCredentialsProvider(accessKey(user), "secret-"+user, "")})
}

// auth is user's basic credentials for go-containerregistry ("" for
// none: an anonymous caller).
func (r *tenants) auth(user string) remote.Option {
	if user == "" {
		return remote.WithAuth(authn.Anonymous)
	}
	return remote.WithAuth(&authn.Basic{Username: user, Password: "pw-" + user})
}

// header is user's Authorization header (none for "").
func (r *tenants) header(user string) map[string]string {
	if user == "" {
		return map[string]string{}
	}
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":pw-"+user))}
}

// do sends one OCI or admin request as user.
func (r *tenants) do(user, method, path string, body []byte, hdr map[string]string) (int, http.Header, []byte) {
	h := r.header(user)
	for k, v := range hdr {
		h[k] = v
	}
	return httpDo(r.t, method, "http://"+r.addr+path, body, h)
}

// ref parses repo:tag on the registry.
func (r *tenants) ref(s string) name.Reference {
	ref, err := name.ParseReference(r.addr+"/"+s, name.Insecure)
	require.NoError(r.t, err)
	return ref
}

// push writes a random image to repo:tag as user.
func (r *tenants) push(user, repoTag string) (v1.Image, error) {
	img, err := random.Image(512, 1)
	require.NoError(r.t, err)
	return img, remote.Write(r.ref(repoTag), img, r.auth(user))
}

// blob pushes data as one blob into repo as user and returns its digest.
func (r *tenants) blob(user, repo string, data []byte) digest.Digest {
	d := digest.FromBytes(data)
	status, _, body := r.do(user, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), data, nil)
	require.Equal(r.t, http.StatusCreated, status, "%s", body)
	return d
}

// policy sets repo's repository policy as alice.
func (r *tenants) policy(repo, text string) {
	_, err := r.ecr("alice").SetRepositoryPolicy(context.Background(), &ecr.SetRepositoryPolicyInput{
		RepositoryName: aws.String(repo), PolicyText: aws.String(text)})
	require.NoError(r.t, err)
}

// store stops the registry and opens its store for inspection.
func (r *tenants) store() *engine.Engine {
	r.stop()
	e, err := engine.Open(r.dir, &engine.Options{Logger: quietLogger()})
	require.NoError(r.t, err)
	r.t.Cleanup(func() { e.Close() })
	return e
}

// requireOCIError checks an OCI error answer: status and code.
func requireOCIError(t *testing.T, status int, body []byte, wantStatus int, code string) {
	t.Helper()
	require.Equal(t, wantStatus, status, "%s", body)
	var e ociError
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	require.Len(t, e.Errors, 1, "%s", body)
	require.Equal(t, code, e.Errors[0].Code, "%s", body)
}

// denyUser is a statement denying user every action on every resource
// (a registry policy: "a user without grants", since every
// authenticated user holds an administrator policy until identity
// policies exist; the refusal is the same on the wire).
func denyUser(user, action string) string {
	return fmt.Sprintf(`{"Sid":"no-%[1]s","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/%[1]s"},"Action":%[2]q,"Resource":"*"}`, user, action)
}

func registryPolicy(statements ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
}

// TestMountIsNoBypass: a mount reads only what its caller may read.
// Without from, a blob only in a repository the caller may not pull from
// answers 202 and links nothing, exactly as a digest the store does not
// hold; a blob in a repository the caller may pull from mounts (201,
// linked, read through the target); a blob whose only readable source's
// key is destroyed answers 202. With from, a source the caller may not
// pull from answers 202 the same way, and so does a source whose key
// cannot read the blob (disabled); a permitted mount answers 201 and the
// blob reads through the target. Afterwards the store shows no link and
// no wrap the refusals could have made.
func TestMountIsNoBypass(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := engine.Open(dir, &engine.Options{Logger: quietLogger()})
	require.NoError(t, err)
	for _, k := range []string{"victim-key", "mallory-key", "shared-key", "doomed-key"} {
		_, err := e.CreateKey(ctx, k)
		require.NoError(t, err)
	}
	for repo, key := range map[string]string{"victim/secret": "victim-key", "mallory/app": "mallory-key",
		"shared/src": "shared-key", "doomed/src": "doomed-key"} {
		_, err := e.CreateRepository(ctx, repo, engine.RepositorySettings{Encryption: engine.EncryptionConfig{EncryptionType: engine.EncryptionKMS, KMSKey: key}})
		require.NoError(t, err)
	}
	require.NoError(t, e.Close())

	reg := startTenants(t, dir, nil)
	secret := []byte("the victim's layer: " + strings.Repeat("s", 2000))
	d := reg.blob("alice", "victim/secret", secret)
	doomed := []byte("a layer in the victim's repository and one whose key goes " + strings.Repeat("d", 700))
	dd := reg.blob("alice", "victim/secret", doomed)
	reg.blob("alice", "doomed/src", doomed)
	readable := []byte("a layer mallory may read " + strings.Repeat("r", 900))
	rd := reg.blob("alice", "shared/src", readable)
	reg.policy("victim/secret", `{"Version":"2012-10-17","Statement":[{"Sid":"not mallory","Effect":"Deny",
		"Principal":{"AWS":"arn:aws:iam::000000000000:user/mallory"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}`)
	status, _, body := reg.do("mallory", http.MethodGet, "/v2/victim/secret/blobs/"+d.String(), nil, nil)
	requireOCIError(t, status, body, http.StatusForbidden, "DENIED")

	absent := digest.FromString("in no repository")
	answers := map[string]string{
		"no from, only in a repository mallory may not read": "/v2/mallory/app/blobs/uploads/?mount=" + d.String(),
		"no from, absent":          "/v2/mallory/app/blobs/uploads/?mount=" + absent.String(),
		"from refused":             "/v2/mallory/app/blobs/uploads/?mount=" + d.String() + "&from=victim/secret",
		"from refused, absent":     "/v2/mallory/app/blobs/uploads/?mount=" + absent.String() + "&from=victim/secret",
		"from an unknown repo":     "/v2/mallory/app/blobs/uploads/?mount=" + d.String() + "&from=nobody/here",
		"no from, new repository":  "/v2/mallory/new/blobs/uploads/?mount=" + d.String(),
		"from refused, new target": "/v2/mallory/other/blobs/uploads/?mount=" + d.String() + "&from=victim/secret",
	}
	for what, path := range answers {
		status, hdr, body := reg.do("mallory", http.MethodPost, path, nil, nil)
		assert.Equal(t, http.StatusAccepted, status, "%s: %s", what, body)
		assert.Contains(t, hdr.Get("Location"), "/blobs/uploads/", what)
		assert.Empty(t, hdr.Get("Docker-Content-Digest"), "%s: nothing mounted", what)
		assert.Equal(t, "0-0", hdr.Get("Range"), what)
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		status, _, body := reg.do("mallory", method, "/v2/mallory/app/blobs/"+d.String(), nil, nil)
		if method == http.MethodGet {
			requireOCIError(t, status, body, http.StatusNotFound, "BLOB_UNKNOWN")
		} else {
			assert.Equal(t, http.StatusNotFound, status)
		}
	}

	// Without from, a blob in a repository mallory may read: 201, and it
	// reads through mallory's repository.
	status, hdr, body := reg.do("mallory", http.MethodPost, "/v2/mallory/app/blobs/uploads/?mount="+rd.String(), nil, nil)
	require.Equal(t, http.StatusCreated, status, "%s", body)
	assert.Equal(t, rd.String(), hdr.Get("Docker-Content-Digest"))
	status, _, body = reg.do("mallory", http.MethodGet, "/v2/mallory/app/blobs/"+rd.String(), nil, nil)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, readable, body)

	// A permitted mount from a source: 201, and the blob reads through
	// the target.
	status, hdr, body = reg.do("alice", http.MethodPost, "/v2/alice/app/blobs/uploads/?mount="+d.String()+"&from=victim/secret", nil, nil)
	require.Equal(t, http.StatusCreated, status, "%s", body)
	assert.Equal(t, d.String(), hdr.Get("Docker-Content-Digest"))
	status, _, body = reg.do("alice", http.MethodGet, "/v2/alice/app/blobs/"+d.String(), nil, nil)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, secret, body)

	// A blob the source holds under a key that can no longer read it.
	shared := []byte("shared layer " + strings.Repeat("x", 500))
	sd := reg.blob("alice", "shared/src", shared)
	reg.blob("alice", "shared/plain", shared) // also under the default key

	e = reg.store()
	_, err = e.StatBlob(ctx, "mallory/app", d)
	require.ErrorIs(t, err, engine.ErrBlobUnknown, "no link into mallory's repository")
	for _, repo := range []string{"mallory/new", "mallory/other"} {
		_, err = e.StatBlob(ctx, repo, d)
		require.ErrorIs(t, err, engine.ErrBlobUnknown, repo)
	}
	_, err = e.StatBlob(ctx, "mallory/app", rd)
	require.NoError(t, err, "the readable blob is linked into mallory's repository")
	keys, err := e.Keys(ctx)
	require.NoError(t, err)
	for _, k := range keys {
		if k.Name == "mallory-key" {
			assert.Equal(t, 1, k.Blobs, "only the blob mallory may read is wrapped under mallory's key")
		}
		if k.Name == "victim-key" {
			assert.Equal(t, 2, k.Blobs, "the secret and the doomed layer, under the victim's key (the secret also under the default key, by alice's mount)")
		}
	}
	require.NoError(t, e.DisableKey(ctx, "shared-key"))
	require.NoError(t, e.DestroyKey(ctx, "doomed-key"))
	require.NoError(t, e.Close())

	reg = startTenants(t, dir, nil)
	status, hdr, body = reg.do("mallory", http.MethodPost, "/v2/mallory/app/blobs/uploads/?mount="+dd.String(), nil, nil)
	assert.Equal(t, http.StatusAccepted, status, "without from, the only source mallory may read has its key destroyed: %s", body)
	assert.Empty(t, hdr.Get("Docker-Content-Digest"))
	status, _, body = reg.do("alice", http.MethodPost, "/v2/alice/copy/blobs/uploads/?mount="+sd.String()+"&from=shared/src", nil, nil)
	assert.Equal(t, http.StatusAccepted, status, "the source's key is disabled: upload, not mount: %s", body)
	status, _, body = reg.do("alice", http.MethodPost, "/v2/alice/copy/blobs/uploads/?mount="+sd.String()+"&from=shared/plain", nil, nil)
	assert.Equal(t, http.StatusCreated, status, "through a source whose key reads it: %s", body)

	e = reg.store()
	_, err = e.StatBlob(ctx, "mallory/app", dd)
	require.ErrorIs(t, err, engine.ErrBlobUnknown, "nothing mounted through the destroyed key")
	_, err = e.StatBlob(ctx, "victim/secret", dd)
	require.NoError(t, err, "the doomed layer lives on in the victim's repository")
}

// TestPullThroughCacheCannotTakeOver: creating rules and templates needs
// a grant (mallory, denied, creates none); rules with prefix team and
// ROOT never fill a repository that was pushed to (its tag keeps its
// image, a tag only upstream is not found, and nothing is fetched into
// it); they fill names with no repository yet. A fill needs
// ecr:BatchImportUpstreamImage (bob is refused, nothing is created) and,
// to create the repository, ecr:CreateRepository.
func TestPullThroughCacheCannotTakeOver(t *testing.T) {
	ctx := context.Background()
	upstream := startServer(t, nil)
	upRef := func(s string) name.Reference {
		ref, err := name.ParseReference(upstream+"/"+s, name.Insecure)
		require.NoError(t, err)
		return ref
	}
	for _, s := range []string{"team/app:v1", "team/app:only-upstream", "hub/new:v1", "hub/bobs:v1", "hub/carols:v1", "hub/new:v2"} {
		img, err := random.Image(256, 1)
		require.NoError(t, err)
		require.NoError(t, remote.Write(upRef(s), img))
	}

	reg := startTenants(t, "", func(c *cli.Config) { c.PullThroughRefresh = -1 })
	alice, mallory := reg.ecr("alice"), reg.ecr("mallory")
	_, err := alice.PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(registryPolicy(
		denyUser("mallory", "ecr:*"),
		denyUser("bob", "ecr:BatchImportUpstreamImage"),
	))})
	require.NoError(t, err)

	// Rules and templates are registry-level: mallory may not.
	_, err = mallory.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String("team"), UpstreamRegistryUrl: aws.String("http://" + upstream)})
	requireAPIError(t, err, "AccessDeniedException")
	_, err = mallory.CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{
		Prefix: aws.String("team"), AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForPullThroughCache}})
	requireAPIError(t, err, "AccessDeniedException")
	rules, err := alice.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{})
	require.NoError(t, err)
	assert.Empty(t, rules.PullThroughCacheRules, "mallory created no rule")
	tpls, err := alice.DescribeRepositoryCreationTemplates(ctx, &ecr.DescribeRepositoryCreationTemplatesInput{})
	require.NoError(t, err)
	assert.Empty(t, tpls.RepositoryCreationTemplates, "mallory created no template")

	// alice's own team/app, then rules over it.
	mine, err := reg.push("alice", "team/app:v1")
	require.NoError(t, err)
	mineDigest, err := mine.Digest()
	require.NoError(t, err)
	for _, p := range []string{"team", "ROOT"} {
		_, err = alice.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String(p), UpstreamRegistryUrl: aws.String("http://" + upstream)})
		require.NoError(t, err)
	}
	for range 2 { // the second pull is past the refresh interval (-1: every pull)
		desc, err := remote.Get(reg.ref("team/app:v1"), reg.auth("alice"))
		require.NoError(t, err)
		assert.Equal(t, mineDigest, desc.Digest, "the rule does not move alice's tag")
	}
	_, err = remote.Get(reg.ref("team/app:only-upstream"), reg.auth("alice"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "MANIFEST_UNKNOWN", "no fill into a repository that was pushed to")

	// Names with no repository yet are the cache's: alice fills one.
	_, err = remote.Get(reg.ref("hub/new:v1"), reg.auth("alice"))
	require.NoError(t, err)
	// bob may not import: refused, nothing created.
	_, err = remote.Get(reg.ref("hub/bobs:v1"), reg.auth("bob"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DENIED")
	assert.Contains(t, err.Error(), "ecr:BatchImportUpstreamImage")
	_, err = remote.Get(reg.ref("hub/new:v2"), reg.auth("bob"))
	require.Error(t, err, "nor into an existing cache repository")

	e := reg.store()
	m, err := e.GetManifest(ctx, "team/app", "v1")
	require.NoError(t, err)
	assert.Equal(t, mineDigest.String(), m.Digest.String())
	_, err = e.GetManifest(ctx, "team/app", "only-upstream")
	require.ErrorIs(t, err, engine.ErrManifestUnknown)
	r, err := e.Repository(ctx, "team/app")
	require.NoError(t, err)
	assert.Empty(t, r.CreatedByCacheRule)
	r, err = e.Repository(ctx, "hub/new")
	require.NoError(t, err)
	assert.Equal(t, "ROOT", r.CreatedByCacheRule)
	_, err = e.Repository(ctx, "hub/bobs")
	require.ErrorIs(t, err, engine.ErrNameUnknown)
	_, err = e.GetManifest(ctx, "hub/new", "v2")
	require.ErrorIs(t, err, engine.ErrManifestUnknown)
	require.NoError(t, e.Close())

	// Creating the cache repository needs ecr:CreateRepository: with it
	// denied, alice's fill of a new name is refused; an existing cache
	// repository still fills.
	reg = startTenants(t, reg.dir, func(c *cli.Config) { c.PullThroughRefresh = -1 })
	_, err = reg.ecr("alice").PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(registryPolicy(
		denyUser("alice", "ecr:CreateRepository")))})
	require.NoError(t, err)
	_, err = remote.Get(reg.ref("hub/carols:v1"), reg.auth("alice"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ecr:CreateRepository")
	_, err = remote.Get(reg.ref("hub/new:v2"), reg.auth("alice"))
	require.NoError(t, err)
	e = reg.store()
	_, err = e.Repository(ctx, "hub/carols")
	require.ErrorIs(t, err, engine.ErrNameUnknown)
}

// TestCreateOnPushNeedsCreateRepository: a push into a repository that
// does not exist creates it only for a caller allowed
// ecr:CreateRepository on it; a refused push (OCI or ECR API) creates
// nothing, and the caller still pushes into repositories that exist.
func TestCreateOnPushNeedsCreateRepository(t *testing.T) {
	ctx := context.Background()
	reg := startTenants(t, "", nil) // create on push on
	_, err := reg.ecr("alice").PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(registryPolicy(
		denyUser("mallory", "ecr:CreateRepository")))})
	require.NoError(t, err)
	_, err = reg.push("alice", "team/app:v1")
	require.NoError(t, err)

	_, err = reg.push("mallory", "mallory/new:v1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DENIED")
	status, _, body := reg.do("mallory", http.MethodPost, "/v2/mallory/new/blobs/uploads/", nil, nil)
	requireOCIError(t, status, body, http.StatusForbidden, "DENIED")
	status, _, body = reg.do("mallory", http.MethodPost, "/v2/mallory/new/blobs/uploads/?digest="+digest.FromString("x").String(), []byte("x"), nil)
	requireOCIError(t, status, body, http.StatusForbidden, "DENIED")
	_, err = reg.ecr("mallory").InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: aws.String("mallory/ecr")})
	requireAPIError(t, err, "AccessDeniedException")
	_, err = reg.ecr("mallory").CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("mallory/direct")})
	requireAPIError(t, err, "AccessDeniedException")
	_, err = reg.push("mallory", "team/app:mallory")
	require.NoError(t, err, "an existing repository takes the push")

	e := reg.store()
	names, err := e.ListRepositories(ctx, "", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"team/app"}, names)
}

// TestAdminAPIRefusesWithoutGrants: every admin route refuses a user
// without grants (DENIED, 403) and changes nothing; a lifecycle call
// that brings its own policy needs ecr:PutLifecyclePolicy on the
// repository besides its berth: action.
func TestAdminAPIRefusesWithoutGrants(t *testing.T) {
	ctx := context.Background()
	reg := startTenants(t, "", nil)
	img, err := reg.push("alice", "team/app:v1")
	require.NoError(t, err)
	imgDigest, err := img.Digest()
	require.NoError(t, err)
	_, err = reg.push("alice", "team/app:v2")
	require.NoError(t, err)
	stray := reg.blob("alice", "team/app", []byte("a stray blob no manifest names"))
	_, err = reg.ecr("alice").PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(registryPolicy(denyUser("mallory", "*")))})
	require.NoError(t, err)
	reg.policy("team/app", `{"Version":"2012-10-17","Statement":[{"Sid":"bob keeps the policy","Effect":"Deny",
		"Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:PutLifecyclePolicy"}]}`)
	expireAll := []byte(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)

	for _, tc := range []struct {
		path string
		body []byte
	}{
		{"/admin/v1/gc?grace=0s", nil},
		{"/admin/v1/gc?dry-run=true", nil},
		{"/admin/v1/fsck?verify=true", nil},
		{"/admin/v1/lifecycle/preview?repository=team/app", nil},
		{"/admin/v1/lifecycle/preview?repository=team/app", expireAll},
		{"/admin/v1/lifecycle/apply?repository=team/app", expireAll},
	} {
		status, _, body := reg.do("mallory", http.MethodPost, tc.path, tc.body, nil)
		requireOCIError(t, status, body, http.StatusForbidden, "DENIED")
		assert.Contains(t, string(body), "user/mallory", tc.path)
	}
	status, _, body := reg.do("", http.MethodPost, "/admin/v1/gc?dry-run=true", nil, nil)
	requireOCIError(t, status, body, http.StatusUnauthorized, "UNAUTHORIZED")

	// bob may preview the repository's own policy, not one of his own.
	status, _, body = reg.do("bob", http.MethodPost, "/admin/v1/lifecycle/preview?repository=team/app", nil, nil)
	assert.NotEqual(t, http.StatusForbidden, status, "%s", body)
	for _, op := range []string{"preview", "apply"} {
		status, _, body = reg.do("bob", http.MethodPost, "/admin/v1/lifecycle/"+op+"?repository=team/app", expireAll, nil)
		requireOCIError(t, status, body, http.StatusForbidden, "DENIED")
		assert.Contains(t, string(body), "ecr:PutLifecyclePolicy", op)
	}
	status, _, body = reg.do("alice", http.MethodPost, "/admin/v1/lifecycle/preview?repository=team/app", expireAll, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Contains(t, string(body), imgDigest.String(), "alice may: the preview lists the older image")

	e := reg.store()
	m, err := e.GetManifest(ctx, "team/app", "v1")
	require.NoError(t, err, "no lifecycle ran")
	assert.Equal(t, imgDigest.String(), m.Digest.String())
	_, err = e.StatBlob(ctx, "team/app", stray)
	require.NoError(t, err, "no collection ran")
}

// TestCatalogListsWhatTheCallerMayDescribe: /v2/_catalog lists only the
// repositories the caller may ecr:DescribeRepositories, and n/last page
// over that list; DescribeRepositories makes the same decision.
func TestCatalogListsWhatTheCallerMayDescribe(t *testing.T) {
	ctx := context.Background()
	reg := startTenants(t, "", nil)
	all := []string{"a", "b/hidden", "c", "d/hidden", "e"}
	for _, repo := range all {
		_, err := reg.ecr("alice").CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo)})
		require.NoError(t, err)
	}
	for _, repo := range []string{"b/hidden", "d/hidden"} {
		reg.policy(repo, `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:DescribeRepositories"}]}`)
	}
	catalog := func(user, query string) ([]string, string) {
		status, hdr, body := reg.do(user, http.MethodGet, "/v2/_catalog"+query, nil, nil)
		require.Equal(t, http.StatusOK, status, "%s", body)
		var out struct{ Repositories []string }
		require.NoError(t, json.Unmarshal(body, &out))
		return out.Repositories, hdr.Get("Link")
	}
	got, link := catalog("alice", "")
	assert.Equal(t, all, got)
	assert.Empty(t, link)
	got, _ = catalog("bob", "")
	assert.Equal(t, []string{"a", "c", "e"}, got)
	got, link = catalog("bob", "?n=2")
	assert.Equal(t, []string{"a", "c"}, got)
	assert.Equal(t, `</v2/_catalog?last=c&n=2>; rel="next"`, link)
	got, link = catalog("bob", "?n=2&last=c")
	assert.Equal(t, []string{"e"}, got)
	assert.Empty(t, link)
	got, link = catalog("bob", "?n=1&last=a")
	assert.Equal(t, []string{"c"}, got)
	assert.Equal(t, `</v2/_catalog?last=c&n=1>; rel="next"`, link)
	status, _, body := reg.do("", http.MethodGet, "/v2/_catalog", nil, nil)
	requireOCIError(t, status, body, http.StatusUnauthorized, "UNAUTHORIZED")

	out, err := reg.ecr("bob").DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{})
	require.NoError(t, err)
	var names []string
	for _, r := range out.Repositories {
		names = append(names, aws.ToString(r.RepositoryName))
	}
	assert.Equal(t, []string{"a", "c", "e"}, names, "the same decision")
	_, err = reg.ecr("bob").DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"b/hidden"}})
	requireAPIError(t, err, "AccessDeniedException")
}

// TestPublicRepository: with authentication on and no --anonymous-pull,
// a repository whose policy allows "*" the pull actions serves anonymous
// GET and HEAD of its manifests, blobs and tag list; every other
// anonymous request (another repository, a push, wrong credentials)
// answers 401 with the Basic challenge; `registryd repo describe` shows
// it public.
func TestPublicRepository(t *testing.T) {
	ctx := context.Background()
	reg := startTenants(t, "", nil)
	img, err := reg.push("alice", "pub/app:v1")
	require.NoError(t, err)
	_, err = reg.push("alice", "priv/app:v1")
	require.NoError(t, err)
	reg.policy("pub/app", `{"Version":"2012-10-17","Statement":[{"Sid":"public","Effect":"Allow","Principal":"*",
		"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability","ecr:ListImages"]}]}`)

	// go-containerregistry without credentials pulls the public image.
	got, err := remote.Image(reg.ref("pub/app:v1"), reg.auth(""))
	require.NoError(t, err)
	want, err := img.Digest()
	require.NoError(t, err)
	gotDigest, err := got.Digest()
	require.NoError(t, err)
	assert.Equal(t, want, gotDigest)
	layers, err := got.Layers()
	require.NoError(t, err)
	rc, err := layers[0].Compressed()
	require.NoError(t, err)
	_, err = readAll(rc)
	require.NoError(t, err)
	tags, err := remote.List(reg.ref("pub/app:v1").Context(), reg.auth(""))
	require.NoError(t, err)
	assert.Equal(t, []string{"v1"}, tags)
	ld, err := layers[0].Digest()
	require.NoError(t, err)
	status, _, _ := reg.do("", http.MethodHead, "/v2/pub/app/blobs/"+ld.String(), nil, nil)
	assert.Equal(t, http.StatusOK, status)

	for _, tc := range []struct{ user, method, path string }{
		{"", http.MethodGet, "/v2/priv/app/manifests/v1"},
		{"", http.MethodGet, "/v2/priv/app/tags/list"},
		{"", http.MethodPut, "/v2/pub/app/manifests/v2"},
		{"", http.MethodPost, "/v2/pub/app/blobs/uploads/"},
		{"", http.MethodDelete, "/v2/pub/app/manifests/v1"},
		{"", http.MethodGet, "/v2/pub/app/referrers/" + want.String()},
		{"", http.MethodGet, "/v2/"},
		{"", http.MethodGet, "/v2/no/such/manifests/v1"},
		{"", http.MethodGet, "/v2/UPPER/tags/list"},
	} {
		status, hdr, body := reg.do(tc.user, tc.method, tc.path, nil, nil)
		requireOCIError(t, status, body, http.StatusUnauthorized, "UNAUTHORIZED")
		assert.Equal(t, `Basic realm="berth"`, hdr.Get("WWW-Authenticate"), "%s %s", tc.method, tc.path)
	}
	status, hdr, body := reg.do("", http.MethodGet, "/v2/pub/app/manifests/v1", nil,
		map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wrong"))})
	requireOCIError(t, status, body, http.StatusUnauthorized, "UNAUTHORIZED")
	assert.NotEmpty(t, hdr.Get("WWW-Authenticate"), "wrong credentials are never taken for none")
	_, err = remote.Image(reg.ref("priv/app:v1"), reg.auth(""))
	require.Error(t, err)

	reg.stop()
	var out, errOut strings.Builder
	code := cli.Main(ctx, cli.Env{Stdout: &out, Stderr: &errOut}, []string{"repo", "describe", "--data", reg.dir, "pub/app"})
	require.Equal(t, 0, code, errOut.String())
	var desc engine.Repository
	require.NoError(t, json.Unmarshal([]byte(out.String()), &desc))
	assert.True(t, desc.Public)
	out.Reset()
	code = cli.Main(ctx, cli.Env{Stdout: &out, Stderr: &errOut}, []string{"repo", "describe", "--data", reg.dir, "priv/app"})
	require.Equal(t, 0, code, errOut.String())
	assert.Contains(t, out.String(), `"public": false`)
}

// TestRegistryPolicyWithSDK: PutRegistryPolicy, GetRegistryPolicy and
// DeleteRegistryPolicy with the AWS SDK, their errors, the registry
// policy enforced (and guarded: mallory, whom it denies, may not replace
// it), and DescribeRegistry.
func TestRegistryPolicyWithSDK(t *testing.T) {
	ctx := context.Background()
	reg := startTenants(t, "", nil)
	alice, mallory := reg.ecr("alice"), reg.ecr("mallory")

	_, err := alice.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{})
	requireAPIError(t, err, "RegistryPolicyNotFoundException")
	_, err = alice.DeleteRegistryPolicy(ctx, &ecr.DeleteRegistryPolicyInput{})
	requireAPIError(t, err, "RegistryPolicyNotFoundException")
	_, err = alice.PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:PutImage","Resource":"*"}]}`)})
	requireAPIError(t, err, "InvalidParameterException")
	_, err = alice.PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String("not json")})
	requireAPIError(t, err, "InvalidParameterException")

	text := registryPolicy(denyUser("mallory", "ecr:*"))
	put, err := alice.PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(text)})
	require.NoError(t, err)
	assert.Equal(t, "000000000000", aws.ToString(put.RegistryId))
	assert.Equal(t, text, aws.ToString(put.PolicyText))
	get, err := alice.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{})
	require.NoError(t, err)
	assert.Equal(t, text, aws.ToString(get.PolicyText))

	// Enforced, and registry-level: mallory can neither push nor read or
	// replace it.
	_, err = reg.push("mallory", "mallory/app:v1")
	require.Error(t, err)
	_, err = mallory.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{})
	requireAPIError(t, err, "AccessDeniedException")
	_, err = mallory.PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(registryPolicy(denyUser("alice", "ecr:*")))})
	requireAPIError(t, err, "AccessDeniedException")
	_, err = mallory.DeleteRegistryPolicy(ctx, &ecr.DeleteRegistryPolicyInput{})
	requireAPIError(t, err, "AccessDeniedException")
	_, err = mallory.DescribeRegistry(ctx, &ecr.DescribeRegistryInput{})
	requireAPIError(t, err, "AccessDeniedException")
	get, err = alice.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{})
	require.NoError(t, err)
	assert.Equal(t, text, aws.ToString(get.PolicyText), "unchanged")

	desc, err := alice.DescribeRegistry(ctx, &ecr.DescribeRegistryInput{})
	require.NoError(t, err)
	assert.Equal(t, "000000000000", aws.ToString(desc.RegistryId))
	require.NotNil(t, desc.ReplicationConfiguration)
	assert.Empty(t, desc.ReplicationConfiguration.Rules)

	del, err := alice.DeleteRegistryPolicy(ctx, &ecr.DeleteRegistryPolicyInput{})
	require.NoError(t, err)
	assert.Equal(t, text, aws.ToString(del.PolicyText))
	_, err = alice.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{})
	requireAPIError(t, err, "RegistryPolicyNotFoundException")
	_, err = reg.push("mallory", "mallory/app:v1")
	require.NoError(t, err, "no longer denied")
}

// TestOverlappingRanges: overlapping and adjacent ranges are served once,
// coalesced; ranges adding up to more than the blob are answered with the
// blob once (200), never a multiple of it.
func TestOverlappingRanges(t *testing.T) {
	reg := startTenants(t, "", nil)
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	d := reg.blob("alice", "team/app", data)
	get := func(rng string) (int, http.Header, []byte) {
		return reg.do("alice", http.MethodGet, "/v2/team/app/blobs/"+d.String(), nil, map[string]string{"Range": rng})
	}

	status, hdr, body := get("bytes=" + strings.TrimSuffix(strings.Repeat("0-,", 64), ","))
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "10000", hdr.Get("Content-Length"))
	assert.Equal(t, data, body, "the blob once")

	status, hdr, body = get("bytes=0-5999,4000-9999")
	assert.Equal(t, http.StatusOK, status, "12000 bytes asked of 10000: the blob once")
	assert.Equal(t, data, body)

	status, hdr, body = get("bytes=100-199,150-299,300-399")
	require.Equal(t, http.StatusPartialContent, status)
	assert.Equal(t, "bytes 100-399/10000", hdr.Get("Content-Range"), "overlapping and adjacent: one range")
	assert.Equal(t, data[100:400], body)

	status, hdr, body = get("bytes=900-999,0-9,5-19")
	require.Equal(t, http.StatusPartialContent, status)
	assert.True(t, strings.HasPrefix(hdr.Get("Content-Type"), "multipart/byteranges"), hdr.Get("Content-Type"))
	assert.Equal(t, 2, strings.Count(string(body), "Content-Range:"), "two parts: 0-19 and 900-999")
	assert.Contains(t, string(body), "bytes 0-19/10000")
	assert.Contains(t, string(body), "bytes 900-999/10000")
	assert.Contains(t, string(body), string(data[0:20]))
}

// TestKeyringFlag: registryd --keyring keeps the keyring on another
// volume; with it missing (or its directory unmounted), the store is
// refused and nothing is written.
func TestKeyringFlag(t *testing.T) {
	ctx := context.Background()
	volume := t.TempDir()
	keyring := filepath.Join(volume, "keys", "keyring.json")
	require.NoError(t, os.Mkdir(filepath.Dir(keyring), 0o700))
	reg := startTenants(t, "", func(c *cli.Config) { c.Keyring = keyring })
	_, err := reg.push("alice", "team/app:v1")
	require.NoError(t, err)
	reg.stop()
	_, err = os.Stat(keyring)
	require.NoError(t, err, "the keyring is where --keyring says")
	_, err = os.Stat(filepath.Join(reg.dir, "keyring.json"))
	require.ErrorIs(t, err, os.ErrNotExist, "and nowhere else")

	for _, args := range [][]string{
		{"repo", "list", "--data", reg.dir}, // the default path: no keyring there
		{"repo", "list", "--data", reg.dir, "--keyring", filepath.Join(volume, "unmounted", "keyring.json")},
	} {
		var out, errOut strings.Builder
		code := cli.Main(ctx, cli.Env{Stdout: &out, Stderr: &errOut}, args)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut.String(), "keyring", "%v", args)
		_, err = os.Stat(filepath.Join(reg.dir, "keyring.json"))
		require.ErrorIs(t, err, os.ErrNotExist, "no new keyring made")
	}
	var out, errOut strings.Builder
	code := cli.Main(ctx, cli.Env{Stdout: &out, Stderr: &errOut}, []string{"repo", "list", "--data", reg.dir, "--keyring", keyring})
	require.Equal(t, 0, code, errOut.String())
	assert.Equal(t, "team/app\n", out.String())
}
