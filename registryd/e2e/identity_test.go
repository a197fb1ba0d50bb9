package e2e

// Identities and authentication at the wire: a real registryd on
// 127.0.0.1, driven by go-containerregistry (crane's library) and the AWS
// SDK for Go v2, asserting the OCI and AWS errors a client sees.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/registryd/cli"
)

// teamsIdentityFile gives two teams their own repositories: team-a
// (alice) pushes and pulls team-a/*, from loopback addresses only; team-b
// (bob) pushes and pulls team-b/* and creates repositories there only
// with the tag team=b; root administers. carol authenticates but is not
// in the file.
const teamsIdentityFile = `
policies:
  admin:
    Version: "2012-10-17"
    Statement: [{Effect: Allow, Action: "*", Resource: "*"}]
  team-a:
    Version: "2012-10-17"
    Statement:
      - {Sid: TeamAReadWrite, Effect: Allow, Action: "ecr:*", Resource: "arn:aws:ecr:us-east-1:000000000000:repository/team-a/*"}
      - {Sid: ListAndLogIn, Effect: Allow, Action: [ecr:DescribeRepositories, ecr:GetAuthorizationToken], Resource: "*"}
      - Sid: PushFromLoopbackOnly
        Effect: Deny
        Action: ecr:PutImage
        Resource: "*"
        Condition: {NotIpAddress: {"aws:SourceIp": "127.0.0.0/8"}}
  team-b:
    Version: "2012-10-17"
    Statement:
      - Sid: TeamBImages
        Effect: Allow
        Action: [ecr:BatchGetImage, ecr:GetDownloadUrlForLayer, ecr:BatchCheckLayerAvailability, ecr:PutImage,
                 ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload, ecr:DescribeRepositories]
        Resource: "arn:aws:ecr:us-east-1:000000000000:repository/team-b/*"
      - Sid: CreateTaggedForTeamB
        Effect: Allow
        Action: [ecr:CreateRepository, ecr:TagResource]
        Resource: "arn:aws:ecr:us-east-1:000000000000:repository/team-b/*"
        Condition: {StringEquals: {"aws:RequestTag/team": b}}
      - {Sid: LogIn, Effect: Allow, Action: ecr:GetAuthorizationToken, Resource: "*"}
groups:
  admins: {policies: [admin]}
  team-a: {policies: [team-a]}
  team-b: {policies: [team-b]}
users:
  root: {groups: [admins]}
  alice: {groups: [team-a]}
  bob: {groups: [team-b]}
`

// teams are the files of a shared registry: an htpasswd file (each
// user's password is "pw-<user>"), access keys for alice and bob, and
// the identity file.
type teams struct {
	dir, htpasswd, creds, iam string
}

// newTeams writes the files, the htpasswd file with users.
func newTeams(t *testing.T, users ...string) *teams {
	t.Helper()
	tm := &teams{dir: t.TempDir()}
	tm.htpasswd = filepath.Join(tm.dir, "htpasswd")
	tm.creds = filepath.Join(tm.dir, "ecr-credentials")
	tm.iam = filepath.Join(tm.dir, "iam.yaml")
	tm.writeUsers(t, users...)
	require.NoError(t, os.WriteFile(tm.creds, []byte("AKIAALICE:alice-secret:alice\nAKIABOB:bob-secret:bob\nAKIAROOT:root-secret:root\n"), 0o600))
	require.NoError(t, os.WriteFile(tm.iam, []byte(teamsIdentityFile), 0o600))
	return tm
}

// writeUsers rewrites the htpasswd file with users.
func (tm *teams) writeUsers(t *testing.T, users ...string) {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		hash, err := bcrypt.GenerateFromPassword([]byte("pw-"+u), bcrypt.MinCost)
		require.NoError(t, err)
		b.WriteString(u + ":" + string(hash) + "\n")
	}
	require.NoError(t, os.WriteFile(tm.htpasswd, []byte(b.String()), 0o600))
}

// config turns authentication on with the files.
func (tm *teams) config(c *cli.Config) {
	c.Htpasswd, c.ECRCredentials, c.IAM = tm.htpasswd, tm.creds, tm.iam
	// team-b's repositories are created on push with the tag team=b,
	// which team-b's CreateTaggedForTeamB asks of aws:RequestTag.
	c.Templates = append(c.Templates, cli.Template{Prefix: "team-b", AppliedFor: []string{"CREATE_ON_PUSH"},
		ResourceTags: []cli.ResourceTag{{Key: "team", Value: "b"}}})
}

