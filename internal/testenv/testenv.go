package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Strict reports whether a missing prerequisite fails the test instead of
// skipping it: under CI (CI=true) or when BERTH_REQUIRE_ALL=1.
func Strict() bool {
	return os.Getenv("CI") == "true" || os.Getenv("BERTH_REQUIRE_ALL") == "1"
}

// Missing stops tb because the machine lacks something it needs: a skip on
// a developer's machine, a failure when Strict. The message says what is
// missing and, where it can, how to install it.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		tb.Fatalf("missing test prerequisite (CI=true or BERTH_REQUIRE_ALL=1 makes this a failure): %s", msg)
		return
	}
	tb.Skipf("missing test prerequisite: %s", msg)
}

// NeedRoot stops tb (Missing) unless the process runs as root.
func NeedRoot(tb testing.TB, why string) {
	tb.Helper()
	if os.Getuid() != 0 {
		Missing(tb, "root: %s (run the tests as root, as CI does)", why)
	}
}

// NeedFUSE stops tb (Missing) unless this process can mount a FUSE file
// system: root, /dev/fuse and fusermount3 (Debian's fuse3).
func NeedFUSE(tb testing.TB) {
	tb.Helper()
	NeedRoot(tb, "mounting a FUSE file system")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		Missing(tb, "/dev/fuse: %v (a kernel with FUSE, or a container started with --device /dev/fuse)", err)
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		if _, err := exec.LookPath("fusermount"); err != nil {
			Missing(tb, "fusermount3 (apt-get install fuse3; make tools does it)")
		}
	}
}

// NeedTool returns the path of the command name, found on PATH or in
// $(go env GOPATH)/bin, and stops tb (Missing) when it is in neither.
func NeedTool(tb testing.TB, name string) string {
	tb.Helper()
	if p, ok := LookTool(name); ok {
		return p
	}
	Missing(tb, "%s is not installed (make tools, or bash .ci/install-tools.sh)", name)
	return ""
}

// LookTool finds the command name on PATH or in $(go env GOPATH)/bin.
func LookTool(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(string(bytes.TrimSpace(gopath)), "bin", name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, true
		}
	}
	return "", false
}

// SoftHSMModules are where Debian and others install the SoftHSM2
// PKCS#11 module.
var SoftHSMModules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",
}

// NeedSoftHSM returns the SoftHSM2 PKCS#11 module and the path of
// softhsm2-util, and stops tb (Missing) when either is missing.
func NeedSoftHSM(tb testing.TB) (module, util string) {
	tb.Helper()
	for _, m := range SoftHSMModules {
		if _, err := os.Stat(m); err == nil {
			module = m
			break
		}
	}
	util, err := exec.LookPath("softhsm2-util")
	if module == "" || err != nil {
		Missing(tb, "SoftHSM2 (apt-get install softhsm2; make tools does it)")
	}
	return module, util
}
