package e2e

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/cli"
)

// upstreamPassword is the private upstream's password: it goes into a
// stored secret, and must appear in no log line, no audit record and no
// file of the cache's store.
const upstreamPassword = "up-S3cret-p4ssw0rd-7f3c9a"

// secretIdentities: alice may do anything; bob may do anything with ECR
// but nothing with secrets.
const secretIdentities = `
policies:
  admin: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "*", Resource: "*"}]}
  ecr-only: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "ecr:*", Resource: "*"}]}
users:
  alice: {policies: [admin]}
  bob: {policies: [ecr-only]}
`

// lockedBuffer is a log destination tests read while servers write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startLoggedServer is startStoppableServer with every log line of the
// daemon (debug level, access log on; the engine's too, through the
// default logger) written to the returned buffer.
func startLoggedServer(t *testing.T, mutate func(*cli.Config)) (string, *lockedBuffer, func()) {
	t.Helper()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prev := slog.Default()
	slog.SetDefault(log)
	t.Cleanup(func() { slog.SetDefault(prev) })
	cfg := cli.DefaultConfig()
	cfg.Addr, cfg.Data, cfg.AccessLog, cfg.LogLevel = "127.0.0.1:0", t.TempDir(), true, "debug"
	if mutate != nil {
		mutate(&cfg)
	}
	require.NoError(t, cfg.Validate())
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- cli.Serve(ctx, &cfg, log, ready) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Error("server did not stop")
			}
		})
	}
	t.Cleanup(stop)
	select {
	case a := <-ready:
		return a.String(), logs, stop
	case err := <-done:
		require.NoError(t, err, "registryd did not start")
	case <-time.After(30 * time.Second):
		t.Fatal("registryd did not start in time")
	}
	return "", nil, nil
}

// htpasswdFile writes an htpasswd file of user:password pairs.
func htpasswdFile(t testing.TB, dir string, pairs ...string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(pairs); i += 2 {
		hash, err := bcrypt.GenerateFromPassword([]byte(pairs[i+1]), bcrypt.MinCost)
		require.NoError(t, err)
		b.WriteString(pairs[i] + ":" + string(hash) + "\n")
	}
	p := filepath.Join(dir, "htpasswd")
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o600))
	return p
}