// keyClient is an AWS SDK ECR client with an access key, in region.
func keyClient(addr, key, secret, region string, opts ...func(*ecr.Options)) *ecr.Client {
	return ecr.New(ecr.Options{Region: region, BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, "")}, opts...)
}

// userAuth is go-containerregistry's basic authentication of user.
func userAuth(user string) remote.Option {
	return remote.WithAuth(&authn.Basic{Username: user, Password: "pw-" + user})
}

// pushRandom pushes a small random image to ref with opts.
func pushRandom(t *testing.T, ref string, opts ...remote.Option) error {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	img, err := random.Image(512, 1)
	require.NoError(t, err)
	return remote.Write(r, img, opts...)
}

// requireRegistryError checks that err is the OCI error code with
// status, as go-containerregistry reports it. The answer to a HEAD
// request (a push's first question) has no body: its status is checked.
func requireRegistryError(t *testing.T, err error, status int, code string) *transport.Error {
	t.Helper()
	var te *transport.Error
	require.ErrorAs(t, err, &te, "%v", err)
	require.Equal(t, status, te.StatusCode, "%v", err)
	if te.Request != nil && te.Request.Method == http.MethodHead {
		return te
	}
	require.NotEmpty(t, te.Errors, "%v", err)
	assert.Equal(t, code, string(te.Errors[0].Code), "%v", err)
	return te
}

