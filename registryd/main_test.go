package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mainEnv makes the test binary run registryd's main in place of the
// tests (TestMain), so that the tests drive the real program: its
// arguments, its output and its exit code.
const mainEnv = "BERTH_REGISTRYD_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// registryd runs the program with args and stdin, and returns its
// standard output, standard error and exit code.
func registryd(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run registryd %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

func TestHelpAndBadArguments(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		out, err string // substrings of stdout and stderr ("": not checked)
	}{
		{name: "help", args: []string{"--help"}, out: "Usage: registryd [command] [flags]"},
		{name: "help lists the commands", args: []string{"--help"}, out: "fsck       check a store: blob digests, references, orphans"},
		{name: "help of a command", args: []string{"fsck", "--help"}, out: "Usage: registryd fsck [--data DIR | --server URL]"},
		{name: "bad flag", args: []string{"--no-such-flag"}, code: 2, err: "flag provided but not defined: -no-such-flag"},
		{name: "bad flag of a command", args: []string{"gc", "--no-such-flag"}, code: 2, err: "flag provided but not defined: -no-such-flag"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, err: `registryd: unknown command "frobnicate"`},
		{name: "bad flag value", args: []string{"--memory-limit", "lots"}, code: 2, err: "lots"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := registryd(t, "", tc.args...)
			assert.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			assert.Contains(t, out, tc.out)
			assert.Contains(t, errOut, tc.err)
		})
	}
}

// The program's commands on a store: create and list a repository, check
// the store, and make an htpasswd line from stdin.
func TestCommandsOnAStore(t *testing.T) {
	data := t.TempDir()
	out, errOut, code := registryd(t, "", "repo", "create", "--data", data, "team/app")
	require.Zero(t, code, errOut)
	assert.Contains(t, out, `"name": "team/app"`)

	out, errOut, code = registryd(t, "", "repo", "list", "--data", data)
	require.Zero(t, code, errOut)
	assert.Equal(t, "team/app\n", out)

	out, errOut, code = registryd(t, "", "fsck", "--data", data)
	require.Zero(t, code, errOut)
	assert.Contains(t, out, "1 repositories")
	assert.Contains(t, out, "0 corrupt, 0 orphans")

	out, errOut, code = registryd(t, "s3cret\n", "htpasswd", "alice")
	require.Zero(t, code, errOut)
	assert.Regexp(t, `^alice:\$2[aby]\$`, out)
}
