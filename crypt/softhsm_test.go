//go:build pkcs11 && cgo

package crypt

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/testenv"
)

// softHSM makes a fresh SoftHSM2 token labelled berth (user PIN 1234) in
// a temporary token directory and returns the module path and the token
// directory. Without SoftHSM2 the test stops (testenv.NeedSoftHSM: a
// skip on a developer's machine, a failure under CI).
func softHSM(t testing.TB) (module, tokenDir string) {
	t.Helper()
	module, util := testenv.NeedSoftHSM(t)
	dir := t.TempDir()
	tokenDir = filepath.Join(dir, "tokens")
	require.NoError(t, os.MkdirAll(tokenDir, 0o700))
	conf := filepath.Join(dir, "softhsm2.conf")
	require.NoError(t, os.WriteFile(conf, []byte("directories.tokendir = "+tokenDir+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600))
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command(util, "--init-token", "--free", "--label", "berth", "--pin", "1234", "--so-pin", "5678").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return module, tokenDir
}
