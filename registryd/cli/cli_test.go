package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/engine"
)

func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb}, args)
	return code, out.String(), errb.String()
}

func TestHelpDescribesEveryFlag(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"serve", "--help"}, {"help", "serve"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, _ := run(t, "", args...)
			require.Equal(t, 0, code)
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			c := DefaultConfig()
			bindServeFlags(fs, &c)
			fs.VisitAll(func(f *flag.Flag) {
				assert.Contains(t, out, "-"+f.Name, "flag %s", f.Name)
			})
			assert.Contains(t, out, "-config")
		})
	}
	code, out, _ := run(t, "", "--help")
	require.Equal(t, 0, code)
	for _, c := range []string{"serve", "repo", "template", "htpasswd"} {
		assert.Contains(t, out, c)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, _, errOut := run(t, "", "frobnicate")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "unknown command")
	code, _, _ = run(t, "", "serve", "--no-such-flag")
	assert.Equal(t, 2, code)
	code, _, _ = run(t, "", "repo", "explode")
	assert.Equal(t, 2, code)
	code, _, _ = run(t, "", "template")
	assert.Equal(t, 2, code)
}

func TestConfigFile(t *testing.T) {
	yamlText := `
addr: 127.0.0.1:6000
data: /tmp/store
anonymousPull: true
createOnPush: false
logLevel: debug
shutdownTimeout: 5s
maxManifestSize: 1024
archiveDir: /cold/berth-archive
templates:
  - prefix: team-a
    appliedFor: [CREATE_ON_PUSH]
    imageTagMutability: IMMUTABLE_WITH_EXCLUSION
    imageTagMutabilityExclusionFilters:
      - {filter: latest, filterType: WILDCARD}
  - prefix: ROOT
    appliedFor: [CREATE_ON_PUSH]
pullThroughRefresh: 1h
pullThroughCacheRules:
  - {ecrRepositoryPrefix: hub, upstreamRegistryUrl: registry-1.docker.io}
`
	jsonText := `{"addr":"127.0.0.1:6000","data":"/tmp/store","anonymousPull":true,"createOnPush":false,"logLevel":"debug","shutdownTimeout":"5s","maxManifestSize":1024,"archiveDir":"/cold/berth-archive",
"templates":[{"prefix":"team-a","appliedFor":["CREATE_ON_PUSH"],"imageTagMutability":"IMMUTABLE_WITH_EXCLUSION","imageTagMutabilityExclusionFilters":[{"filter":"latest","filterType":"WILDCARD"}]},{"prefix":"ROOT","appliedFor":["CREATE_ON_PUSH"]}],
"pullThroughRefresh":"1h","pullThroughCacheRules":[{"ecrRepositoryPrefix":"hub","upstreamRegistryUrl":"registry-1.docker.io"}]}`
	for name, text := range map[string]string{"yaml": yamlText, "json": jsonText} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			require.NoError(t, parseConfig([]byte(text), name, &c))
			require.NoError(t, c.Validate())
			assert.Equal(t, "127.0.0.1:6000", c.Addr)
			assert.Equal(t, "/tmp/store", c.Data)
			assert.True(t, c.AnonymousPull)
			assert.False(t, c.CreateOnPush)
			assert.True(t, c.AccessLog, "defaults stay")
			assert.Equal(t, Duration(5*time.Second), c.ShutdownTimeout)
			require.Len(t, c.Templates, 2)
			assert.Equal(t, engine.TagImmutableWithExclusion, c.Templates[0].ImageTagMutability)
			assert.Equal(t, []TagFilter{{Filter: "latest", FilterType: "WILDCARD"}}, c.Templates[0].ImageTagMutabilityExclusionFilters)
			assert.Equal(t, engine.RootPrefix, c.Templates[1].Prefix)
			assert.Equal(t, Duration(time.Hour), c.PullThroughRefresh)
			assert.Equal(t, []PullThroughCacheRule{{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: "registry-1.docker.io"}}, c.PullThroughCacheRules)
			o, err := c.EngineOptions()
			require.NoError(t, err)
			assert.False(t, o.CreateOnPush)
			assert.Equal(t, "/cold/berth-archive", o.ArchiveDir)
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
	}{
		{"unknown field", "adr: x"},
		{"bad duration", "shutdownTimeout: forever"},
		{"bad yaml", "addr: [unclosed"},
		{"wrong type", "anonymousPull: maybe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			require.ErrorIs(t, parseConfig([]byte(tt.text), "f", &c), ErrConfig)
		})
	}
	bad := DefaultConfig()
	bad.LogLevel = "loud"
	bad.TLSCert = "c.pem"
	bad.Templates = []Template{{}}
	bad.ECRAccountID, bad.ECRRegion = "1234", "Mars"
	err := bad.Validate()
	require.ErrorIs(t, err, ErrConfig)
	for _, s := range []string{"logLevel", "tlsKey", "prefix", "appliedFor", "ecrAccountId", "ecrRegion"} {
		assert.Contains(t, err.Error(), s)
	}
	for _, region := range []string{"us-east-1", "eu-west-2", "ap-southeast-5", "us-gov-west-1", "cn-north-1", "eusc-de-east-1"} {
		good := DefaultConfig()
		good.ECRRegion, good.ECRAccountID = region, "123456789012"
		assert.NoError(t, good.Validate(), region)
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(p, []byte("addr: 127.0.0.1:7000\ndata: /from/file\ncreateOnPush: false\n"), 0o600))
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c, err := parseFlags(fs, []string{"--config", p, "--addr", "127.0.0.1:7001", "--archive-dir", "/cold/archive",
		"--template", `{"prefix":"x","appliedFor":["CREATE_ON_PUSH"]}`}, bindServeFlags)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:7001", c.Addr, "flag wins")
	assert.Equal(t, "/from/file", c.Data, "file beats default")
	assert.Equal(t, "/cold/archive", c.ArchiveDir)
	assert.False(t, c.CreateOnPush)
	require.Len(t, c.Templates, 1)
	assert.Equal(t, "x", c.Templates[0].Prefix)

	fs = flag.NewFlagSet("serve", flag.ContinueOnError)
	_, err = parseFlags(fs, []string{"--config=" + filepath.Join(t.TempDir(), "missing.yaml")}, bindServeFlags)
	require.ErrorIs(t, err, ErrConfig)
}

func TestHtpasswdCommand(t *testing.T) {
	code, out, _ := run(t, "s3cret\n", "htpasswd", "--cost", "4", "alice")
	require.Equal(t, 0, code)
	user, hash, ok := strings.Cut(strings.TrimSpace(out), ":")
	require.True(t, ok)
	assert.Equal(t, "alice", user)
	require.NoError(t, bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret")))
	code, _, _ = run(t, "", "htpasswd", "alice")
	assert.Equal(t, 2, code)
	code, _, _ = run(t, "x\n", "htpasswd", "a:b")
	assert.Equal(t, 2, code)
}
