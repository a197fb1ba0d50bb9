package cli

// Every command that touches a store works against the daemon holding it
// (through its admin socket, found by --data, and through the admin API
// on its address, --server) and on the store itself when it is stopped,
// with the same results.

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/regtest"
)

// liveFixture is a stopped store that each row copies, so that every
// mode starts from the same bytes, and the credentials of its daemons.
type liveFixture struct {
	golden   string
	htpasswd string
}

// The fixture's lifecycle policy keeps one image of app's v* tags.
const fixturePolicy = `{"rules":[{"rulePriority":1,"description":"keep one","selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`

// newLiveFixture makes the store: repository app (three images, a
// lifecycle policy, a policy denying deletes, a blob no image names),
// key team-k keying repository secret (one image), template team, and the
// audit records of their creation as local changes; and an htpasswd file
// of root and alice (whose identities are testdata/iam.yaml's).
func newLiveFixture(t *testing.T) *liveFixture {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "golden")
	e, err := engine.Open(dir, &engine.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	for _, name := range []string{"app", "secret"} {
		require.NoError(t, recordLocal(ctx, e, localChange{command: "repo create", action: "ecr:CreateRepository", resource: e.RepositoryARN(name), repository: name}))
	}
	_, err = e.CreateKey(ctx, "team-k")
	require.NoError(t, err)
	_, err = e.CreateRepository(ctx, "app", engine.RepositorySettings{LifecyclePolicy: fixturePolicy,
		RepositoryPolicy: `{"Version":"2012-10-17","Statement":[{"Sid":"NoDeletes","Effect":"Deny","Principal":"*","Action":"ecr:BatchDeleteImage"}]}`})
	require.NoError(t, err)
	_, err = e.CreateRepository(ctx, "secret", engine.RepositorySettings{Encryption: engine.EncryptionConfig{EncryptionType: "KMS", KMSKey: "team-k"}})
	require.NoError(t, err)
	for i, tag := range []string{"v1", "v2", "v3"} {
		pushImage(t, e, "app", tag, "layer of "+tag)
		if i == 0 {
			pushImage(t, e, "secret", tag, "secret layer")
		}
	}
	loose := []byte("a blob no image names")
	_, err = e.PutBlob(ctx, "app", bytes.NewReader(loose), digest.FromBytes(loose))
	require.NoError(t, err)
	require.NoError(t, e.PutCreationTemplate(ctx, engine.CreationTemplate{Prefix: "team", AppliedFor: []string{engine.AppliedForCreateOnPush},
		RepositorySettings: engine.RepositorySettings{TagMutability: engine.TagImmutable}}))
	_, _, err = e.PutSecret(ctx, "ecr-pullthroughcache/hub", []byte(`{"username":"bot","accessToken":"t0"}`), "")
	require.NoError(t, err)
	require.NoError(t, e.Close())

	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	require.NoError(t, os.WriteFile(htpasswd, []byte("root:"+string(hash)+"\nalice:"+string(hash)+"\n"), 0o600))
	return &liveFixture{golden: dir, htpasswd: htpasswd}
}

// pushImage stores an image of one layer in repo under tag.
func pushImage(t *testing.T, e *engine.Engine, repo, tag, layer string) {
	t.Helper()
	ctx := context.Background()
	config := []byte(`{"tag":"` + tag + `"}`)
	for _, b := range [][]byte{config, []byte(layer)} {
		_, err := e.PutBlob(ctx, repo, bytes.NewReader(b), digest.FromBytes(b))
		require.NoError(t, err)
	}
	m := regtest.ImageManifest(digest.FromBytes(config), digest.FromString(layer), len(config), len(layer), nil, "")
	_, err := e.PutManifest(ctx, repo, tag, "application/vnd.oci.image.manifest.v1+json", m)
	require.NoError(t, err)
}

// copyStore copies the fixture's store to a new directory.
func (f *liveFixture) copyStore(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "store")
	require.NoError(t, filepath.WalkDir(f.golden, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(f.golden, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(to, info.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, info.Mode().Perm())
	}))
	return dst
}