// requireWireError sends method to url with the basic credentials of
// user (none for "") and checks the OCI error JSON the registry answers.
func requireWireError(t *testing.T, method, url, user string, status int, code string) (http.Header, ociError) {
	t.Helper()
	hdr := map[string]string{}
	if user != "" {
		hdr["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":pw-"+user))
	}
	got, h, body := httpDo(t, method, url, nil, hdr)
	require.Equal(t, status, got, "%s", body)
	var e ociError
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	require.Len(t, e.Errors, 1, "%s", body)
	assert.Equal(t, code, e.Errors[0].Code)
	if status == http.StatusUnauthorized {
		assert.Equal(t, `Basic realm="berth"`, h.Get("WWW-Authenticate"))
	}
	return h, e
}

// loginToken is the password of user AWS that GetAuthorizationToken
// hands c's caller.
func loginToken(t *testing.T, c *ecr.Client) string {
	t.Helper()
	out, err := c.GetAuthorizationToken(context.Background(), &ecr.GetAuthorizationTokenInput{})
	require.NoError(t, err)
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	require.NoError(t, err)
	user, pass, ok := strings.Cut(string(raw), ":")
	require.True(t, ok)
	require.Equal(t, "AWS", user)
	return pass
}

// TestTeamsShareARegistry: each authenticated user holds the policies
// the identity file gives it and its groups, on the OCI API (basic
// credentials, login tokens) and the ECR API (access keys); a user not
// in the file holds none; the request's tags and source address are in
// the decision's context.
func TestTeamsShareARegistry(t *testing.T) {
	ctx := context.Background()
	tm := newTeams(t, "root", "alice", "bob", "carol")
	addr := startServer(t, func(c *cli.Config) {
		tm.config(c)
		c.TrustedProxies = []string{"127.0.0.1/32"}
	})

	// OCI API: alice pushes to team-a, not to team-b; carol nowhere.
	require.NoError(t, pushRandom(t, addr+"/team-a/app:v1", userAuth("alice")))
	requireRegistryError(t, pushRandom(t, addr+"/team-b/app:v1", userAuth("alice")), http.StatusForbidden, "DENIED")
	_, e := requireWireError(t, http.MethodPost, "http://"+addr+"/v2/team-b/app/blobs/uploads/", "alice", http.StatusForbidden, "DENIED")
	assert.Contains(t, e.Errors[0].Message, "arn:aws:iam::000000000000:user/alice may not ecr:InitiateLayerUpload")
	requireRegistryError(t, pushRandom(t, addr+"/team-a/app:v2", userAuth("carol")), http.StatusForbidden, "DENIED")
	_, e = requireWireError(t, http.MethodPost, "http://"+addr+"/v2/team-a/app/blobs/uploads/", "carol", http.StatusForbidden, "DENIED")
	assert.Contains(t, e.Errors[0].Message, "no statement allows", "carol holds no identity policy")
	require.NoError(t, pushRandom(t, addr+"/team-b/app:v1", userAuth("bob")))

	// A login token carries its user's policies.
	bob := keyClient(addr, "AKIABOB", "bob-secret", "us-east-1")
	bobToken := remote.WithAuth(&authn.Basic{Username: "AWS", Password: loginToken(t, bob)})
	require.NoError(t, pushRandom(t, addr+"/team-b/app:v2", bobToken))
	requireRegistryError(t, pushRandom(t, addr+"/team-a/app:v3", bobToken), http.StatusForbidden, "DENIED")

	// ECR API: CreateRepository's tags are the request's tags.
	_, err := bob.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("team-b/untagged")})
	requireAPIError(t, err, "AccessDeniedException")
	_, err = bob.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("team-b/other-team"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}})
	requireAPIError(t, err, "AccessDeniedException")
	created, err := bob.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("team-b/tagged"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("b")}}})
	require.NoError(t, err)
	_, err = bob.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: created.Repository.RepositoryArn,
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("c")}}})
	requireAPIError(t, err, "AccessDeniedException")
	_, err = bob.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: created.Repository.RepositoryArn,
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("b")}}})
	require.NoError(t, err)
	_, err = keyClient(addr, "AKIAALICE", "alice-secret", "us-east-1").CreateRepository(ctx,
		&ecr.CreateRepositoryInput{RepositoryName: aws.String("team-b/x"), Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("b")}}})
	requireAPIError(t, err, "AccessDeniedException")

	// aws:SourceIp: the peer (127.0.0.1) is a trusted proxy, so the
	// rightmost untrusted X-Forwarded-For address is the caller's; alice
	// pushes from loopback addresses only.
	manifest := func(ref string) []byte {
		r, err := name.ParseReference(addr+"/team-a/app:"+ref, name.Insecure)
		require.NoError(t, err)
		d, err := remote.Get(r, userAuth("alice"))
		require.NoError(t, err)
		return d.Manifest
	}
	m := manifest("v1")
	putFrom := func(xff string) (int, ociError) {
		hdr := map[string]string{"Content-Type": "application/vnd.docker.distribution.manifest.v2+json",
			"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw-alice"))}
		if xff != "" {
			hdr["X-Forwarded-For"] = xff
		}
		status, _, body := httpDo(t, http.MethodPut, "http://"+addr+"/v2/team-a/app/manifests/copy", m, hdr)
		var e ociError
		if status >= 400 {
			require.NoError(t, json.Unmarshal(body, &e), "%s", body)
		}
		return status, e
	}
	status, _ := putFrom("")
	assert.Equal(t, http.StatusCreated, status)
	status, _ = putFrom("127.0.0.9")
	assert.Equal(t, http.StatusCreated, status, "a loopback client behind the proxy")
	status, e = putFrom("203.0.113.9")
	require.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, "DENIED", e.Errors[0].Code)
	assert.Contains(t, e.Errors[0].Message, "PushFromLoopbackOnly")
	status, _ = putFrom("203.0.113.9, 127.0.0.9")
	assert.Equal(t, http.StatusCreated, status, "the rightmost untrusted address is the client's")
}

