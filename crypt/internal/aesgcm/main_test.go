package aesgcm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// childEnv, set in the environment of this test binary, makes it report
// what New chooses (childReport, as JSON on stdout) instead of running the
// tests: the tests start it with another GODEBUG (FIPS 140-3 mode, CPU
// features turned off), which only takes effect at process start.
const childEnv = "BERTH_AESGCM_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// childReport is what a child process saw.
type childReport struct {
	FIPS               bool   // crypto/fips140.Enabled()
	AsmPath            string // the assembly path of this CPU and build
	HasAsm, HasAsmAVX2 bool
	Impl, Reason       string // Current()
	CurrentErr         string
	NewType, NewErr    string // New(32-byte key)
	StdType, StdErr    string // cipher.NewGCM for the same key
}

func childMain() int {
	r := childReport{FIPS: fips140.Enabled(), AsmPath: asmPath, HasAsm: hasAsm, HasAsmAVX2: hasAsmAVX2}
	if c, err := Current(); err != nil {
		r.CurrentErr = err.Error()
	} else {
		r.Impl, r.Reason = c.Impl, c.Reason
	}
	key := make([]byte, 32)
	if a, err := New(key); err != nil {
		r.NewErr = err.Error()
	} else {
		r.NewType = fmt.Sprintf("%T", a)
	}
	b, err := aes.NewCipher(key)
	if err == nil {
		var std cipher.AEAD
		if std, err = cipher.NewGCM(b); err == nil {
			r.StdType = fmt.Sprintf("%T", std)
		}
	}
	if err != nil {
		r.StdErr = err.Error()
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// runChild runs this test binary as a child (childMain) with env added to
// this process's environment, BERTH_AESGCM unset, and returns its report.
func runChild(t *testing.T, env ...string) childReport {
	t.Helper()
	r, stderr, err := startChild(env...)
	require.NoError(t, err, "child with %v: %s", env, stderr)
	return r
}

// startChild is runChild returning the child's failure and standard error.
func startChild(env ...string) (r childReport, stderr []byte, err error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), EnvVar+"=", childEnv+"=1")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		return r, stderr, err
	}
	return r, stderr, json.Unmarshal(out, &r)
}
