package e2e

// The hostile-tenant suite's fixture: one registryd over TLS on
// 127.0.0.1 shared by an administrator, two teams, a reader and an
// outsider, with an identity file, repository policies, a registry
// policy, KMS keys on a keyring kept outside the store, creation
// templates and pull-through cache rules to an upstream registryd; the
// clients each user drives it with; and the fingerprint of the store
// that every refused attempt must leave as it found it.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/registryd/cli"
)

// The fixture's account, region and users. Every user's password is
// "pw-<user>" and its ECR access key "AKIA<USER>" with secret
// "secret-<user>".
const (
	tnAccount = "000000000000"
	tnRegion  = "us-east-1"
)

// tnUsers are the fixture's users: admin (group admins), alice (team-a),
// bob (team-b), carol (readers: pull on team-b/*), dave (auditors: may
// describe every repository no policy hides from him), mallory (an
// outsider who may only log in), frank (authenticates, but the identity
// file does not name him: he holds no policy) and eve (team-a, removed
// during the suite).
var tnUsers = []string{"admin", "alice", "bob", "carol", "dave", "mallory", "frank", "eve"}

// tnARN is the ARN of a fixture user; "" (an anonymous caller) is "*",
// as the audit log names it.
func tnARN(user string) string {
	if user == "" {
		return "*"
	}
	return "arn:aws:iam::" + tnAccount + ":user/" + user
}

// tnIdentityFile gives the users their groups and identity policies
// (registryd --iam). Each statement has a Sid so that a decision names
// it.
const tnIdentityFile = `
policies:
  administrator:
    Version: "2012-10-17"
    Statement: [{Sid: Everything, Effect: Allow, Action: "*", Resource: "*"}]
  log-in:
    Version: "2012-10-17"
    Statement: [{Sid: LogIn, Effect: Allow, Action: ecr:GetAuthorizationToken, Resource: "*"}]
  team-a:
    Version: "2012-10-17"
    Statement:
      - Sid: TeamARepositoriesOverTLS
        Effect: Allow
        Action: "*"
        Resource: "arn:aws:ecr:*:*:repository/team-a/*"
        Condition: {Bool: {"aws:SecureTransport": "true"}}
      - {Sid: TeamAKey, Effect: Allow, Action: [kms:CreateGrant, kms:DescribeKey], Resource: "arn:aws:kms:*:*:key/team-a-key"}
      - Sid: CreateProjectsTaggedA
        Effect: Allow
        Action: [ecr:CreateRepository, ecr:TagResource]
        Resource: "arn:aws:ecr:*:*:repository/projects/*"
        Condition: {StringEquals: {"aws:RequestTag/team": a}, StringEqualsIfExists: {"ecr:ResourceTag/team": a}}
      - Sid: PullProjectsTaggedA
        Effect: Allow
        Action: [ecr:BatchGetImage, ecr:GetDownloadUrlForLayer, ecr:BatchCheckLayerAvailability, ecr:DescribeImages]
        Resource: "arn:aws:ecr:*:*:repository/projects/*"
        Condition: {StringEquals: {"ecr:ResourceTag/team": a}}
      - Sid: PushFromLoopbackOnly
        Effect: Deny
        Action: ecr:PutImage
        Resource: "*"
        Condition: {NotIpAddress: {"aws:SourceIp": "127.0.0.1/32"}}
  team-b:
    Version: "2012-10-17"
    Statement:
      - Sid: TeamBRepositoriesOverTLS
        Effect: Allow
        Action: "*"
        Resource: "arn:aws:ecr:*:*:repository/team-b/*"
        Condition: {Bool: {"aws:SecureTransport": "true"}}
      - {Sid: TeamBKey, Effect: Allow, Action: [kms:CreateGrant, kms:DescribeKey], Resource: "arn:aws:kms:*:*:key/team-b-key"}
      - Sid: PullProjectsTaggedB
        Effect: Allow
        Action: [ecr:BatchGetImage, ecr:GetDownloadUrlForLayer, ecr:BatchCheckLayerAvailability, ecr:DescribeImages]
        Resource: "arn:aws:ecr:*:*:repository/projects/*"
        Condition: {StringEquals: {"ecr:ResourceTag/team": b}}
  cache-readers:
    Version: "2012-10-17"
    Statement:
      - Sid: PullTheCache
        Effect: Allow
        Action: [ecr:BatchGetImage, ecr:GetDownloadUrlForLayer, ecr:BatchCheckLayerAvailability]
        Resource: "arn:aws:ecr:*:*:repository/hub/*"
  homes:
    Version: "2012-10-17"
    Statement:
      - {Sid: OwnHome, Effect: Allow, Action: "ecr:*", Resource: "arn:aws:ecr:*:*:repository/home/${aws:username}/*"}
  readers:
    Version: "2012-10-17"
    Statement:
      - Sid: PullTeamB
        Effect: Allow
        Action: [ecr:BatchGetImage, ecr:GetDownloadUrlForLayer, ecr:BatchCheckLayerAvailability]
        Resource: "arn:aws:ecr:*:*:repository/team-b/*"
      - Sid: ListTeamBUntil2999
        Effect: Allow
        Action: [ecr:ListImages, ecr:DescribeImages]
        Resource: "arn:aws:ecr:*:*:repository/team-b/*"
        Condition: {DateLessThan: {"aws:CurrentTime": "2999-12-31T23:59:59Z"}}
      - Sid: DescribeTeamBFromLoopback
        Effect: Allow
        Action: ecr:DescribeRepositories
        Resource: "arn:aws:ecr:*:*:repository/team-b/*"
        Condition: {IpAddress: {"aws:SourceIp": "127.0.0.1/32"}}
      - Sid: DeleteTeamBUntil2001
        Effect: Allow
        Action: ecr:BatchDeleteImage
        Resource: "arn:aws:ecr:*:*:repository/team-b/*"
        Condition: {DateLessThan: {"aws:CurrentTime": "2001-01-01T00:00:00Z"}}
  inventory:
    Version: "2012-10-17"
    Statement: [{Sid: DescribeEveryRepository, Effect: Allow, Action: ecr:DescribeRepositories, Resource: "*"}]
groups:
  admins: {policies: [administrator]}
  team-a: {policies: [log-in, team-a, cache-readers, homes]}
  team-b: {policies: [log-in, team-b, cache-readers, homes]}
  readers: {policies: [log-in, readers]}
  auditors: {policies: [log-in, inventory]}
  outsiders: {policies: [log-in]}
users:
  admin: {groups: [admins]}
  alice: {groups: [team-a]}
  bob: {groups: [team-b]}
  carol: {groups: [readers]}
  dave: {groups: [auditors]}
  mallory: {groups: [outsiders]}
  eve: {groups: [team-a]}
`