// TestIdentitiesReload: SIGHUP and the admin API's iam/reload read the
// files again: a user added to the identity file gains its policies, a
// user removed from the htpasswd file stops working (password and login
// token), and a bad file keeps the previous set (the admin call answers
// the error).
func TestIdentitiesReload(t *testing.T) {
	tm := newTeams(t, "root", "alice", "bob", "carol")
	addr := startServer(t, tm.config)
	bob := keyClient(addr, "AKIABOB", "bob-secret", "us-east-1")
	bobToken := remote.WithAuth(&authn.Basic{Username: "AWS", Password: loginToken(t, bob)})
	require.NoError(t, pushRandom(t, addr+"/team-b/app:v1", bobToken))
	requireRegistryError(t, pushRandom(t, addr+"/team-a/app:v1", userAuth("carol")), http.StatusForbidden, "DENIED")

	// carol joins team-a; SIGHUP reloads.
	require.NoError(t, os.WriteFile(tm.iam, []byte(teamsIdentityFile+"  carol: {groups: [team-a]}\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return pushRandom(t, addr+"/team-a/app:v1", userAuth("carol")) == nil },
		10*time.Second, 20*time.Millisecond, "carol pushes after SIGHUP")

	// bob leaves; the admin API reloads (root may, alice may not).
	tm.writeUsers(t, "root", "alice", "carol")
	require.NoError(t, os.WriteFile(tm.creds, []byte("AKIAALICE:alice-secret:alice\nAKIAROOT:root-secret:root\n"), 0o600))
	reload := func(user string) (int, []byte) {
		status, _, body := httpDo(t, http.MethodPost, "http://"+addr+"/admin/v1/iam/reload", nil,
			map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":pw-"+user))})
		return status, body
	}
	status, body := reload("alice")
	require.Equal(t, http.StatusForbidden, status, "%s", body)
	assert.Contains(t, string(body), "berth:ReloadIdentities")
	status, body = reload("root")
	require.Equal(t, http.StatusOK, status, "%s", body)
	var summary struct {
		Users []struct{ Name string } `json:"users"`
	}
	require.NoError(t, json.Unmarshal(body, &summary))
	assert.Len(t, summary.Users, 4)
	requireRegistryError(t, pushRandom(t, addr+"/team-b/app:v2", userAuth("bob")), http.StatusUnauthorized, "UNAUTHORIZED")
	requireWireError(t, http.MethodGet, "http://"+addr+"/v2/team-b/app/tags/list", "bob", http.StatusUnauthorized, "UNAUTHORIZED")
	requireRegistryError(t, pushRandom(t, addr+"/team-b/app:v2", bobToken), http.StatusUnauthorized, "UNAUTHORIZED")
	_, err := bob.DescribeRepositories(context.Background(), &ecr.DescribeRepositoriesInput{})
	requireAPIError(t, err, "UnrecognizedClientException")

	// A bad file: the old set stays, the call says why.
	require.NoError(t, os.WriteFile(tm.iam, []byte("users: {carol: {groups: [no-such-group]}}\n"), 0o600))
	status, body = reload("root")
	require.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, string(body), `group \"no-such-group\" is not defined`)
	assert.Contains(t, string(body), "the previous ones stay in force")
	require.NoError(t, pushRandom(t, addr+"/team-a/app:v3", userAuth("carol")), "carol keeps team-a")
}

// TestLoginTokensAtTheWire: a login token costs no password check (a
// hundred requests with one take a fraction of the time one dummy bcrypt
// took each before); tokens minted while authentication was off are
// refused once it is on; a token of another account is refused.
func TestLoginTokensAtTheWire(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	addr, stop := startStoppableServer(t, func(c *cli.Config) { c.Data = data })
	open := keyClient(addr, "AKIAANY", "any", "us-east-1")
	anonymousToken := loginToken(t, open)
	require.NoError(t, pushRandom(t, addr+"/team-a/app:v1", remote.WithAuth(&authn.Basic{Username: "AWS", Password: anonymousToken})))
	stop()

	tm := newTeams(t, "root", "alice")
	addr, stop = startStoppableServer(t, func(c *cli.Config) { tm.config(c); c.Data = data }) // the same token key
	requireRegistryError(t, pushRandom(t, addr+"/team-a/app:v2", remote.WithAuth(&authn.Basic{Username: "AWS", Password: anonymousToken})),
		http.StatusUnauthorized, "UNAUTHORIZED")
	alice := keyClient(addr, "AKIAALICE", "alice-secret", "us-east-1")
	token := loginToken(t, alice)
	require.NoError(t, pushRandom(t, addr+"/team-a/app:v2", remote.WithAuth(&authn.Basic{Username: "AWS", Password: token})))

	// A hundred version checks with the token: before, each paid a dummy
	// bcrypt of cost 10 (~60 ms here); now each is an HMAC.
	client := &http.Client{}
	start := time.Now()
	for range 100 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		require.NoError(t, err)
		req.SetBasicAuth("AWS", token)
		resp, err := client.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	took := time.Since(start)
	t.Logf("100 requests with a login token: %v", took)
	assert.Less(t, took, 2*time.Second, "no bcrypt per token request (100 dummy bcrypts took ~6 s)")

	// The same store and token key under another account: its tokens are
	// not this registry's.
	stop()
	addr, stop = startStoppableServer(t, func(c *cli.Config) { tm.config(c); c.Data = data; c.ECRAccountID = "111111111111" })
	requireRegistryError(t, pushRandom(t, addr+"/team-a/app:v3", remote.WithAuth(&authn.Basic{Username: "AWS", Password: token})),
		http.StatusUnauthorized, "UNAUTHORIZED")
	stop()
}

