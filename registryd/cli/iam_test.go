package cli

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/internal/pgtest"
)

func TestIAMCheck(t *testing.T) {
	code, out, errOut := run(t, "", "iam", "check", "testdata/iam.yaml")
	require.Equal(t, exitOK, code, errOut)
	assert.Equal(t, `testdata/iam.yaml: 3 users, 3 groups, 3 policies
user alice (path /team-a/)
  group team-a
    policy team-a-rw (3 statements)
user carol (path /)
  no policy: allowed nothing unless a resource policy grants it
user root (path /)
  group admins
    policy admin (1 statement)
group empty: no user belongs to it
policy unused (1 statement): no user holds it
`, out)

	code, out, _ = run(t, "", "iam", "check", "--json", "testdata/iam.yaml")
	require.Equal(t, exitOK, code)
	assert.Contains(t, out, `"name": "team-a-rw",`)
	assert.Contains(t, out, `"via": "group/team-a",`)

	bad := filepath.Join(t.TempDir(), "iam.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("groups: {g: {policies: [nope]}}\nusers: {alice: {groups: [h]}}\n"), 0o600))
	code, out, errOut = run(t, "", "iam", "check", bad)
	assert.Equal(t, exitError, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, `group "g": policy "nope" is not defined`)
	assert.Contains(t, errOut, `user "alice": group "h" is not defined`)

	code, _, _ = run(t, "", "iam", "check")
	assert.Equal(t, exitUsage, code)
	code, _, _ = run(t, "", "iam", "frobnicate")
	assert.Equal(t, exitUsage, code)
	code, _, _ = run(t, "", "iam")
	assert.Equal(t, exitUsage, code)
}

// newPolicyStore makes a store with repository team-a/app, whose policy
// denies deletes to everyone.
func newPolicyStore(t *testing.T) string {
	return newPolicyStoreOn(t, "")
}

// newPolicyStoreOn is newPolicyStore with the store's metadata in the
// PostgreSQL database metadata names (pebble when empty).
func newPolicyStoreOn(t *testing.T, metadata string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	e, err := engine.Open(dir, &engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metadata: metadata})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = e.CreateRepository(ctx, "team-a/app", engine.RepositorySettings{})
	require.NoError(t, err)
	require.NoError(t, e.SetRepositoryPolicy(ctx, "team-a/app",
		`{"Version":"2012-10-17","Statement":[{"Sid":"NoDeletes","Effect":"Deny","Principal":"*","Action":"ecr:BatchDeleteImage"}]}`))
	require.NoError(t, e.Close())
	return dir
}

func TestIAMSimulateOnAStore(t *testing.T) {
	data := newPolicyStore(t)
	sim := func(args ...string) (int, string, string) {
		return run(t, "", append([]string{"iam", "simulate", "--iam", "testdata/iam.yaml", "--data", data}, args...)...)
	}
	tests := []struct {
		args     []string
		decision string
		reason   string
	}{
		{[]string{"--user", "alice", "--action", "ecr:PutImage", "--repository", "team-a/app", "--secure"}, "Allow", `identity policy "team-a-rw" statement 0 (Sid "TeamAImages")`},
		{[]string{"--user", "alice", "--action", "ecr:PutImage", "--repository", "team-a/app", "--source-ip", "192.0.2.9"}, "Allow", "TeamAImages"},
		{[]string{"--user", "alice", "--action", "ecr:PutImage", "--repository", "team-a/app", "--source-ip", "203.0.113.9"}, "ExplicitDeny", "OverTLSFromTheOffice"},
		{[]string{"--user", "alice", "--action", "ecr:BatchDeleteImage", "--repository", "team-a/app"}, "ExplicitDeny", `repository policy`},
		{[]string{"--user", "alice", "--action", "ecr:PutImage", "--repository", "team-b/app", "--secure"}, "ImplicitDeny", "no statement allows"},
		{[]string{"--user", "alice", "--action", "ecr:CreateRepository", "--repository", "team-x/new", "--request-tag", "team=a"}, "Allow", "CreateTagged"},
		{[]string{"--user", "alice", "--action", "ecr:CreateRepository", "--repository", "team-x/new", "--request-tag", "team=b"}, "ImplicitDeny", ""},
		{[]string{"--user", "carol", "--action", "ecr:BatchGetImage", "--repository", "team-a/app"}, "ImplicitDeny", ""},
		{[]string{"--user", "root", "--action", "berth:CollectGarbage"}, "Allow", `"admin"`},
		{[]string{"--action", "ecr:BatchGetImage", "--repository", "team-a/app"}, "ImplicitDeny", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := sim(tt.args...)
			require.Equal(t, exitOK, code, errOut)
			first, rest, _ := strings.Cut(out, "\n")
			assert.Equal(t, tt.decision, first)
			assert.Contains(t, rest, tt.reason)
		})
	}
	code, out, _ := sim("--user", "alice", "--action", "ecr:PutImage", "--repository", "team-a/app", "--secure", "--json")
	require.Equal(t, exitOK, code)
	assert.Contains(t, out, `"principal": "arn:aws:iam::000000000000:user/team-a/alice"`)
	assert.Contains(t, out, `"resource": "arn:aws:ecr:us-east-1:000000000000:repository/team-a/app"`)
	assert.Contains(t, out, `"decision": "Allow"`)

	// Without an identity file every user is an administrator, as on the
	// daemon; the command says so.
	code, out, errOut := run(t, "", "iam", "simulate", "--data", data, "--user", "eve", "--action", "ecr:PutImage", "--repository", "team-a/app")
	require.Equal(t, exitOK, code)
	assert.True(t, strings.HasPrefix(out, "Allow\n"))
	assert.Contains(t, errOut, "administrator policy")

	for _, bad := range [][]string{
		{"--user", "alice"},
		{"--user", "alice", "--action", "ecr:PutImages"},
		{"--user", "alice", "--action", "ecr:PutImage", "--repository", "r", "--key", "k"},
		{"--user", "alice", "--action", "ecr:PutImage", "--request-tag", "nokey"},
		{"--user", "alice", "--action", "ecr:PutImage", "--source-ip", "x"},
		{"--user", "alice", "--action", "ecr:PutImage", "--server-user", "root"},
		{"--user", "alice", "--action", "ecr:PutImage", "extra"},
	} {
		code, _, errOut := sim(bad...)
		assert.Equal(t, exitUsage, code, "%v: %s", bad, errOut)
	}
	code, _, errOut = run(t, "", "iam", "simulate", "--data", filepath.Join(t.TempDir(), "none"), "--action", "ecr:PutImage")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "no store at")
}