// The repository policies the teams set, and the registry policy.
const (
	// tnPolicyBobPullsApp: team-a lets bob pull team-a/app, and only pull.
	tnPolicyBobPullsApp = `{"Version":"2012-10-17","Statement":[{"Sid":"BobPullsApp","Effect":"Allow",
		"Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},
		"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}`
	// tnPolicyInbox: team-a lets the outsider push to team-a/inbox, and
	// only push.
	tnPolicyInbox = `{"Version":"2012-10-17","Statement":[{"Sid":"OutsiderDropsOff","Effect":"Allow",
		"Principal":{"AWS":"arn:aws:iam::000000000000:user/mallory"},
		"Action":["ecr:InitiateLayerUpload","ecr:UploadLayerPart","ecr:CompleteLayerUpload","ecr:PutImage","ecr:BatchCheckLayerAvailability"]}]}`
	// tnPolicyPublic makes shared/base public: anyone pulls it.
	tnPolicyPublic = `{"Version":"2012-10-17","Statement":[{"Sid":"Public","Effect":"Allow","Principal":"*",
		"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability","ecr:ListImages"]}]}`
	// tnPolicyDocs: team-b lets alice pull team-b/docs, named by a
	// condition on aws:PrincipalArn under Principal "*" (which must not
	// make the repository public).
	tnPolicyDocs = `{"Version":"2012-10-17","Statement":[{"Sid":"AliceReadsDocs","Effect":"Allow","Principal":"*",
		"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"],
		"Condition":{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::000000000000:user/alice"}}}]}`
	// tnPolicySecret hides team-a/secret from everyone but team-a and the
	// administrator, whatever their identity policies let them describe.
	tnPolicySecret = `{"Version":"2012-10-17","Statement":[{"Sid":"HiddenOutsideTeamA","Effect":"Deny","Principal":"*",
		"Action":"ecr:DescribeRepositories",
		"Condition":{"StringNotEquals":{"aws:PrincipalArn":["arn:aws:iam::000000000000:user/alice","arn:aws:iam::000000000000:user/admin"]}}}]}`
	// tnRegistryPolicy lets the teams fill the pull-through cache (import
	// and create under hub/) and denies the outsider any repository.
	tnRegistryPolicy = `{"Version":"2012-10-17","Statement":[` +
		`{"Sid":"TeamsFillTheCache","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::000000000000:user/alice","arn:aws:iam::000000000000:user/bob"]},` +
		`"Action":["ecr:BatchImportUpstreamImage","ecr:CreateRepository"],"Resource":"arn:aws:ecr:us-east-1:000000000000:repository/hub/*"},` +
		`{"Sid":"OutsidersCreateNothing","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/mallory"},"Action":"ecr:CreateRepository","Resource":"*"}]}`
)

