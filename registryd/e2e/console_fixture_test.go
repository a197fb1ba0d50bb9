package e2e

// The console's fixture: a Debian base image (what debootstrap installs,
// taken from the host: writeHostBase), built once per test binary, and a
// headless Chromium driven by chromedp.

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/berthstore/berth/internal/testenv"
)

// debianBase is the base layer's file, written once per test binary.
var debianBase struct {
	once sync.Once
	path string
	dir  string
	err  error
}

// debianBaseLayer returns the path of the Debian base layer (a gzip tar),
// building it on first use into a directory that lives as long as the
// test binary (removed by cleanupConsoleFixture).
func debianBaseLayer(tb testing.TB) string {
	tb.Helper()
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		testenv.Missing(tb, "a Debian host (/var/lib/dpkg/status): %v", err)
	}
	debianBase.once.Do(func() {
		dir, err := os.MkdirTemp("", "berth-console-fixture-")
		if err != nil {
			debianBase.err = err
			return
		}
		debianBase.dir = dir
		p := filepath.Join(dir, "base.tar.gz")
		writeHostBase(tb, p, true)
		debianBase.path = p
	})
	if debianBase.err != nil {
		tb.Fatal(debianBase.err)
	}
	if debianBase.path == "" {
		tb.Fatal("the Debian base layer could not be built (see the first test that tried)")
	}
	return debianBase.path
}

// layerFileSHA256 reads the sha256 of file name (no leading slash) in the
// gzip tar at path, independently of Berth.
func layerFileSHA256(tb testing.TB, path, name string) (string, bool) {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", false
		}
		if err != nil {
			tb.Fatal(err)
		}
		if filepath.Clean("/"+h.Name) == "/"+name && h.Typeflag == tar.TypeReg {
			s := sha256.New()
			if _, err := io.Copy(s, tr); err != nil {
				tb.Fatal(err)
			}
			return hex.EncodeToString(s.Sum(nil)), true
		}
	}
}

// newChromium starts a headless Chromium for tb (the flags keep it off
// the network: the machine's network is closed) and returns a chromedp
// context on it. Without chromium the test is Missing (a failure under
// CI).
func newChromium(tb testing.TB) context.Context {
	tb.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Missing(tb, "chromium (apt-get install chromium; make tools does it)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-pings", true),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	tb.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// TestMain removes the console fixture's directory after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if debianBase.dir != "" {
		_ = os.RemoveAll(debianBase.dir)
	}
	os.Exit(code)
}