// TestIAMSimulateOnAStoreOnPostgres: a stopped store whose metadata is
// in PostgreSQL is found through --metadata (its data directory holds no
// index) and decides with its repository policy; an empty database is no
// store.
func TestIAMSimulateOnAStoreOnPostgres(t *testing.T) {
	bin := pgtest.Require(t)
	pg := pgtest.Start(t, bin)
	db := pg.NewDatabase(t)
	data := newPolicyStoreOn(t, db)
	_, err := os.Stat(filepath.Join(data, "index"))
	require.ErrorIs(t, err, os.ErrNotExist, "the store's index is in the database")

	sim := func(metadata string, args ...string) (int, string, string) {
		return run(t, "", append([]string{"iam", "simulate", "--iam", "testdata/iam.yaml", "--data", data, "--metadata", metadata}, args...)...)
	}
	code, out, errOut := sim(db, "--user", "alice", "--action", "ecr:BatchDeleteImage", "--repository", "team-a/app")
	require.Equal(t, exitOK, code, errOut)
	assert.True(t, strings.HasPrefix(out, "ExplicitDeny\n"), out)
	assert.Contains(t, out, "repository policy")
	code, out, errOut = sim(db, "--user", "alice", "--action", "ecr:PutImage", "--repository", "team-a/app", "--secure")
	require.Equal(t, exitOK, code, errOut)
	assert.True(t, strings.HasPrefix(out, "Allow\n"), out)

	code, _, errOut = sim(pg.NewDatabase(t), "--user", "alice", "--action", "ecr:PutImage", "--repository", "team-a/app")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "no store at")
	assert.Contains(t, errOut, "--metadata")

	code, _, errOut = run(t, "", "iam", "simulate", "--data", data, "--user", "alice", "--action", "ecr:PutImage")
	assert.Equal(t, exitUsage, code, "without --metadata the directory holds no index")
	assert.Contains(t, errOut, "no store at")
}

// serveInBackground runs Serve with cfg until the test ends and returns
// its address.
func serveInBackground(t *testing.T, cfg *Config) string {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	cfg.AccessLog = false
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), ready) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	select {
	case addr := <-ready:
		return addr.String()
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("serve did not start within a minute")
	}
	return ""
}

