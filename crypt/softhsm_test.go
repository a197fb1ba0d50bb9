//go:build pkcs11 && cgo

package crypt

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// softHSMModules are where distributions put the SoftHSM2 module.
var softHSMModules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",
}

// softHSM makes a fresh SoftHSM2 token labelled berth (user PIN 1234) in
// a temporary token directory and returns the module path and the token
// directory. It skips the test when SoftHSM2 is not installed, unless
// BERTH_REQUIRE_SOFTHSM is set.
func softHSM(t testing.TB) (module, tokenDir string) {
	t.Helper()
	for _, m := range softHSMModules {
		if _, err := os.Stat(m); err == nil {
			module = m
			break
		}
	}
	util, err := exec.LookPath("softhsm2-util")
	if module == "" || err != nil {
		if os.Getenv("BERTH_REQUIRE_SOFTHSM") != "" {
			t.Fatal("SoftHSM2 not installed (apt-get install softhsm2)")
		}
		t.Skip("SoftHSM2 not installed (apt-get install softhsm2)")
	}
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