// startLiveDaemon serves data in process, with root and alice's
// passwords and testdata/iam.yaml's identities, its admin socket
// wherever mutate puts it (default <data>/admin.sock); it returns the
// address and a function that stops the daemon (the cleanup calls it
// too).
func (f *liveFixture) startLiveDaemon(t *testing.T, data string, mutate func(*Config)) (string, func()) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr, cfg.Data, cfg.AccessLog = "127.0.0.1:0", data, false
	cfg.Htpasswd, cfg.IAM = f.htpasswd, "testdata/iam.yaml"
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, &cfg, slog.New(slog.DiscardHandler), ready) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			require.NoError(t, <-done)
		}
	}
	t.Cleanup(stop)
	select {
	case a := <-ready:
		return a.String(), stop
	case err := <-done:
		stopped = true
		t.Fatalf("serve: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("serve did not start within a minute")
	}
	return "", nil
}

// liveRow is one command, run each way: on the stopped store (--data),
// through the daemon's admin socket (--data of the store it holds), and
// through its address (--server, as root).
type liveRow struct {
	name  string
	words []string // the command's words: keys create
	flags []string // its flags
	args  []string // its arguments
	// liveArgs replaces args against a daemon (iam check asks the daemon
	// instead of reading a file); nil: args.
	liveArgs []string
	// fileOnly: offline, the command reads a file, not the store (no
	// --data).
	fileOnly bool
	code     int // the exit code every way
}

// command is the row's command line with the mode's flags.
func (r liveRow) command(mode []string, live bool) []string {
	out := append(append(append([]string{}, r.words...), mode...), r.flags...)
	if live && r.liveArgs != nil {
		return append(out, r.liveArgs...)
	}
	return append(out, r.args...)
}

// liveVolatile are the parts of an answer that differ between two runs
// of the same command: times, durations (text and JSON nanoseconds).
var liveVolatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`), "TIME"},
	{regexp.MustCompile(`("\w*[dD]uration"): -?\d+`), "$1: 0"},
	{regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|ms|s|m|h)\b`), "DUR"},
}

func normalize(s string) string {
	for _, v := range liveVolatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return s
}