// TestIAMSimulateWithAServer: the daemon holding a store is asked, through
// its admin socket (found by --data) or its address (--server); with the
// socket turned off, the command says how to reach it.
func TestIAMSimulateWithAServer(t *testing.T) {
	data := newPolicyStore(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	require.NoError(t, os.WriteFile(htpasswd, []byte("root:"+string(hash)+"\nalice:"+string(hash)+"\n"), 0o600))
	cfg := DefaultConfig()
	cfg.Data, cfg.Htpasswd, cfg.IAM = data, htpasswd, "testdata/iam.yaml"
	addr := serveInBackground(t, &cfg)

	// The store is locked: --data finds its daemon through the admin
	// socket, which answers as --server does.
	t.Setenv(serverPasswordEnv, "pw")
	server := []string{"iam", "simulate", "--server", "http://" + addr, "--server-user", "root"}
	query := []string{"--iam", "testdata/iam.yaml", "--user", "alice", "--action", "ecr:PutImage", "--repository", "team-a/app", "--secure"}
	code, viaSocket, errOut := run(t, "", append([]string{"iam", "simulate", "--data", data}, query...)...)
	require.Equal(t, exitOK, code, errOut)
	code, viaServer, errOut := run(t, "", append(server, query...)...)
	require.Equal(t, exitOK, code, errOut)
	assert.Equal(t, viaServer, viaSocket)
	assert.True(t, strings.HasPrefix(viaSocket, "Allow\n"), viaSocket)
	code, _, errOut = run(t, "", "iam", "simulate", "--data", data, "--admin-socket", "none", "--user", "alice", "--action", "ecr:PutImage")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "A store that a running registryd holds cannot be opened here, and no daemon answers on its admin socket")

	code, out, errOut := run(t, "", append(server, "--user", "alice", "--action", "ecr:BatchDeleteImage", "--repository", "team-a/app")...)
	require.Equal(t, exitOK, code, errOut)
	assert.True(t, strings.HasPrefix(out, "ExplicitDeny\n"), out)
	assert.Contains(t, out, "NoDeletes")
	code, out, errOut = run(t, "", append(server, "--user", "alice", "--action", "ecr:PutImage", "--repository", "team-a/app", "--secure")...)
	require.Equal(t, exitOK, code, errOut)
	assert.True(t, strings.HasPrefix(out, "Allow\n"), out)

	// --iam with --server: the file's policies instead of the daemon's.
	other := filepath.Join(t.TempDir(), "iam.yaml")
	require.NoError(t, os.WriteFile(other, []byte("users: {alice: {}}\n"), 0o600))
	code, out, errOut = run(t, "", append(server, "--iam", other, "--user", "alice", "--action", "ecr:PutImage", "--repository", "team-a/app", "--secure")...)
	require.Equal(t, exitOK, code, errOut)
	assert.True(t, strings.HasPrefix(out, "ImplicitDeny\n"), out)

	// alice may not simulate; a wrong password is not authenticated.
	code, _, errOut = run(t, "", "iam", "simulate", "--server", "http://"+addr, "--server-user", "alice", "--user", "alice", "--action", "ecr:PutImage")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "403 Forbidden DENIED")
	assert.Contains(t, errOut, "berth:SimulatePolicy")
	t.Setenv(serverPasswordEnv, "wrong")
	code, _, errOut = run(t, "", append(server, "--user", "alice", "--action", "ecr:PutImage")...)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "401 Unauthorized UNAUTHORIZED")

	// Flags that open a store do not apply with --server.
	code, _, errOut = run(t, "", append(server, "--data", data, "--user", "alice", "--action", "ecr:PutImage")...)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "--data do not apply with --server")
}

// TestServeWarnsOfWideAccess: serve says at start when the registry is
// open, or when every authenticated user is an administrator.
func TestServeWarnsOfWideAccess(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*Config)
		want string
	}{
		{"open", func(*Config) {}, "level=WARN msg=\"authentication is off: the registry is open to anyone who can reach it"},
		{"no identity file", func(c *Config) { c.Htpasswd = writeHtpasswdFile(t) }, "level=WARN msg=\"no identity policies: every authenticated user is an administrator"},
		{"identity file", func(c *Config) { c.Htpasswd = writeHtpasswdFile(t); c.IAM = "testdata/iam.yaml" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder
			cfg := DefaultConfig()
			cfg.Data = t.TempDir()
			tc.cfg(&cfg)
			warnAccess(slog.New(slog.NewTextHandler(&logs, nil)), &cfg)
			if tc.want == "" {
				assert.Empty(t, logs.String())
			} else {
				assert.Contains(t, logs.String(), tc.want)
			}
		})
	}
	cfg := DefaultConfig()
	cfg.IAM = "testdata/iam.yaml"
	require.ErrorIs(t, cfg.Validate(), ErrConfig, "identity policies need authentication")
	cfg.TrustedProxies = []string{"10.0.0.0/33"}
	require.ErrorContains(t, cfg.Validate(), "trustedProxies")
}

// writeHtpasswdFile writes a one-user htpasswd file.
func writeHtpasswdFile(t *testing.T) string {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "htpasswd")
	require.NoError(t, os.WriteFile(p, []byte("root:"+string(hash)+"\n"), 0o600))
	return p
}

// TestDocumentedIdentityFile: the identity file docs/policies.md shows
// is valid, and its simulation answers what the page says.
func TestDocumentedIdentityFile(t *testing.T) {
	doc, err := os.ReadFile("../../docs/policies.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(doc), "# /etc/berth/iam.yaml\n")
	require.True(t, ok, "the example is where the test looks for it")
	text, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	file := filepath.Join(t.TempDir(), "iam.yaml")
	require.NoError(t, os.WriteFile(file, []byte(text), 0o600))
	code, out, errOut := run(t, "", "iam", "check", file)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "4 users, 3 groups, 4 policies")

	data := filepath.Join(t.TempDir(), "store")
	code, _, errOut = run(t, "", "repo", "create", "--data", data, "team-a/app")
	require.Equal(t, exitOK, code, errOut)
	code, out, errOut = run(t, "", "iam", "simulate", "--iam", file, "--data", data,
		"--user", "alice", "--action", "ecr:PutImage", "--repository", "team-a/app", "--source-ip", "203.0.113.9")
	require.Equal(t, exitOK, code, errOut)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		assert.Contains(t, string(doc), "# "+line, "the page shows the output")
	}
}