// signRequest signs r, whose body is body, with key and secret for the
// ECR API in us-east-1, as the AWS SDK does.
func signRequest(t *testing.T, r *http.Request, body []byte, key, secret string) {
	t.Helper()
	sum := sha256.Sum256(body)
	require.NoError(t, v4.NewSigner().SignHTTP(r.Context(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret},
		r, hex.EncodeToString(sum[:]), "ecr", "us-east-1", time.Now()))
}

// TestAWSIsNoPasswordUser: an htpasswd file with user AWS (the login
// tokens' user) is refused at start, with the reason.
func TestAWSIsNoPasswordUser(t *testing.T) {
	tm := newTeams(t, "alice", "AWS")
	var stderr bytes.Buffer
	code := cli.Main(context.Background(), cli.Env{Stdout: io.Discard, Stderr: &stderr},
		[]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--htpasswd", tm.htpasswd})
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), `user "AWS" is the user name of registry login tokens`)
}

// TestTokenKeyFileMode: registryd refuses to start with a login token
// key file that others may read.
func TestTokenKeyFileMode(t *testing.T) {
	data := t.TempDir()
	key := filepath.Join(data, "ecr-login-token.key")
	require.NoError(t, os.WriteFile(key, bytes.Repeat([]byte{7}, 32), 0o600))
	require.NoError(t, os.Chmod(key, 0o644))
	var stderr bytes.Buffer
	code := cli.Main(context.Background(), cli.Env{Stdout: io.Discard, Stderr: &stderr},
		[]string{"serve", "--addr", "127.0.0.1:0", "--data", data})
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "bad login token key file")
	assert.Contains(t, stderr.String(), "has mode -rw-r--r--, readable beyond its owner; want 0600")
	require.NoError(t, os.Chmod(key, 0o600))
	startServer(t, func(c *cli.Config) { c.Data = data })
}