// tnImage is an image of the fixture: its manifest and blobs.
type tnImage struct {
	img      v1.Image
	digest   digest.Digest // the manifest's
	manifest []byte
	layer    digest.Digest
	config   digest.Digest
	// plain is the layer (a tar); secret is random bytes of the file it
	// holds, which must appear in no file of the store (encryption at
	// rest).
	plain, secret []byte
}

// tenancy is the fixture: the registry, its files and what the suite
// knows of its content.
type tenancy struct {
	t                               *testing.T
	addr                            string // the registry, HTTPS
	upstream                        string // the pull-through cache's upstream, HTTP
	data                            string // the store
	keyring                         string // the keyring, outside the store
	files                           string // htpasswd, ECR credentials, identity file, TLS
	htpasswd, creds, iam, cert, key string
	stop                            func()

	// log records the request ids of the answers while an attempt runs.
	log *tnRequestLog
	// client trusts the registry's certificate and records request ids.
	client *http.Client
	// images by "repo:tag".
	images map[string]*tnImage
	// uploads are upload sessions the owners opened (OCI paths, from
	// their Location), which refused callers try to use.
	uploads map[string]string
	// ecrUpload is an upload id bob opened in team-b/app with the ECR API.
	ecrUpload string
	// sessions are the paths of the open upload sessions the fingerprint
	// reads (the OCI API serves the status of the ECR API's uploads too).
	sessions []string
	// preAuthToken is a login token minted while the registry was open;
	// eveToken one of eve's, who leaves.
	preAuthToken, eveToken string
	// upstreamOnly is a digest that only the upstream registry holds.
	upstreamOnly digest.Digest
	// hostile is a proxy over the upstream that lies while lying is set:
	// blobs come with a byte flipped, manifests with a byte added (their
	// Docker-Content-Digest kept). The rule hub/evil points at it.
	hostile string
	lying   atomic.Bool
	// evil is the upstream's library/base:evil, which the cache has not
	// fetched when the hostile proxy starts lying about it.
	evil *tnImage

	// started is when the suite began (RFC 3339), for the audit query.
	started string
	// print is the store's fingerprint as the last refusal left it.
	print string
	// outcomes are the refused attempts as they ran; granted counts the
	// grants.
	outcomes []tnOutcome
	granted  int
	// denials are the event ids of the denials the admin route answered.
	denials map[string]bool
}

// tnRequestLog collects the X-Request-Id (or X-Amzn-RequestId) of every
// answer while recording.
type tnRequestLog struct {
	mu  sync.Mutex
	on  bool
	ids []string
}

func (l *tnRequestLog) start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.on, l.ids = true, nil
}

func (l *tnRequestLog) stop() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.on = false
	return l.ids
}

// tnRecordingTransport is the clients' transport: it records request ids.
type tnRecordingTransport struct {
	next http.RoundTripper
	log  *tnRequestLog
}

func (rt *tnRecordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := rt.next.RoundTrip(r)
	if err == nil {
		id := resp.Header.Get("X-Request-Id")
		if id == "" {
			id = resp.Header.Get("X-Amzn-RequestId")
		}
		rt.log.mu.Lock()
		if rt.log.on && id != "" {
			rt.log.ids = append(rt.log.ids, id)
		}
		rt.log.mu.Unlock()
	}
	return resp, err
}