// storeState is what a stopped store holds once its background work is
// done (a rewrap a rotation without waiting left, which the next start
// resumes), as the commands print it: its repositories, keys, templates,
// check, what app's lifecycle policy would expire and what gc would
// collect.
func storeState(t *testing.T, data string) string {
	t.Helper()
	e, err := engine.Open(data, &engine.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, e.WaitRewraps(context.Background()))
	require.NoError(t, e.Close())
	var b strings.Builder
	for _, args := range [][]string{
		{"repo", "list"},
		{"keys", "list", "--json"},
		{"template", "list"},
		{"secrets", "list", "--json"},
		{"fsck", "--json", "--no-verify"},
		{"lifecycle", "preview", "--repo", "app", "--json"},
		{"gc", "--dry-run", "--grace", "0s"},
		{"scan", "db", "status"},
	} {
		code, out, errOut := run(t, "", append(args[:len(args):len(args)], "--data", data, "--admin-socket", "none")...)
		fmt.Fprintf(&b, "$ %s (%d)\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return normalize(b.String())
}

// TestEveryCommandLiveAndOffline: each command that touches a store gives
// the same answer and leaves the same store whether it runs on the
// stopped store, through the admin socket of the daemon holding it, or
// through that daemon's admin API on its address.
func TestEveryCommandLiveAndOffline(t *testing.T) {
	f := newLiveFixture(t)
	t.Setenv(serverPasswordEnv, "pw")
	policyFile := filepath.Join(t.TempDir(), "policy.json")
	valueFile := filepath.Join(t.TempDir(), "value.json")
	require.NoError(t, os.WriteFile(valueFile, []byte(`{"username":"bot","accessToken":"t1"}`+"\n"), 0o600))
	require.NoError(t, os.WriteFile(policyFile, []byte(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`), 0o600))
	osvDir, err := filepath.Abs(filepath.Join("..", "..", "scan", "testdata", "osv", "transcribed"))
	require.NoError(t, err)
	corrupt := filepath.Join(t.TempDir(), "Debian.zip")
	require.NoError(t, os.WriteFile(corrupt, []byte("not a zip"), 0o600))
	rows := []liveRow{
		{name: "gc dry run", words: []string{"gc"}, flags: []string{"--dry-run", "--grace", "0s"}},
		{name: "gc", words: []string{"gc"}, flags: []string{"--grace", "0s"}},
		{name: "gc json", words: []string{"gc"}, flags: []string{"--json", "--grace", "0s", "--upload-ttl", "0s"}},
		{name: "gc sparing young blobs", words: []string{"gc"}, flags: []string{"--grace", "1h"}},
		{name: "fsck", words: []string{"fsck"}},
		{name: "fsck json sampled", words: []string{"fsck"}, flags: []string{"--json", "--sample", "1"}},
		{name: "fsck without reading blobs", words: []string{"fsck"}, flags: []string{"--no-verify"}},
		{name: "lifecycle preview", words: []string{"lifecycle", "preview"}, flags: []string{"--repo", "app"}},
		{name: "lifecycle preview of a policy file", words: []string{"lifecycle", "preview"}, flags: []string{"--repo", "app", "--policy", policyFile, "--json"}},
		{name: "lifecycle apply", words: []string{"lifecycle", "apply"}, flags: []string{"--repo", "app"}},
		{name: "lifecycle apply json", words: []string{"lifecycle", "apply"}, flags: []string{"--repo", "app", "--json"}},
		{name: "lifecycle preview without a policy", words: []string{"lifecycle", "preview"}, flags: []string{"--repo", "secret"}, code: exitUsage},
		{name: "lifecycle preview of no repository", words: []string{"lifecycle", "preview"}, flags: []string{"--repo", "missing"}, code: exitError},
		{name: "keys list", words: []string{"keys", "list"}},
		{name: "keys list json", words: []string{"keys", "list"}, flags: []string{"--json"}},
		{name: "keys create", words: []string{"keys", "create"}, args: []string{"k2"}},
		{name: "keys create an existing key", words: []string{"keys", "create"}, args: []string{"team-k"}, code: exitError},
		{name: "keys rotate", words: []string{"keys", "rotate"}, args: []string{"team-k"}},
		{name: "keys rotate without waiting", words: []string{"keys", "rotate"}, flags: []string{"--no-wait"}, args: []string{"berth-default"}},
		{name: "keys disable", words: []string{"keys", "disable"}, args: []string{"team-k"}},
		{name: "keys enable", words: []string{"keys", "enable"}, args: []string{"team-k"}},
		{name: "keys destroy", words: []string{"keys", "destroy"}, flags: []string{"--yes"}, args: []string{"team-k"}},
		{name: "keys destroy the default key", words: []string{"keys", "destroy"}, flags: []string{"--yes"}, args: []string{"berth-default"}, code: exitError},
		{name: "repo create", words: []string{"repo", "create"}, flags: []string{"--mutability", "IMMUTABLE", "--scan-on-push", "--encryption", "KMS", "--kms-key", "team-k"}, args: []string{"new/repo"}},
		{name: "repo create with a lifecycle policy", words: []string{"repo", "create"}, flags: []string{"--lifecycle-policy", fixturePolicy}, args: []string{"kept"}},
		{name: "repo create an existing repository", words: []string{"repo", "create"}, args: []string{"app"}, code: exitError},
		{name: "repo create an invalid name", words: []string{"repo", "create"}, args: []string{"Not/Valid"}, code: exitError},
		{name: "repo list", words: []string{"repo", "list"}},
		{name: "repo describe", words: []string{"repo", "describe"}, args: []string{"secret"}},
		{name: "repo describe no repository", words: []string{"repo", "describe"}, args: []string{"missing"}, code: exitError},
		{name: "repo delete", words: []string{"repo", "delete"}, flags: []string{"--force"}, args: []string{"secret"}},
		{name: "repo delete a repository with images", words: []string{"repo", "delete"}, args: []string{"app"}, code: exitError},
		{name: "template put", words: []string{"template", "put"}, flags: []string{"--mutability", "IMMUTABLE_WITH_EXCLUSION", "--exclusion", "latest", "--description", "d"}, args: []string{"team-b"}},
		{name: "template put replaces", words: []string{"template", "put"}, flags: []string{"--json", `{"prefix":"team","appliedFor":["CREATE_ON_PUSH","PULL_THROUGH_CACHE"],"scanOnPush":true}`}},
		{name: "template list", words: []string{"template", "list"}},
		{name: "template delete", words: []string{"template", "delete"}, args: []string{"team"}},
		{name: "template delete no template", words: []string{"template", "delete"}, args: []string{"none"}, code: exitError},
		{name: "secrets put", words: []string{"secrets", "put"}, flags: []string{"--value-file", valueFile}, args: []string{"ecr-pullthroughcache/quay"}},
		{name: "secrets put replaces", words: []string{"secrets", "put"}, flags: []string{"--value-file", valueFile, "--kms-key", "team-k"}, args: []string{"ecr-pullthroughcache/hub"}},
		{name: "secrets put under no key", words: []string{"secrets", "put"}, flags: []string{"--value-file", valueFile, "--kms-key", "none"}, args: []string{"ecr-pullthroughcache/x"}, code: exitError},
		{name: "secrets list", words: []string{"secrets", "list"}},
		{name: "secrets list json", words: []string{"secrets", "list"}, flags: []string{"--json"}},
		{name: "secrets delete", words: []string{"secrets", "delete"}, args: []string{"ecr-pullthroughcache/hub"}},
		{name: "secrets delete no secret", words: []string{"secrets", "delete"}, args: []string{"ecr-pullthroughcache/none"}, code: exitError},
		{name: "audit", words: []string{"audit"}, flags: []string{"--action", "ecr:CreateRepository"}},
		{name: "audit json", words: []string{"audit"}, flags: []string{"--json", "--repository", "secret", "--action", "ecr:*"}},
		{name: "audit export", words: []string{"audit"}, flags: []string{"--export", "--action", "ecr:Create*"}},
		{name: "iam simulate", words: []string{"iam", "simulate"}, flags: []string{"--iam", "testdata/iam.yaml", "--user", "alice", "--action", "ecr:PutImage", "--repository", "team-a/app", "--secure"}},
		{name: "iam simulate a repository policy", words: []string{"iam", "simulate"}, flags: []string{"--iam", "testdata/iam.yaml", "--user", "root", "--action", "ecr:BatchDeleteImage", "--repository", "app", "--json"}},
		{name: "scan db status", words: []string{"scan", "db", "status"}},
		{name: "scan db import", words: []string{"scan", "db", "import"}, args: []string{osvDir}},
		{name: "scan db import of a corrupt file", words: []string{"scan", "db", "import"}, args: []string{corrupt}, code: exitError},
		{name: "scan db rollback with no previous version", words: []string{"scan", "db", "rollback"}, code: exitError},
		{name: "replication status", words: []string{"replication", "status"}},
		{name: "replication status json", words: []string{"replication", "status"}, flags: []string{"--json", "--failed"}},
		{name: "replication status of an image", words: []string{"replication", "status"}, flags: []string{"--repository", "app", "--reference", "v3", "--json"}},
		{name: "replication status of no image", words: []string{"replication", "status"}, flags: []string{"--repository", "app", "--reference", "nope"}, code: exitError},
		{name: "replication retry", words: []string{"replication", "retry"}, flags: []string{"--destination", "111122223333/eu-west-1"}},
		{name: "iam check", words: []string{"iam", "check"}, args: []string{"testdata/iam.yaml"}, liveArgs: []string{}, fileOnly: true},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			offline, socket, tcp := f.copyStore(t), f.copyStore(t), f.copyStore(t)
			_, stopSocket := f.startLiveDaemon(t, socket, nil)
			addr, stopTCP := f.startLiveDaemon(t, tcp, func(c *Config) { c.AdminSocket = noAdminSocket })
			type answer struct {
				code        int
				out, errOut string
			}
			ways := []struct {
				name string
				args []string
			}{
				{"offline", row.command(map[bool][]string{false: {"--data", offline}, true: nil}[row.fileOnly], false)},
				{"socket", row.command([]string{"--data", socket}, true)},
				{"tcp", row.command([]string{"--server", "http://" + addr, "--server-user", "root"}, true)},
			}
			got := map[string]answer{}
			for _, w := range ways {
				var a answer
				a.code, a.out, a.errOut = run(t, "", w.args...)
				got[w.name] = a
				require.Equal(t, row.code, a.code, "%s: registryd %s\nstdout:\n%s\nstderr:\n%s", w.name, strings.Join(w.args, " "), a.out, a.errOut)
			}
			stopSocket()
			stopTCP()
			want := normalize(got["offline"].out)
			for _, w := range []string{"socket", "tcp"} {
				assert.Equal(t, want, normalize(got[w].out), "%s answers as the stopped store does", w)
			}
			state := storeState(t, offline)
			assert.Equal(t, state, storeState(t, socket), "the store the socket's daemon leaves")
			assert.Equal(t, state, storeState(t, tcp), "the store the daemon at --server leaves")
		})
	}
}

// TestLiveFlagsThatDoNotApply: a flag that opens a store does not apply
// to a daemon, whose configuration decides; --server-user needs --server;
// with the socket turned off, the locked store is refused with the way to
// reach its daemon.
func TestLiveFlagsThatDoNotApply(t *testing.T) {
	f := newLiveFixture(t)
	data := f.copyStore(t)
	addr, _ := f.startLiveDaemon(t, data, nil)
	t.Setenv(serverPasswordEnv, "pw")
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"keys", "list", "--data", data, "--keyring", "/elsewhere"}, exitUsage, "--keyring do not apply to a running daemon"},
		{[]string{"gc", "--data", data, "--index-cache", "1000"}, exitUsage, "--index-cache do not apply"},
		{[]string{"fsck", "--server", "http://" + addr, "--server-user", "root", "--data", data}, exitUsage, "--data do not apply"},
		{[]string{"repo", "list", "--data", data, "--server-user", "root"}, exitUsage, "--server-user and --password-stdin need --server"},
		{[]string{"repo", "list", "--data", data, "--admin-socket", "none"}, exitError, "is a process holding it?"},
		{[]string{"mount", "--data", data, t.TempDir()}, exitError, "only it may open the store (its view is mounted by serve --mount DIR)"},
		{[]string{"iam", "check", "--data", t.TempDir()}, exitUsage, "want an identity FILE, or a daemon to ask"},
		{[]string{"iam", "check", "--data", data, "testdata/iam.yaml"}, exitUsage, "--data do not apply to a FILE"},
	} {
		t.Run(strings.Join(tc.args[:2], " "), func(t *testing.T) {
			code, out, errOut := run(t, "", tc.args...)
			assert.Equal(t, tc.code, code, "stdout %s\nstderr %s", out, errOut)
			assert.Contains(t, errOut, tc.err)
		})
	}
	// The password on stdin, as audit has always taken it.
	code, out, errOut := run(t, "pw\n", "repo", "list", "--server", addr, "--server-user", "root", "--password-stdin")
	require.Equal(t, exitOK, code, errOut)
	assert.Equal(t, "app\nsecret\n", out)
	code, _, errOut = run(t, "", "audit", "--server", addr, "--username", "root", "--server-user", "alice")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "two users")
}
