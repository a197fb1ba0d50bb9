package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/registryd/cli"
)

// TestPullThroughCacheUpstreamRegistryNames drives the upstreamRegistry
// names ECR accepts through the AWS SDK for Go v2: a name alone takes
// its registry's URL (and a URL alone its name), a name the URL is not,
// or one ECR does not know, is refused, and every rule is described with
// both. Nothing here reaches the registries named.
func TestPullThroughCacheUpstreamRegistryNames(t *testing.T) {
	ctx := context.Background()
	c := ecrClient(startServer(t, nil), "any")
	created, err := c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("hub"),
		UpstreamRegistry: types.UpstreamRegistryDockerHub, UpstreamRegistryUrl: aws.String("registry-1.docker.io")})
	require.NoError(t, err)
	assert.Equal(t, types.UpstreamRegistryDockerHub, created.UpstreamRegistry)
	created, err = c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("quay"),
		UpstreamRegistryUrl: aws.String("quay.io")})
	require.NoError(t, err)
	assert.Equal(t, types.UpstreamRegistryQuay, created.UpstreamRegistry, "the name of a registry ECR names, from its URL")
	_, err = c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("bad"),
		UpstreamRegistry: types.UpstreamRegistryK8s, UpstreamRegistryUrl: aws.String("quay.io")})
	requireAPIError(t, err, "InvalidParameterException")
	_, err = c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("bad"),
		UpstreamRegistry: types.UpstreamRegistry("not-a-registry"), UpstreamRegistryUrl: aws.String("quay.io")})
	requireAPIError(t, err, "InvalidParameterException")
	_, err = c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("bad"),
		UpstreamRegistry: types.UpstreamRegistryAzureContainerRegistry, UpstreamRegistryUrl: aws.String("myregistry.example.com")})
	requireAPIError(t, err, "InvalidParameterException")

	rules, err := c.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{})
	require.NoError(t, err)
	got := map[string][2]string{}
	for _, r := range rules.PullThroughCacheRules {
		got[aws.ToString(r.EcrRepositoryPrefix)] = [2]string{string(r.UpstreamRegistry), aws.ToString(r.UpstreamRegistryUrl)}
	}
	assert.Equal(t, map[string][2]string{"hub": {"docker-hub", "registry-1.docker.io"}, "quay": {"quay", "quay.io"}}, got,
		"nothing refused was kept")
}