// newTenancy builds the fixture: files, keys, the upstream, the
// registry, and the repositories the administrator makes.
func newTenancy(t *testing.T) *tenancy {
	t.Helper()
	ctx := context.Background()
	f := &tenancy{t: t, data: t.TempDir(), files: t.TempDir(), log: &tnRequestLog{},
		started: time.Now().UTC().Format(time.RFC3339Nano),
		images:  map[string]*tnImage{}, uploads: map[string]string{}}
	f.keyring = filepath.Join(t.TempDir(), "keys", "keyring.json") // another "volume"
	require.NoError(t, os.Mkdir(filepath.Dir(f.keyring), 0o700))
	f.htpasswd = filepath.Join(f.files, "htpasswd")
	f.creds = filepath.Join(f.files, "ecr-credentials")
	f.iam = filepath.Join(f.files, "iam.yaml")
	f.writeIdentities(tnUsers, tnIdentityFile)
	f.cert, f.key = tnCertificate(t, f.files)
	pool := x509.NewCertPool()
	certPEM, err := os.ReadFile(f.cert)
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(certPEM))
	f.client = &http.Client{Transport: &tnRecordingTransport{log: f.log, next: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 16,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}}}

	// Before authentication: the store served open, and a login token
	// minted then (it must not open the registry once authentication is
	// on).
	open, stopOpen := startStoppableServer(t, func(c *cli.Config) { c.Data, c.Keyring = f.data, f.keyring })
	out, err := ecr.New(ecr.Options{Region: tnRegion, BaseEndpoint: aws.String("http://" + open),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAANYONE", "anything", "")}).
		GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	require.NoError(t, err)
	f.preAuthToken = tnTokenPassword(t, out)
	stopOpen()

	// The teams' keys, made by the operator on the stopped store.
	for _, key := range []string{"team-a-key", "team-b-key"} {
		var stdout, stderr bytes.Buffer
		code := cli.Main(ctx, cli.Env{Stdout: &stdout, Stderr: &stderr},
			[]string{"keys", "create", "--data", f.data, "--keyring", f.keyring, key})
		require.Equal(t, 0, code, "keys create %s: %s", key, stderr.String())
	}

	// The upstream of the pull-through cache: an open registryd, and a
	// hostile proxy over it.
	f.upstream = startServer(t, nil)
	for _, s := range []string{"library/base:v1", "library/base:evil", "app:evil"} {
		img := tnNewImage(t, "upstream "+s)
		ref, err := name.ParseReference(f.upstream+"/"+s, name.Insecure)
		require.NoError(t, err)
		require.NoError(t, remote.Write(ref, img.img))
		switch s {
		case "app:evil":
			f.upstreamOnly = img.digest
		case "library/base:evil":
			f.evil = img
		}
	}
	f.hostile = f.startHostileUpstream()

	f.start()
	f.populate()
	return f
}

// start starts the registry with authentication on over the store.
func (f *tenancy) start() {
	f.addr, f.stop = startStoppableServer(f.t, func(c *cli.Config) {
		c.Data, c.Keyring = f.data, f.keyring
		c.TLSCert, c.TLSKey = f.cert, f.key
		c.Htpasswd, c.ECRCredentials, c.IAM = f.htpasswd, f.creds, f.iam
		c.TrustedProxies = []string{"127.0.0.1/32"} // so that X-Forwarded-For can name another source
		c.CreateOnPush = false                      // ECR's behaviour: repositories come from templates
		c.PullThroughRefresh = -1
	})
}

// startHostileUpstream serves a proxy over the upstream on 127.0.0.1
// that alters what it relays while f.lying is set.
func (f *tenancy) startHostileUpstream() string {
	up, err := url.Parse("http://" + f.upstream)
	require.NoError(f.t, err)
	proxy := httputil.NewSingleHostReverseProxy(up)
	proxy.ModifyResponse = func(r *http.Response) error {
		if !f.lying.Load() || r.Request.Method != http.MethodGet || r.StatusCode != http.StatusOK {
			return nil
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		switch {
		case strings.Contains(r.Request.URL.Path, "/blobs/") && len(b) > 0:
			b[len(b)/2] ^= 0xff
		case strings.Contains(r.Request.URL.Path, "/manifests/"):
			b = append(b, '\n')
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		r.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(f.t, err)
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	f.t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// writeIdentities writes the htpasswd, credentials and identity files
// for users.
func (f *tenancy) writeIdentities(users []string, identities string) {
	var htpasswd, creds strings.Builder
	for _, u := range users {
		hash, err := bcrypt.GenerateFromPassword([]byte("pw-"+u), bcrypt.MinCost)
		require.NoError(f.t, err)
		htpasswd.WriteString(u + ":" + string(hash) + "\n")
		creds.WriteString(tnAccessKey(u) + ":secret-" + u + ":" + u + "\n")
	}
	require.NoError(f.t, os.WriteFile(f.htpasswd, []byte(htpasswd.String()), 0o600))
	require.NoError(f.t, os.WriteFile(f.creds, []byte(creds.String()), 0o600))
	require.NoError(f.t, os.WriteFile(f.iam, []byte(identities), 0o600))
}

func tnAccessKey(user string) string { return "AKIA" + strings.ToUpper(user) }

// populate makes, as admin, what the teams start with.
func (f *tenancy) populate() {
	t, ctx := f.t, context.Background()
	admin := f.ecr("admin")
	create := func(repo string, in *ecr.CreateRepositoryInput) {
		if in == nil {
			in = &ecr.CreateRepositoryInput{}
		}
		in.RepositoryName = aws.String(repo)
		_, err := admin.CreateRepository(ctx, in)
		require.NoError(t, err, repo)
	}
	tag := func(team string) []types.Tag {
		return []types.Tag{{Key: aws.String("team"), Value: aws.String(team)}}
	}
	create("team-a/app", &ecr.CreateRepositoryInput{Tags: tag("a")})
	create("team-a/inbox", &ecr.CreateRepositoryInput{Tags: tag("a")})
	create("team-a/secret", &ecr.CreateRepositoryInput{Tags: tag("a"), EncryptionConfiguration: &types.EncryptionConfiguration{
		EncryptionType: types.EncryptionTypeKms, KmsKey: aws.String("team-a-key")}})
	create("team-b/app", &ecr.CreateRepositoryInput{Tags: tag("b"), ImageTagMutability: types.ImageTagMutabilityImmutable})
	create("team-b/docs", &ecr.CreateRepositoryInput{Tags: tag("b")})
	create("shared/base", nil)
	create("projects/alpha", &ecr.CreateRepositoryInput{Tags: tag("a")})
	create("projects/beta", &ecr.CreateRepositoryInput{Tags: tag("b")})
	for _, s := range []string{"team-a/app:v1", "team-a/secret:v1", "team-b/app:v1", "team-b/docs:v1", "shared/base:v1", "projects/alpha:v1", "projects/beta:v1"} {
		f.images[s] = f.pushAs("admin", s)
	}
	for repo, text := range map[string]string{"team-a/app": tnPolicyBobPullsApp, "team-a/inbox": tnPolicyInbox,
		"shared/base": tnPolicyPublic, "team-b/docs": tnPolicyDocs, "team-a/secret": tnPolicySecret} {
		_, err := admin.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String(repo), PolicyText: aws.String(text)})
		require.NoError(t, err, repo)
	}
	_, err := admin.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("team-b/app"),
		LifecyclePolicyText: aws.String(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}`)})
	require.NoError(t, err)
	_, err = admin.PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(tnRegistryPolicy)})
	require.NoError(t, err)

	// Templates: homes are made on push; team-a's new repositories are
	// made on push under team-a's key.
	_, err = admin.CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{
		Prefix: aws.String("home"), AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush},
		ResourceTags: []types.Tag{{Key: aws.String("kind"), Value: aws.String("home")}}})
	require.NoError(t, err)
	_, err = admin.CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{
		Prefix: aws.String("team-a"), AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush},
		EncryptionConfiguration: &types.EncryptionConfigurationForRepositoryCreationTemplate{
			EncryptionType: types.EncryptionTypeKms, KmsKey: aws.String("team-a-key")},
		ResourceTags: tag("a")})
	require.NoError(t, err)
	// An administrator's mistake: team-b/vault's template seals under
	// team-a's key (team-b may not use it, so pushes there create nothing).
	_, err = admin.CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{
		Prefix: aws.String("team-b/vault"), AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush},
		EncryptionConfiguration: &types.EncryptionConfigurationForRepositoryCreationTemplate{
			EncryptionType: types.EncryptionTypeKms, KmsKey: aws.String("team-a-key")}})
	require.NoError(t, err)
	// Pull-through cache rules: hub, a careless one over team-b, and
	// hub/evil to the hostile proxy, through which the administrator
	// caches library/base:v1 while it is honest.
	for prefix, upstream := range map[string]string{"hub": f.upstream, "team-b": f.upstream, "hub/evil": f.hostile} {
		_, err = admin.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String(prefix), UpstreamRegistryUrl: aws.String("http://" + upstream)})
		require.NoError(t, err, prefix)
	}
	_, err = remote.Image(f.ref("hub/evil/library/base:v1"), f.remote("admin")...)
	require.NoError(t, err)
	// Only the manifest was pulled: the image is stored in the background,
	// after the fill's head start. Polled until it is (the daemon's own
	// work; no clock serves), so that the refusals find the store settled.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, ok := f.imagesOf(t, "hub/evil/library/base")["v1"]; ok {
			break
		}
	}
	require.Contains(t, f.imagesOf(t, "hub/evil/library/base"), "v1")

	// Upload sessions the owners leave open.
	for owner, repo := range map[string]string{"alice": "team-a/app", "bob": "team-b/app"} {
		status, hdr, body := f.do(owner, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
		require.Equal(t, http.StatusAccepted, status, "%s", body)
		loc := hdr.Get("Location")
		if i := strings.Index(loc, "/v2/"); i > 0 {
			loc = loc[i:]
		}
		require.True(t, strings.HasPrefix(loc, "/v2/"+repo+"/blobs/uploads/"), loc)
		f.uploads[repo] = loc
	}
	up, err := f.ecr("bob").InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: aws.String("team-b/app")})
	require.NoError(t, err)
	f.ecrUpload = aws.ToString(up.UploadId)
	f.sessions = []string{f.uploads["team-a/app"], f.uploads["team-b/app"], "/v2/team-b/app/blobs/uploads/" + f.ecrUpload}

	out, err := f.ecr("eve").GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	require.NoError(t, err)
	f.eveToken = tnTokenPassword(t, out)
}

// tnTokenPassword is the password of user AWS in a GetAuthorizationToken
// answer.
func tnTokenPassword(t *testing.T, out *ecr.GetAuthorizationTokenOutput) string {
	t.Helper()
	require.Len(t, out.AuthorizationData, 1)
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	require.NoError(t, err)
	user, pass, ok := strings.Cut(string(raw), ":")
	require.True(t, ok)
	require.Equal(t, "AWS", user)
	return pass
}

// tnNewImage is an image of one uncompressed tar layer holding one
// file: seed's marker line and 4 KiB of random bytes (which no
// compression hides, so that a window of them can be looked for on disk).
func tnNewImage(t *testing.T, seed string) *tnImage {
	t.Helper()
	content := make([]byte, 4096)
	_, err := rand.Read(content)
	require.NoError(t, err)
	content = append([]byte("tenancy layer of "+seed+"\n"), content...)
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "data/secret.bin", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}))
	_, err = tw.Write(content)
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	plain := layer.Bytes()
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(plain, ggcrtypes.OCIUncompressedLayer))
	require.NoError(t, err)
	img, err = mutate.Config(img, v1.Config{Labels: map[string]string{"seed": seed}})
	require.NoError(t, err)
	img = mutate.MediaType(img, ggcrtypes.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, ggcrtypes.OCIConfigJSON)
	d, err := img.Digest()
	require.NoError(t, err)
	m, err := img.RawManifest()
	require.NoError(t, err)
	cfg, err := img.ConfigName()
	require.NoError(t, err)
	return &tnImage{img: img, digest: digest.Digest(d.String()), manifest: m,
		layer: digest.FromBytes(plain), config: digest.Digest(cfg.String()), plain: plain, secret: content[len(content)-1024:]}
}

// pushAs pushes a new image to repo:tag as user with go-containerregistry.
func (f *tenancy) pushAs(user, repoTag string) *tnImage {
	f.t.Helper()
	img := tnNewImage(f.t, repoTag)
	require.NoError(f.t, remote.Write(f.ref(repoTag), img.img, f.remote(user)...), "push %s as %s", repoTag, user)
	return img
}

// ref parses repo:tag (or repo@digest) on the registry.
func (f *tenancy) ref(s string) name.Reference {
	ref, err := name.ParseReference(f.addr+"/"+s, name.StrictValidation)
	require.NoError(f.t, err)
	return ref
}

// remote is the go-containerregistry options of user: basic credentials
// ("" for none) over the fixture's TLS client.
func (f *tenancy) remote(user string) []remote.Option {
	var a authn.Authenticator = authn.Anonymous
	if user != "" {
		a = &authn.Basic{Username: user, Password: "pw-" + user}
	}
	return []remote.Option{remote.WithAuth(a), remote.WithTransport(f.client.Transport)}
}

// remoteToken is the go-containerregistry options of a login token.
func (f *tenancy) remoteToken(token string) []remote.Option {
	return []remote.Option{remote.WithAuth(&authn.Basic{Username: "AWS", Password: token}), remote.WithTransport(f.client.Transport)}
}

// ecr is user's AWS SDK client (the ECR API over TLS).
func (f *tenancy) ecr(user string, opts ...func(*ecr.Options)) *ecr.Client {
	return f.ecrKey(tnAccessKey(user), "secret-"+user, tnRegion, opts...)
}

// ecrKey is an AWS SDK client with any key, secret and region.
func (f *tenancy) ecrKey(key, secret, region string, opts ...func(*ecr.Options)) *ecr.Client {
	return ecr.New(ecr.Options{Region: region, BaseEndpoint: aws.String("https://" + f.addr), HTTPClient: f.client,
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, ""),
		// One attempt: a refusal is the answer, not a reason to retry.
		RetryMaxAttempts: 1}, opts...)
}

// basic is the Authorization header of user's password ("" for none).
func tnBasic(user string) string {
	if user == "" {
		return ""
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":pw-"+user))
}

// do sends one OCI or admin request as user ("" anonymous) with net/http.
func (f *tenancy) do(user, method, path string, body []byte, hdr map[string]string) (int, http.Header, []byte) {
	f.t.Helper()
	h := map[string]string{}
	if user != "" {
		h["Authorization"] = tnBasic(user)
	}
	for k, v := range hdr {
		h[k] = v
	}
	return f.send(method, path, body, h)
}

// send sends one request with exactly the headers hdr.
func (f *tenancy) send(method, path string, body []byte, hdr map[string]string) (int, http.Header, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(method, "https://"+f.addr+path, bytes.NewReader(body))
	require.NoError(f.t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.client.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	return resp.StatusCode, resp.Header, b
}

// watched are the digests whose links the fingerprint checks in every
// repository: each image's layer and config, and the upstream-only one.
func (f *tenancy) watched() []string {
	var out []string
	for _, img := range f.images {
		out = append(out, img.layer.String(), img.config.String())
	}
	out = append(out, f.upstreamOnly.String(), f.evil.layer.String(), f.evil.config.String())
	sort.Strings(out)
	return slices.Compact(out)
}

// fingerprint is the store as the administrator sees it, one line a
// fact: repositories with their settings, policies, lifecycle policies,
// resource tags and images (digest, tags, size), the links of the
// watched blobs in each, the open upload sessions, the creation
// templates, the pull-through cache rules and the registry policy. Pull
// times are left out: a refused pull must not record one, but an
// allowed read by the administrator does.
func (f *tenancy) fingerprint() string {
	t, ctx := f.t, context.Background()
	admin := f.ecr("admin")
	var repos []types.Repository
	p := ecr.NewDescribeRepositoriesPaginator(admin, &ecr.DescribeRepositoriesInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		require.NoError(t, err)
		repos = append(repos, out.Repositories...)
	}
	watched := f.watched()
	parts := make([][]string, len(repos)+1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for i, r := range repos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[i] = f.repositoryFacts(ctx, admin, r, watched, fail)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		parts[len(repos)] = f.registryFacts(ctx, admin, fail)
	}()
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	var lines []string
	for _, p := range parts {
		lines = append(lines, p...)
	}
	return strings.Join(lines, "\n")
}

// repositoryFacts are the fingerprint's lines of one repository.
func (f *tenancy) repositoryFacts(ctx context.Context, admin *ecr.Client, r types.Repository, watched []string, fail func(error)) []string {
	repo := aws.ToString(r.RepositoryName)
	var excl []string
	for _, x := range r.ImageTagMutabilityExclusionFilters {
		excl = append(excl, aws.ToString(x.Filter))
	}
	enc := ""
	if r.EncryptionConfiguration != nil {
		enc = string(r.EncryptionConfiguration.EncryptionType) + ":" + aws.ToString(r.EncryptionConfiguration.KmsKey)
	}
	scan := r.ImageScanningConfiguration != nil && r.ImageScanningConfiguration.ScanOnPush
	lines := []string{fmt.Sprintf("repository %s arn=%s mutability=%s%v scanOnPush=%t encryption=%s created=%s",
		repo, aws.ToString(r.RepositoryArn), r.ImageTagMutability, excl, scan, enc, aws.ToTime(r.CreatedAt).Format(time.RFC3339Nano))}

	pol, err := admin.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: aws.String(repo)})
	switch {
	case err == nil:
		lines = append(lines, "  policy "+aws.ToString(pol.PolicyText))
	case tnIsAPIError(err, "RepositoryPolicyNotFoundException"):
		lines = append(lines, "  policy none")
	default:
		fail(fmt.Errorf("%s policy: %w", repo, err))
	}
	lc, err := admin.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String(repo)})
	switch {
	case err == nil:
		lines = append(lines, "  lifecycle "+aws.ToString(lc.LifecyclePolicyText))
	case tnIsAPIError(err, "LifecyclePolicyNotFoundException"):
		lines = append(lines, "  lifecycle none")
	default:
		fail(fmt.Errorf("%s lifecycle: %w", repo, err))
	}
	tags, err := admin.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: r.RepositoryArn})
	if err != nil {
		fail(fmt.Errorf("%s tags: %w", repo, err))
	} else {
		var kv []string
		for _, tg := range tags.Tags {
			kv = append(kv, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
		}
		sort.Strings(kv)
		lines = append(lines, "  tags "+strings.Join(kv, ","))
	}
	var images []string
	p := ecr.NewDescribeImagesPaginator(admin, &ecr.DescribeImagesInput{RepositoryName: aws.String(repo)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			fail(fmt.Errorf("%s images: %w", repo, err))
			break
		}
		for _, d := range out.ImageDetails {
			tags := slices.Clone(d.ImageTags)
			sort.Strings(tags)
			images = append(images, fmt.Sprintf("  image %s tags=%v size=%d type=%s pushed=%s", aws.ToString(d.ImageDigest), tags,
				aws.ToInt64(d.ImageSizeInBytes), aws.ToString(d.ImageManifestMediaType), aws.ToTime(d.ImagePushedAt).Format(time.RFC3339Nano)))
		}
	}
	sort.Strings(images)
	lines = append(lines, images...)
	avail, err := admin.BatchCheckLayerAvailability(ctx, &ecr.BatchCheckLayerAvailabilityInput{RepositoryName: aws.String(repo), LayerDigests: watched})
	if err != nil {
		fail(fmt.Errorf("%s blobs: %w", repo, err))
	} else {
		var have []string
		for _, l := range avail.Layers {
			if l.LayerAvailability == types.LayerAvailabilityAvailable {
				have = append(have, aws.ToString(l.LayerDigest))
			}
		}
		sort.Strings(have)
		lines = append(lines, fmt.Sprintf("  blobs %v", have))
	}
	for _, path := range f.sessions {
		if strings.HasPrefix(path, "/v2/"+repo+"/blobs/uploads/") {
			status, hdr, _ := f.do("admin", http.MethodGet, path, nil, nil)
			lines = append(lines, fmt.Sprintf("  upload %s status=%d range=%s", path, status, hdr.Get("Range")))
		}
	}
	return lines
}

// registryFacts are the fingerprint's lines of the registry's settings.
func (f *tenancy) registryFacts(ctx context.Context, admin *ecr.Client, fail func(error)) []string {
	var lines []string
	tpls, err := admin.DescribeRepositoryCreationTemplates(ctx, &ecr.DescribeRepositoryCreationTemplatesInput{})
	if err != nil {
		fail(fmt.Errorf("templates: %w", err))
	} else {
		for _, tp := range tpls.RepositoryCreationTemplates {
			b, err := json.Marshal(tp)
			if err != nil {
				fail(err)
			}
			lines = append(lines, "template "+string(b))
		}
	}
	rules, err := admin.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{})
	if err != nil {
		fail(fmt.Errorf("rules: %w", err))
	} else {
		for _, r := range rules.PullThroughCacheRules {
			b, err := json.Marshal(r)
			if err != nil {
				fail(err)
			}
			lines = append(lines, "rule "+string(b))
		}
	}
	pol, err := admin.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{})
	switch {
	case err == nil:
		lines = append(lines, "registry policy "+aws.ToString(pol.PolicyText))
	case tnIsAPIError(err, "RegistryPolicyNotFoundException"):
		lines = append(lines, "registry policy none")
	default:
		fail(fmt.Errorf("registry policy: %w", err))
	}
	return lines
}

// tnIsAPIError reports whether err is the AWS error code.
func tnIsAPIError(err error, code string) bool {
	var ae interface{ ErrorCode() string }
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// tnCertificate writes a self-signed certificate for 127.0.0.1 and its
// key into dir.
func tnCertificate(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth tenancy test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return certFile, keyFile
}
