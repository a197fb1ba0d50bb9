package scan

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/scanfixture"
	"github.com/berthstore/berth/internal/testenv"
	"github.com/berthstore/berth/scan/osv"
	"github.com/berthstore/berth/scan/version"
)

// The fixture images are testdata/images/NAME/rootfs, completed by
// buildImage (internal/scanfixture) with what has to be built. Each image has
// inventory.txt, the packages expected (ecosystem, name, version,
// location), and findings.txt, the findings expected against the
// advisories in testdata/osv (name, ecosystem, package, version,
// severity), both listed by hand.

// buildImage builds an image's rootfs into a temporary directory
// (internal/scanfixture).
func buildImage(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	if err := scanfixture.Build(".", name, dir); err != nil {
		if errors.Is(err, scanfixture.ErrMissing) {
			testenv.Missing(t, "%v", err)
		}
		require.NoError(t, err)
	}
	return dir
}

// zipOf returns a zip archive of files (name -> content).
func zipOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	b, err := scanfixture.Zip(files)
	require.NoError(t, err)
	return b
}

// fixtureDB loads the advisories of testdata/osv.
func fixtureDB(t testing.TB) *MemDB {
	t.Helper()
	db := NewMemDB()
	require.NoError(t, osv.ReadFS(os.DirFS("testdata/osv"), ".", func(_ string, r *osv.Record) error {
		db.Add(r)
		return nil
	}))
	return db
}

// readLines reads a list of expectations, one a line, sorted.
func readLines(t *testing.T, p string) []string {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	out := []string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, strings.ReplaceAll(l, "$GOVERSION", goVersion(t)))
		}
	}
	sort.Strings(out)
	return out
}

func goVersion(t *testing.T) string {
	v, ok := goStdlibVersion(runtime.Version())
	require.True(t, ok, runtime.Version())
	return v
}

func inventoryLines(inv *Inventory) []string {
	out := []string{}
	for _, p := range inv.Packages {
		out = append(out, strings.Join([]string{p.Ecosystem, p.Name, p.Version, p.Location}, " "))
	}
	sort.Strings(out)
	return out
}

func findingLines(res *Result) []string {
	out := []string{}
	for _, f := range res.Findings {
		out = append(out, strings.Join([]string{f.Name, f.Package.Ecosystem, f.Package.Name, f.Package.Version, string(f.Severity)}, " "))
	}
	sort.Strings(out)
	return out
}

// noReaderAt hides io.ReaderAt from a filesystem's files, as a
// filesystem that can only stream would.
type noReaderAt struct{ fs.FS }

type streamFile struct{ fs.File }

func (n noReaderAt) Open(name string) (fs.File, error) {
	f, err := n.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return streamFile{f}, nil
}

func (n noReaderAt) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(n.FS, name) }

// TestFixtureImages checks every image's inventory and findings against
// the lists written by hand: every expected finding is reported, nothing
// else is, and no finding is at or past the version that fixes it.
func TestFixtureImages(t *testing.T) {
	db := fixtureDB(t)
	for _, name := range scanfixture.Images {
		t.Run(name, func(t *testing.T) {
			dir := buildImage(t, name)
			for _, fsys := range []fs.FS{os.DirFS(dir), noReaderAt{os.DirFS(dir)}} {
				inv, err := TakeInventory(context.Background(), fsys, Options{})
				require.NoError(t, err)
				require.Empty(t, inv.Problems)
				require.Equal(t, readLines(t, filepath.Join("testdata/images", name, "inventory.txt")), inventoryLines(inv))
				checkLicenses(t, name, inv)
				res, err := Match(context.Background(), inv, db)
				require.NoError(t, err)
				require.Equal(t, readLines(t, filepath.Join("testdata/images", name, "findings.txt")), findingLines(res))
				for _, f := range res.Findings {
					require.NotEmpty(t, f.Advisories)
					if f.FixedVersion == "" {
						continue
					}
					c, err := version.Compare(f.Package.Ecosystem, f.Package.MatchVersion(), f.FixedVersion)
					require.NoError(t, err)
					require.Equal(t, -1, c, "%s reported for %s %s at or past its fix %s", f.Name, f.Package.Name, f.Package.Version, f.FixedVersion)
				}
			}
		})
	}
}

// TestInventoryJSONRoundTrip checks that an inventory stored as JSON (the
// engine keeps it, so that a new database re-matches without reading a
// layer) loads back and matches alike.
func TestInventoryJSONRoundTrip(t *testing.T) {
	db := fixtureDB(t)
	inv, err := TakeInventory(context.Background(), os.DirFS(buildImage(t, "debian")), Options{})
	require.NoError(t, err)
	b, err := json.Marshal(inv)
	require.NoError(t, err)
	var back Inventory
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, inv, &back)
	r1, err := Match(context.Background(), inv, db)
	require.NoError(t, err)
	r2, err := Match(context.Background(), &back, db)
	require.NoError(t, err)
	require.Equal(t, r1, r2)
}

// checkLicenses checks the licenses the fixture images' databases record.
func checkLicenses(t *testing.T, image string, inv *Inventory) {
	want := map[string]map[string]string{
		"alpine": {"busybox": "GPL-2.0-only", "libssl3": "Apache-2.0", "musl": "MIT"},
		"rpm":    {"glibc": "MIT", "openssl-libs": "MIT"},
		"app":    {"lodash": "MIT", "requests": "Apache 2.0", "urllib3": "MIT", "PyYAML": "MIT"},
		"debian": {"libc6": ""},
	}[image]
	for _, p := range inv.Packages {
		if l, ok := want[p.Name]; ok {
			require.Equal(t, l, p.License, "%s %s", image, p.Name)
		}
	}
}