// TestPullThroughCacheWithAWSCLI drives the pull-through cache rules with
// the real `aws ecr` CLI against a private upstream (a registryd with
// htpasswd): create-pull-through-cache-rule with a credentialArn naming
// a secret stored with `registryd secrets put`, describe and validate
// it, pull through it, point it at a secret with a wrong password with
// update-pull-through-cache-rule (validate then says why it fails) and
// back, refuse a push into the cache repository (put-image), a rule
// with upstreamRegistry, delete.
func TestPullThroughCacheWithAWSCLI(t *testing.T) {
	ctx := context.Background()
	upstream := startServer(t, func(c *cli.Config) {
		c.Htpasswd = htpasswdFile(t, t.TempDir(), "upstream-bot", upstreamPassword)
	})
	upRef, err := name.ParseReference(upstream+"/library/app:v1", name.Insecure)
	require.NoError(t, err)
	img, err := random.Image(32<<10, 2)
	require.NoError(t, err)
	require.NoError(t, remote.Write(upRef, img, remote.WithAuth(&authn.Basic{Username: "upstream-bot", Password: upstreamPassword})))
	want, err := img.Digest()
	require.NoError(t, err)

	cache := startServer(t, withECRAuth(t))
	run := func(args ...string) map[string]any {
		t.Helper()
		out, err := awsCLI(t, cache, append([]string{"ecr"}, args...)...)
		require.NoError(t, err)
		var v map[string]any
		if strings.TrimSpace(out) != "" {
			require.NoError(t, json.Unmarshal([]byte(out), &v), out)
		}
		return v
	}
	putSecret := func(name, password string) string {
		t.Helper()
		t.Setenv("BERTH_PASSWORD", "pw") // withECRAuth's admin
		var stdout, stderr bytes.Buffer
		code := cli.Main(ctx, cli.Env{Stdin: strings.NewReader(`{"username":"upstream-bot","accessToken":"` + password + `"}`), Stdout: &stdout, Stderr: &stderr},
			[]string{"secrets", "put", "--server", "http://" + cache, "--server-user", "admin", name})
		require.Equal(t, 0, code, stderr.String())
		return "arn:aws:secretsmanager:us-east-1:000000000000:secret:" + name
	}
	good := putSecret("ecr-pullthroughcache/private", upstreamPassword)
	wrong := putSecret("ecr-pullthroughcache/wrong", "wrong-"+upstreamPassword)

	// The CLI fetches an http:// parameter value as a file (v1's
	// cli_follow_urlparam): the plain-HTTP upstream's URL goes in as JSON.
	in, err := json.Marshal(map[string]string{"ecrRepositoryPrefix": "priv", "upstreamRegistryUrl": "http://" + upstream, "credentialArn": good})
	require.NoError(t, err)
	rule := run("create-pull-through-cache-rule", "--cli-input-json", string(in))
	assert.Equal(t, "priv", rule["ecrRepositoryPrefix"])
	assert.Equal(t, good, rule["credentialArn"])
	rules := run("describe-pull-through-cache-rules", "--ecr-repository-prefixes", "priv")["pullThroughCacheRules"].([]any)
	require.Len(t, rules, 1)
	assert.Equal(t, good, rules[0].(map[string]any)["credentialArn"])
	assert.Equal(t, "http://"+upstream, rules[0].(map[string]any)["upstreamRegistryUrl"])
	v := run("validate-pull-through-cache-rule", "--ecr-repository-prefix", "priv")
	assert.Equal(t, true, v["isValid"], v["failure"])

	pass, err := awsCLI(t, cache, "ecr", "get-login-password")
	require.NoError(t, err)
	login := remote.WithAuth(&authn.Basic{Username: "AWS", Password: strings.TrimSpace(pass)})
	ref, err := name.ParseReference(cache+"/priv/library/app:v1", name.Insecure)
	require.NoError(t, err)
	got, err := remote.Image(ref, login)
	require.NoError(t, err)
	gd, err := got.Digest()
	require.NoError(t, err)
	assert.Equal(t, want, gd)
	run("create-repository", "--repository-name", "mine/app")
	require.NoError(t, remote.Write(mustRef(t, cache+"/mine/app:v1"), img, login), "a repository of its own takes pushes")

	updated := run("update-pull-through-cache-rule", "--ecr-repository-prefix", "priv", "--credential-arn", wrong)
	assert.Equal(t, wrong, updated["credentialArn"])
	v = run("validate-pull-through-cache-rule", "--ecr-repository-prefix", "priv")
	assert.Equal(t, false, v["isValid"])
	assert.Contains(t, v["failure"], "authentication to the upstream registry")
	_, err = awsCLI(t, cache, "ecr", "update-pull-through-cache-rule", "--ecr-repository-prefix", "nope", "--credential-arn", good)
	require.ErrorContains(t, err, "PullThroughCacheRuleNotFoundException")
	run("update-pull-through-cache-rule", "--ecr-repository-prefix", "priv", "--credential-arn", good)
	v = run("validate-pull-through-cache-rule", "--ecr-repository-prefix", "priv")
	assert.Equal(t, true, v["isValid"], v["failure"])

	manifest, err := awsCLI(t, cache, "ecr", "batch-get-image", "--repository-name", "mine/app", "--image-ids", "imageTag=v1",
		"--query", "images[].imageManifest", "--output", "text")
	require.NoError(t, err)
	_, err = awsCLI(t, cache, "ecr", "put-image", "--repository-name", "priv/library/app", "--image-tag", "mine", "--image-manifest", strings.TrimSpace(manifest))
	require.ErrorContains(t, err, "InvalidParameterException")

	hub := run("create-pull-through-cache-rule", "--ecr-repository-prefix", "hub", "--upstream-registry", "docker-hub", "--upstream-registry-url", "registry-1.docker.io")
	assert.Equal(t, "docker-hub", hub["upstreamRegistry"])
	_, err = awsCLI(t, cache, "ecr", "create-pull-through-cache-rule", "--ecr-repository-prefix", "k8s", "--upstream-registry", "k8s", "--upstream-registry-url", "quay.io")
	require.ErrorContains(t, err, "InvalidParameterException")

	run("delete-pull-through-cache-rule", "--ecr-repository-prefix", "hub")
	deleted := run("delete-pull-through-cache-rule", "--ecr-repository-prefix", "priv")
	assert.Equal(t, good, deleted["credentialArn"])
	_, err = awsCLI(t, cache, "ecr", "validate-pull-through-cache-rule", "--ecr-repository-prefix", "priv")
	require.ErrorContains(t, err, "PullThroughCacheRuleNotFoundException")
}

// mustRef parses a plain-HTTP reference.
func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s, name.Insecure)
	require.NoError(t, err)
	return ref
}
