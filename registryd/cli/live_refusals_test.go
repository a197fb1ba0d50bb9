package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/internal/testenv"
)

// cliChildEnv makes the test binary run the command line (Main) with its
// arguments instead of the tests (TestMain): a child process that is
// registryd, under another user.
const cliChildEnv = "BERTH_CLI_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(cliChildEnv) == "1" {
		os.Exit(Main(context.Background(), Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// nobody is the user id of the child that is neither the daemon's user
// nor root.
const nobody = 65534

// childAsNobody returns a function that runs registryd's command line in
// a child process as uid and gid 65534, from dir (which must let that
// user in): a copy of the test binary in dir, since the build's directory
// is root's.
func childAsNobody(t *testing.T, dir string) func(args ...string) (int, string) {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	b, err := os.ReadFile(self)
	require.NoError(t, err)
	bin := filepath.Join(dir, "registryd.test")
	require.NoError(t, os.WriteFile(bin, b, 0o755))
	return func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = []string{cliChildEnv + "=1", "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, out.String()
		case errors.As(err, &ee):
			return ee.ExitCode(), out.String()
		}
		t.Fatalf("run the child: %v\n%s", err, out.String())
		return 0, ""
	}
}

// TestLiveRefusals: a caller of the admin API without credentials, a user
// whom no policy grants the action, and a local user who is neither the
// daemon's user nor root (a child process as uid 65534, through the admin
// socket) are each refused, every refusal is in the audit log with who
// asked what, and nothing changes. With the socket's own mode (0600) the
// kernel keeps that user out before the daemon hears of it.
func TestLiveRefusals(t *testing.T) {
	testenv.NeedRoot(t, "a child process runs as another user (uid 65534)")
	f := newLiveFixture(t)
	data := f.copyStore(t)
	shared, err := os.MkdirTemp("", "berth-live-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(shared) })
	require.NoError(t, os.Chmod(shared, 0o755))
	sock := filepath.Join(shared, "admin.sock")
	addr, _ := f.startLiveDaemon(t, data, func(c *Config) { c.AdminSocket = sock })
	server := "http://" + addr
	t.Setenv(serverPasswordEnv, "pw")

	// root's view of the store, through the socket.
	root := func(args ...string) string {
		t.Helper()
		args = append(append(append([]string{}, args[:2]...), "--admin-socket", sock), args[2:]...)
		code, out, errOut := run(t, "", args...)
		require.Equal(t, exitOK, code, "registryd %s\nstderr: %s", strings.Join(args, " "), errOut)
		return out
	}
	state := func() string {
		return root("repo", "list") + root("keys", "list", "--json") + root("template", "list") + root("repo", "describe", "app")
	}
	before := state()

	asNobody := childAsNobody(t, shared)
	code, out := asNobody("keys", "create", "--admin-socket", sock, "k9")
	assert.Equal(t, exitError, code, out)
	assert.Contains(t, out, "this user may not use", "the socket's mode keeps other users out")

	require.NoError(t, os.Chmod(sock, 0o666)) // an operator loosened it: the daemon still refuses
	tcp := func(user string, args ...string) (int, string) {
		live := []string{"--server", server}
		if user != "" {
			live = append(live, "--server-user", user)
		}
		args = append(append(append([]string{}, args[:2]...), live...), args[2:]...)
		code, _, errOut := run(t, "", args...)
		return code, errOut
	}
	type who struct {
		kind engine.AuditPrincipalType
		name string
	}
	anonymous, alice, local := who{engine.AuditAnonymous, ""}, who{engine.AuditIAMUser, "alice"}, who{engine.AuditLocal, "nobody"}
	for _, tc := range []struct {
		name   string
		try    func() (int, string)
		answer string
		who    who
		action string
	}{
		{"anonymous creates a key", func() (int, string) { return tcp("", "keys", "create", "k9") }, "401 Unauthorized UNAUTHORIZED", anonymous, "kms:CreateKey"},
		{"anonymous deletes a repository", func() (int, string) { return tcp("", "repo", "delete", "--force", "app") }, "401 Unauthorized", anonymous, "ecr:DeleteRepository"},
		{"anonymous collects garbage", func() (int, string) { return tcp("", "gc", "--json", "--grace", "0s") }, "401 Unauthorized", anonymous, "berth:CollectGarbage"},
		{"alice creates a key", func() (int, string) { return tcp("alice", "keys", "create", "k9") }, "403 Forbidden DENIED", alice, "kms:CreateKey"},
		{"alice destroys a key", func() (int, string) { return tcp("alice", "keys", "destroy", "--yes", "team-k") }, "403 Forbidden DENIED", alice, "kms:ScheduleKeyDeletion"},
		{"alice lists the keys", func() (int, string) { return tcp("alice", "keys", "list") }, "403 Forbidden DENIED", alice, "kms:ListKeys"},
		{"alice collects garbage", func() (int, string) { return tcp("alice", "gc", "--json", "--grace", "0s") }, "403 Forbidden DENIED", alice, "berth:CollectGarbage"},
		{"alice creates a repository outside team-a", func() (int, string) { return tcp("alice", "repo", "create", "other") }, "403 Forbidden DENIED", alice, "ecr:CreateRepository"},
		{"alice deletes a template", func() (int, string) { return tcp("alice", "template", "delete", "team") }, "403 Forbidden DENIED", alice, "ecr:DeleteRepositoryCreationTemplate"},
		{"alice applies a lifecycle policy", func() (int, string) { return tcp("alice", "lifecycle", "apply", "--repo", "app") }, "403 Forbidden DENIED", alice, "berth:ApplyLifecycle"},
		{"alice reads the audit log", func() (int, string) { return tcp("alice", "audit", "--json", "--limit", "1") }, "403 Forbidden DENIED", alice, "berth:ReadAuditLog"},
		{"nobody creates a key", func() (int, string) { return asNobody("keys", "create", "--admin-socket", sock, "k9") }, "403 Forbidden DENIED", local, "kms:CreateKey"},
		{"nobody deletes a repository", func() (int, string) { return asNobody("repo", "delete", "--admin-socket", sock, "--force", "app") }, "403 Forbidden DENIED", local, "ecr:DeleteRepository"},
		{"nobody collects garbage", func() (int, string) { return asNobody("gc", "--admin-socket", sock, "--grace", "0s") }, "403 Forbidden DENIED", local, "berth:CollectGarbage"},
		{"nobody reads the audit log", func() (int, string) { return asNobody("audit", "--admin-socket", sock) }, "403 Forbidden DENIED", local, "berth:ReadAuditLog"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, errOut := tc.try()
			assert.Equal(t, exitError, code, errOut)
			assert.Contains(t, errOut, tc.answer)
			if tc.who.kind == engine.AuditLocal {
				assert.Contains(t, errOut, "is neither the user the daemon runs as (uid 0) nor root")
			}
			recs := decodeLines(t, root("audit", "--json", "--action", tc.action, "--decision", "Deny", "--limit", "1"))
			require.Len(t, recs, 1, "the refusal is in the audit log")
			r := recs[0]
			assert.Equal(t, tc.who.kind, r.PrincipalType)
			assert.Equal(t, tc.who.name, r.UserName)
			assert.Equal(t, engine.AuditImplicitDeny, r.Decision)
			assert.Equal(t, engine.AuditAPIAdmin, r.API)
			if tc.who.kind == engine.AuditLocal {
				assert.Equal(t, "local", r.SourceIP)
				assert.Equal(t, "uid:65534", r.UserID)
			} else {
				assert.Equal(t, "127.0.0.1", r.SourceIP)
			}
		})
	}
	assert.Equal(t, before, state(), "nothing changed")
}