// TestPullThroughCacheWithCredentials: a private upstream (a registryd
// with htpasswd on 127.0.0.1, no anonymous pulls) is cached through a
// rule whose credentialArn names a secret stored with `registryd secrets
// put` against the running cache. Checked on the way: a rule naming a
// secret that does not exist is refused when set; a user without the
// secretsmanager grants can neither store, list or delete secrets nor
// name one in a rule; ValidatePullThroughCacheRule reports a rule without
// credentials and one with wrong ones as invalid, with why; a wrong
// password fails a fill with DENIED; pushes into the cache repository are
// refused on both APIs; and the upstream's password appears in no log
// line (the access log included), no audit record and no file of the
// store.
func TestPullThroughCacheWithCredentials(t *testing.T) {
	ctx := context.Background()
	upstream := startServer(t, func(c *cli.Config) {
		c.Htpasswd = htpasswdFile(t, t.TempDir(), "upstream-bot", upstreamPassword)
	})
	upAuth := remote.WithAuth(&authn.Basic{Username: "upstream-bot", Password: upstreamPassword})
	upRef := func(s string) name.Reference {
		ref, err := name.ParseReference(upstream+"/"+s, name.Insecure)
		require.NoError(t, err)
		return ref
	}
	img, err := random.Image(64<<10, 2)
	require.NoError(t, err)
	require.NoError(t, remote.Write(upRef("library/app:v1"), img, upAuth))
	want, err := img.Digest()
	require.NoError(t, err)
	idx, err := random.Index(4096, 1, 2)
	require.NoError(t, err)
	require.NoError(t, remote.WriteIndex(upRef("library/multi:v1"), idx, upAuth))
	wantIdx, err := idx.Digest()
	require.NoError(t, err)
	_, err = remote.Get(upRef("library/app:v1"))
	require.Error(t, err, "the upstream is private")

	files := t.TempDir()
	data := t.TempDir()
	creds := filepath.Join(files, "creds")
	require.NoError(t, os.WriteFile(creds, []byte("AKIAALICE:secret-alice:alice\nAKIABOB:secret-bob:bob\n"), 0o600))
	iam := filepath.Join(files, "iam.yaml")
	require.NoError(t, os.WriteFile(iam, []byte(secretIdentities), 0o600))
	hp := htpasswdFile(t, files, "alice", "pw-alice", "bob", "pw-bob")
	cache, logs, stop := startLoggedServer(t, func(c *cli.Config) {
		c.Data, c.Htpasswd, c.ECRCredentials, c.IAM = data, hp, creds, iam
		c.PullThroughRefresh = -1
	})
	client := func(user string) *ecr.Client {
		return ecr.New(ecr.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + cache),
			Credentials: credentials.NewStaticCredentialsProvider("AKIA"+strings.ToUpper(user), "secret-"+user, "")})
	}
	alice, bob := client("alice"), client("bob")
	secrets := func(user string, stdin string, args ...string) (int, string, string) {
		t.Setenv("BERTH_PASSWORD", "pw-"+user)
		var stdout, stderr bytes.Buffer
		code := cli.Main(ctx, cli.Env{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr},
			append([]string{"secrets", args[0], "--server", "http://" + cache, "--server-user", user}, args[1:]...))
		return code, stdout.String(), stderr.String()
	}
	value := `{"username":"upstream-bot","accessToken":"` + upstreamPassword + `"}` + "\n"
	const secretName = "ecr-pullthroughcache/private"
	arn := "arn:aws:secretsmanager:us-east-1:000000000000:secret:" + secretName

	// bob holds no secretsmanager grant: he stores, lists and deletes
	// nothing; alice stores the secret on the running daemon.
	code, _, stderr := secrets("bob", value, "put", secretName)
	require.Equal(t, 1, code)
	assert.Contains(t, stderr, "secretsmanager:PutSecretValue")
	code, _, stderr = secrets("bob", "", "list")
	require.Equal(t, 1, code)
	assert.Contains(t, stderr, "secretsmanager:ListSecrets")
	code, out, stderr := secrets("alice", value, "put", secretName)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "created "+secretName+" ("+arn+")")
	code, _, stderr = secrets("bob", "", "delete", secretName)
	require.Equal(t, 1, code)
	assert.Contains(t, stderr, "secretsmanager:DeleteSecret")
	code, out, stderr = secrets("alice", "", "list")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, arn)
	assert.NotContains(t, out, upstreamPassword, "a listing holds no value")

	// Rules: refused for a secret that does not exist, an ARN of another
	// form, a role, and bob (no secretsmanager:GetSecretValue on it).
	rule := func(c *ecr.Client, prefix, credentialARN string) error {
		in := &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String(prefix), UpstreamRegistryUrl: aws.String("http://" + upstream)}
		if credentialARN != "" {
			in.CredentialArn = aws.String(credentialARN)
		}
		_, err := c.CreatePullThroughCacheRule(ctx, in)
		return err
	}
	requireAPIError(t, rule(alice, "priv", arn+"-missing"), "SecretNotFoundException")
	requireAPIError(t, rule(alice, "priv", "arn:aws:secretsmanager:us-east-1:000000000000:secret:elsewhere/private"), "InvalidParameterException")
	requireAPIError(t, rule(bob, "priv", arn), "UnableToAccessSecretException")
	_, err = alice.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("priv"),
		UpstreamRegistryUrl: aws.String("http://" + upstream), CustomRoleArn: aws.String("arn:aws:iam::000000000000:role/ecr-upstream")})
	requireAPIError(t, err, "InvalidParameterException")
	rules, err := alice.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{})
	require.NoError(t, err)
	require.Empty(t, rules.PullThroughCacheRules, "nothing refused was kept")

	// A rule without credentials: invalid, and pulls find nothing.
	require.NoError(t, rule(alice, "anon", ""))
	v, err := alice.ValidatePullThroughCacheRule(ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("anon")})
	require.NoError(t, err)
	assert.False(t, v.IsValid)
	assert.Contains(t, aws.ToString(v.Failure), "requires authentication")
	pull := func(ref string) (v1.Image, error) {
		r, err := name.ParseReference(cache+"/"+ref, name.Insecure)
		require.NoError(t, err)
		return remote.Image(r, remote.WithAuth(&authn.Basic{Username: "alice", Password: "pw-alice"}))
	}
	_, err = pull("anon/library/app:v1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NAME_UNKNOWN", "refused anonymously upstream: the store's answer, nothing created")

	// The rule with the stored credentials caches the private upstream.
	require.NoError(t, rule(alice, "priv", arn))
	rules, err = alice.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{"priv"}})
	require.NoError(t, err)
	require.Len(t, rules.PullThroughCacheRules, 1)
	assert.Equal(t, arn, aws.ToString(rules.PullThroughCacheRules[0].CredentialArn))
	v, err = alice.ValidatePullThroughCacheRule(ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("priv")})
	require.NoError(t, err)
	assert.True(t, v.IsValid, aws.ToString(v.Failure))
	assert.Equal(t, arn, aws.ToString(v.CredentialArn))
	got, err := pull("priv/library/app:v1")
	require.NoError(t, err)
	gd, err := got.Digest()
	require.NoError(t, err)
	assert.Equal(t, want, gd)
	layers, err := got.Layers()
	require.NoError(t, err)
	for _, l := range layers {
		rc, err := l.Compressed()
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, rc)
		require.NoError(t, err, "streamed and verified")
		require.NoError(t, rc.Close())
	}
	mref, err := name.ParseReference(cache+"/priv/library/multi:v1", name.Insecure)
	require.NoError(t, err)
	gotIdx, err := remote.Index(mref, remote.WithAuth(&authn.Basic{Username: "alice", Password: "pw-alice"}))
	require.NoError(t, err)
	gid, err := gotIdx.Digest()
	require.NoError(t, err)
	assert.Equal(t, wantIdx, gid)
	stored := func(repo, tag string, d v1.Hash) func() bool {
		return func() bool {
			imgs, err := alice.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(repo),
				ImageIds: []types.ImageIdentifier{{ImageTag: aws.String(tag)}}})
			return err == nil && len(imgs.ImageDetails) == 1 && aws.ToString(imgs.ImageDetails[0].ImageDigest) == d.String()
		}
	}
	require.Eventually(t, stored("priv/library/app", "v1", want), 30*time.Second, 20*time.Millisecond)
	require.Eventually(t, stored("priv/library/multi", "v1", wantIdx), 30*time.Second, 20*time.Millisecond)

	// bob may use the rule (the pull is his, the credentials the
	// rule's) but not point it at a secret.
	_, err = bob.UpdatePullThroughCacheRule(ctx, &ecr.UpdatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("priv"), CredentialArn: aws.String(arn)})
	requireAPIError(t, err, "UnableToAccessSecretException")
	_, err = alice.UpdatePullThroughCacheRule(ctx, &ecr.UpdatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("priv"), CredentialArn: aws.String(arn + "-missing")})
	requireAPIError(t, err, "SecretNotFoundException")
	_, err = alice.UpdatePullThroughCacheRule(ctx, &ecr.UpdatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("nope"), CredentialArn: aws.String(arn)})
	requireAPIError(t, err, "PullThroughCacheRuleNotFoundException")

	// Wrong credentials: invalid, and a fill is refused as ECR refuses it.
	code, _, stderr = secrets("alice", `{"username":"upstream-bot","accessToken":"wrong-`+upstreamPassword+`"}`, "put", secretName)
	require.Equal(t, 0, code, stderr)
	v, err = alice.ValidatePullThroughCacheRule(ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("priv")})
	require.NoError(t, err)
	assert.False(t, v.IsValid)
	assert.Contains(t, aws.ToString(v.Failure), "authentication to the upstream registry")
	_, err = pull("priv/library/other:v1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DENIED")
	assert.Contains(t, err.Error(), "authentication to the upstream registry failed")
	up, err := alice.UpdatePullThroughCacheRule(ctx, &ecr.UpdatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("priv"), CredentialArn: aws.String(arn)})
	require.NoError(t, err)
	assert.Equal(t, arn, aws.ToString(up.CredentialArn))
	code, _, stderr = secrets("alice", value, "put", secretName)
	require.Equal(t, 0, code, stderr)
	v, err = alice.ValidatePullThroughCacheRule(ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("priv")})
	require.NoError(t, err)
	assert.True(t, v.IsValid, aws.ToString(v.Failure))

	// Pushes into the cache repository are refused: OCI and ECR API.
	mine, err := random.Image(512, 1)
	require.NoError(t, err)
	pushRef, err := name.ParseReference(cache+"/priv/library/app:mine", name.Insecure)
	require.NoError(t, err)
	err = remote.Write(pushRef, mine, remote.WithAuth(&authn.Basic{Username: "alice", Password: "pw-alice"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DENIED")
	assert.Contains(t, err.Error(), "pull-through cache")
	_, err = alice.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: aws.String("priv/library/app")})
	requireAPIError(t, err, "InvalidParameterException")
	raw, err := mine.RawManifest()
	require.NoError(t, err)
	_, err = alice.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("priv/library/app"), ImageManifest: aws.String(string(raw)), ImageTag: aws.String("mine")})
	requireAPIError(t, err, "InvalidParameterException")

	// A secret a rule names stays; once the rule is gone it goes.
	code, _, stderr = secrets("alice", "", "delete", secretName)
	require.Equal(t, 1, code)
	assert.Contains(t, stderr, "pull-through cache rule")
	_, err = alice.DeletePullThroughCacheRule(ctx, &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("priv")})
	require.NoError(t, err)
	code, _, stderr = secrets("alice", "", "delete", secretName)
	require.Equal(t, 0, code, stderr)

	// The password is in no log line, no audit record, no file.
	stop()
	assert.Contains(t, logs.String(), "/admin/v1/secrets/put", "the access log was captured")
	assert.NotContains(t, logs.String(), upstreamPassword)
	var audit bytes.Buffer
	code = cli.Main(ctx, cli.Env{Stdout: &audit, Stderr: io.Discard}, []string{"audit", "--data", data, "--export"})
	require.Equal(t, 0, code)
	assert.Contains(t, audit.String(), "secretsmanager:PutSecretValue")
	assert.Contains(t, audit.String(), "secretsmanager:GetSecretValue")
	assert.NotContains(t, audit.String(), upstreamPassword)
	require.NoError(t, filepath.Walk(data, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.False(t, bytes.Contains(b, []byte(upstreamPassword)), "the password is in the clear in %s", p)
		return nil
	}))
	e, err := engine.Open(data, &engine.Options{Logger: quietLogger()})
	require.NoError(t, err)
	defer e.Close()
	r, err := e.Repository(ctx, "priv/library/app")
	require.NoError(t, err)
	assert.Equal(t, "priv", r.CreatedByCacheRule)
}