// ecrBytesIn is the request body bytes the ECR API's handlers read, from
// the server's metrics.
func ecrBytesIn(t *testing.T, addr string) int64 {
	t.Helper()
	_, _, body := httpDo(t, http.MethodGet, "http://"+addr+"/metrics", nil, nil)
	m := regexp.MustCompile(`(?m)^berth_http_request_bytes_total\{route="ecr"\} (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	n, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(t, err)
	return int64(n)
}

// TestECRAuthenticatesBeforeReading: a call that its headers already
// condemn (an unknown access key, a credential scope of another region
// or service) is refused with AWS's error before a byte of its body is
// read; a body over its operation's limit is refused before it is read
// (Content-Length) or once it passes the limit.
func TestECRAuthenticatesBeforeReading(t *testing.T) {
	ctx := context.Background()
	tm := newTeams(t, "root")
	addr := startServer(t, tm.config)
	root := keyClient(addr, "AKIAROOT", "root-secret", "us-east-1")
	_, err := root.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("big/app")})
	require.NoError(t, err)
	up, err := root.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: aws.String("big/app")})
	require.NoError(t, err)
	part := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16) // 10 MiB, 13.3 MiB in base64
	uploadPart := func(c *ecr.Client) error {
		_, err := c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: aws.String("big/app"), UploadId: up.UploadId,
			PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(int64(len(part) - 1)), LayerPartBlob: part})
		return err
	}

	before := ecrBytesIn(t, addr)
	tests := []struct {
		name    string
		client  *ecr.Client
		code    string
		message string
	}{
		{"unknown access key", keyClient(addr, "AKIAUNKNOWN", "x", "us-east-1"), "UnrecognizedClientException", "The security token included in the request is invalid"},
		{"another region", keyClient(addr, "AKIAROOT", "root-secret", "eu-west-1"), "InvalidSignatureException", "Credential should be scoped to a valid region, not 'eu-west-1'. "},
		{"another service", keyClient(addr, "AKIAROOT", "root-secret", "us-east-1", ecr.WithSigV4SigningName("s3")), "InvalidSignatureException", "Credential should be scoped to correct service: 'ecr'. "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := uploadPart(tt.client)
			requireAPIError(t, err, tt.code)
			var ae interface{ ErrorMessage() string }
			require.True(t, errors.As(err, &ae))
			assert.True(t, strings.HasPrefix(ae.ErrorMessage(), tt.message), "%q", ae.ErrorMessage())
		})
	}
	assert.Equal(t, before, ecrBytesIn(t, addr), "no body was read")

	// A good key: a 10 MiB part is within UploadLayerPart's 64 MiB.
	require.NoError(t, uploadPart(root))
	after := ecrBytesIn(t, addr)
	assert.Greater(t, after-before, int64(len(part)), "the part was read")

	// Over an operation's limit: 1 MiB for a lifecycle policy.
	huge := `{"rules":[{"rulePriority":1,"description":"` + strings.Repeat("x", 2<<20) + `","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
	_, err = root.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("big/app"), LifecyclePolicyText: aws.String(huge)})
	requireAPIError(t, err, "LimitExceededException")
	assert.Contains(t, err.Error(), "request body of PutLifecyclePolicy larger than 1048576 bytes")
	assert.Equal(t, after, ecrBytesIn(t, addr), "refused by its Content-Length, unread")

	// A chunked body without a Content-Length is cut at the limit.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/", io.MultiReader(strings.NewReader(huge)))
	require.NoError(t, err)
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.PutLifecyclePolicy")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.ContentLength = -1
	signRequest(t, req, []byte(huge), "AKIAROOT", "root-secret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "LimitExceededException", resp.Header.Get("X-Amzn-ErrorType"), "%s", body)
	assert.LessOrEqual(t, ecrBytesIn(t, addr)-after, int64(1<<20+1), "read up to the limit and no further")
}

// TestAnonymousRefusalChallenges: with authentication on, an anonymous
// caller that authorization refuses gets 401 UNAUTHORIZED with the Basic
// challenge, so that clients retry with credentials; an authenticated
// caller that is refused gets 403 DENIED.
func TestAnonymousRefusalChallenges(t *testing.T) {
	tm := newTeams(t, "root", "alice", "bob")
	addr := startServer(t, func(c *cli.Config) { tm.config(c); c.AnonymousPull = true })
	require.NoError(t, pushRandom(t, addr+"/team-a/app:v1", userAuth("alice")))
	reg, err := name.NewRegistry(addr, name.Insecure)
	require.NoError(t, err)

	// The catalog: anonymous pulls do not list repositories.
	_, err = remote.Catalog(context.Background(), reg)
	requireRegistryError(t, err, http.StatusUnauthorized, "UNAUTHORIZED")
	status, hdr, _ := httpDo(t, http.MethodGet, "http://"+addr+"/v2/_catalog", nil, nil)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, `Basic realm="berth"`, hdr.Get("WWW-Authenticate"))
	repos, err := remote.Catalog(context.Background(), reg, userAuth("alice"))
	require.NoError(t, err, "alice's credentials, once asked for")
	assert.Contains(t, repos, "team-a/app")
	repos, err = remote.Catalog(context.Background(), reg, userAuth("bob"))
	require.NoError(t, err, "the catalog lists what bob may describe")
	assert.NotContains(t, repos, "team-a/app", "and nothing of team-a's")

	// A repository whose policy denies everyone's pulls.
	root := keyClient(addr, "AKIAROOT", "root-secret", "us-east-1")
	_, err = root.SetRepositoryPolicy(context.Background(), &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("team-a/app"),
		PolicyText: aws.String(`{"Version":"2012-10-17","Statement":[{"Sid":"Frozen","Effect":"Deny","Principal":"*","Action":"ecr:BatchGetImage"}]}`)})
	require.NoError(t, err)
	ref, err := name.ParseReference(addr+"/team-a/app:v1", name.Insecure)
	require.NoError(t, err)
	_, err = remote.Get(ref)
	requireRegistryError(t, err, http.StatusUnauthorized, "UNAUTHORIZED")
	_, err = remote.Get(ref, userAuth("alice"))
	te := requireRegistryError(t, err, http.StatusForbidden, "DENIED")
	assert.Contains(t, te.Errors[0].Message, "Frozen")

	// An open registry has no credentials to ask for: DENIED.
	open := startServer(t, nil)
	require.NoError(t, pushRandom(t, open+"/r/app:v1"))
	_, err = keyClient(open, "AKIAANY", "any", "us-east-1").SetRepositoryPolicy(context.Background(), &ecr.SetRepositoryPolicyInput{
		RepositoryName: aws.String("r/app"),
		PolicyText:     aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:BatchGetImage"}]}`)})
	require.NoError(t, err)
	ref, err = name.ParseReference(open+"/r/app:v1", name.Insecure)
	require.NoError(t, err)
	_, err = remote.Get(ref)
	requireRegistryError(t, err, http.StatusForbidden, "DENIED")
}

// TestSimulateThroughTheAdminAPI: POST /admin/v1/iam/simulate answers the
// daemon's decision with the deciding statement, for the identities in
// force or an identity file sent along; it needs berth:SimulatePolicy.
func TestSimulateThroughTheAdminAPI(t *testing.T) {
	tm := newTeams(t, "root", "alice", "bob")
	addr := startServer(t, tm.config)
	root := keyClient(addr, "AKIAROOT", "root-secret", "us-east-1")
	_, err := root.CreateRepository(context.Background(), &ecr.CreateRepositoryInput{RepositoryName: aws.String("team-a/app")})
	require.NoError(t, err)
	_, err = root.SetRepositoryPolicy(context.Background(), &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("team-a/app"),
		PolicyText: aws.String(`{"Version":"2012-10-17","Statement":[{"Sid":"NoDeletes","Effect":"Deny","Principal":"*","Action":"ecr:BatchDeleteImage"}]}`)})
	require.NoError(t, err)
	simulate := func(user string, body any) (int, map[string]any) {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		status, _, answer := httpDo(t, http.MethodPost, "http://"+addr+"/admin/v1/iam/simulate", b,
			map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":pw-"+user))})
		var v map[string]any
		require.NoError(t, json.Unmarshal(answer, &v), "%s", answer)
		return status, v
	}
	tests := []struct {
		body     map[string]any
		decision string
		reason   string
	}{
		{map[string]any{"user": "alice", "action": "ecr:PutImage", "repository": "team-a/app", "sourceIp": "127.0.0.1"}, "Allow", `identity policy "team-a" statement 0`},
		{map[string]any{"user": "alice", "action": "ecr:PutImage", "repository": "team-a/app"}, "ExplicitDeny", "PushFromLoopbackOnly"}, // no address: NotIpAddress matches
		{map[string]any{"user": "alice", "action": "ecr:PutImage", "repository": "team-a/app", "sourceIp": "203.0.113.9"}, "ExplicitDeny", "PushFromLoopbackOnly"},
		{map[string]any{"user": "alice", "action": "ecr:BatchDeleteImage", "repository": "team-a/app"}, "ExplicitDeny", "NoDeletes"},
		{map[string]any{"user": "bob", "action": "ecr:PutImage", "repository": "team-a/app"}, "ImplicitDeny", "no statement allows"},
		{map[string]any{"user": "bob", "action": "ecr:CreateRepository", "repository": "team-b/new", "requestTags": map[string]string{"team": "b"}}, "Allow", "CreateTaggedForTeamB"},
		{map[string]any{"user": "nobody", "action": "ecr:BatchGetImage", "repository": "team-a/app"}, "ImplicitDeny", "no statement allows"},
		{map[string]any{"user": "bob", "action": "ecr:PutImage", "repository": "team-a/app",
			"identityFile": "policies: {p: {Version: '2012-10-17', Statement: [{Effect: Allow, Action: 'ecr:*', Resource: '*'}]}}\nusers: {bob: {policies: [p]}}"},
			"Allow", `identity policy "p"`},
	}
	for _, tt := range tests {
		status, v := simulate("root", tt.body)
		require.Equal(t, http.StatusOK, status, "%v", v)
		assert.Equal(t, tt.decision, v["decision"], "%v", tt.body)
		assert.Contains(t, v["reason"], tt.reason, "%v", tt.body)
	}
	status, v := simulate("alice", tests[0].body)
	assert.Equal(t, http.StatusForbidden, status, "alice may not simulate: %v", v)
	status, v = simulate("root", map[string]any{"user": "alice", "action": "ecr:PutImages"})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, fmt.Sprint(v), "not one Berth knows")
}
