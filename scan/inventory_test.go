package scan

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func TestOSRelease(t *testing.T) {
	for _, c := range []struct{ doc, id, eco string }{
		{"ID=debian\nVERSION_ID=\"12\"\n", "debian", "Debian:12"},
		{"ID=debian\nPRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\n", "debian", "Debian"},
		{"ID=ubuntu\nVERSION_ID=\"22.04\"\n", "ubuntu", "Ubuntu:22.04"},
		{"ID=alpine\nVERSION_ID=3.18.4\n", "alpine", "Alpine:v3.18"},
		{"ID=alpine\nVERSION_ID=3.20.0_alpha20240329\n", "alpine", "Alpine:v3.20"},
		{"ID=\"almalinux\"\nVERSION_ID=\"9.3\"\n", "almalinux", "AlmaLinux:9"},
		{"ID=\"rocky\"\nVERSION_ID=\"8.9\"\n", "rocky", "Rocky Linux:8"},
		{"ID=\"rhel\"\nVERSION_ID=\"9.2\"\n", "rhel", "Red Hat:9"},
		{"ID=\"sles\"\nVERSION_ID=\"15.5\"\n", "sles", "SUSE:Linux Enterprise Server 15 SP5"},
		{"ID=\"opensuse-leap\"\nVERSION_ID=\"15.5\"\n", "opensuse-leap", "openSUSE:Leap 15.5"},
		{"# comment\nID=wolfi\n", "wolfi", "Wolfi"},
		{"ID=gentoo\n", "gentoo", ""},
	} {
		o := parseOSRelease([]byte(c.doc))
		require.Equal(t, c.id, o.ID, c.doc)
		require.Equal(t, c.eco, o.Ecosystem, c.doc)
	}
}

func TestGoStdlibVersion(t *testing.T) {
	for in, want := range map[string]string{
		"go1.21.5": "1.21.5", "go1.21rc2": "1.21.0-rc.2", "go1.20": "1.20.0", "go1.22.1 X:boringcrypto": "1.22.1",
		"go1.9beta1": "1.9.0-beta.1", "devel go1.23-abcdef": "", "": "",
	} {
		got, ok := goStdlibVersion(in)
		require.Equal(t, want != "", ok, in)
		require.Equal(t, want, got, in)
	}
}

func TestNodeLockVersion1(t *testing.T) {
	fsys := fstest.MapFS{"app/package-lock.json": {Data: []byte(`{"lockfileVersion":1,"dependencies":{
		"a":{"version":"1.0.0","dependencies":{"b":{"version":"2.0.0"}}},
		"c":{"version":"3.0.0","dev":true},
		"d":{"version":"file:../d"}}}`)}}
	pkgs, err := readNodeLock(fsys, "app/package-lock.json", 1<<20)
	require.NoError(t, err)
	require.Equal(t, []Package{
		{Ecosystem: "npm", Name: "a", Version: "1.0.0", Kind: KindNPM},
		{Ecosystem: "npm", Name: "b", Version: "2.0.0", Kind: KindNPM},
	}, pkgs)
}

func TestNodeModulePackageDirs(t *testing.T) {
	for dir, want := range map[string]bool{
		"srv/node_modules/lodash":            true,
		"srv/node_modules/@babel/core":       true,
		"node_modules/a/node_modules/b":      true,
		"srv/node_modules/lodash/fp":         false,
		"srv/node_modules/@babel":            true, // a scope directory has no package.json; if it had one, it would be a package
		"srv/app":                            false,
		"srv/node_modules/x/test/node_fixes": false,
	} {
		require.Equal(t, want, isNodeModulePackage(dir), dir)
	}
}

// TestProblemsAreNotFatal checks that records that cannot be read are
// noted and the rest of the inventory stands.
func TestProblemsAreNotFatal(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/os-release":                                 {Data: []byte("ID=debian\nVERSION_ID=12\n")},
		"var/lib/dpkg/status":                            {Data: []byte("Package: ok\nStatus: install ok installed\nVersion: 1.0\n\nPackage: broken\nStatus: install ok installed\n")},
		"app/node_modules/bad/package.json":              {Data: []byte("{")},
		"app/x.jar":                                      {Data: []byte("not a zip")},
		"var/lib/rpm/rpmdb.sqlite":                       {Data: append([]byte("SQLite format 3\x00"), make([]byte, 100)...)},
		"usr/lib/python3/x.dist-info/METADATA":           {Data: []byte("Name: x\n")},
		"usr/bin/fake-elf":                               {Data: append([]byte("\x7fELF"), make([]byte, 100)...), Mode: 0o755},
		"usr/bin/script":                                 {Data: []byte("#!/bin/sh\necho hello, this is a script\n"), Mode: 0o755},
		"proc/self/status":                               {Data: []byte("never read")},
		"var/lib/dpkg/status.d/distroless-without-names": {Data: []byte("Description: nothing\n")},
	}
	inv, err := TakeInventory(context.Background(), fsys, Options{})
	require.NoError(t, err)
	require.Equal(t, []string{"Debian:12 ok 1.0 /var/lib/dpkg/status"}, inventoryLines(inv))
	var paths []string
	for _, p := range inv.Problems {
		paths = append(paths, p.Path)
	}
	require.ElementsMatch(t, []string{"/var/lib/dpkg/status", "/app/node_modules/bad/package.json", "/app/x.jar", "/var/lib/rpm/rpmdb.sqlite", "/usr/lib/python3/x.dist-info/METADATA"}, paths)
}

func TestLimits(t *testing.T) {
	fsys := fstest.MapFS{"var/lib/dpkg/status": {Data: bytes.Repeat([]byte("x"), 2048)}}
	inv, err := TakeInventory(context.Background(), fsys, Options{MaxFileSize: 1024})
	require.NoError(t, err)
	require.Len(t, inv.Problems, 1)
	require.Contains(t, inv.Problems[0].Err, ErrTooLarge.Error())

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = TakeInventory(ctx, fsys, Options{})
	require.True(t, errors.Is(err, context.Canceled), "%v", err)
}

func fuzzReader(f *testing.F, p string, mode os.FileMode, read func(fstest.MapFS) ([]Package, error), seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fsys := fstest.MapFS{p: {Data: b, Mode: mode}}
		pkgs, _ := read(fsys)
		for _, pkg := range pkgs {
			if pkg.Name == "" || pkg.Version == "" {
				t.Fatalf("a package without a name or a version: %+v", pkg)
			}
		}
	})
}

func seed(t testing.TB, p string) []byte {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

func FuzzDpkgStatus(f *testing.F) {
	fuzzReader(f, "status", 0o644, func(fsys fstest.MapFS) ([]Package, error) {
		return readDpkgStatus(fsys, "status", 1<<20, true)
	}, seed(f, "testdata/images/debian/rootfs/var/lib/dpkg/status"))
}

func FuzzAPKInstalled(f *testing.F) {
	fuzzReader(f, "installed", 0o644, func(fsys fstest.MapFS) ([]Package, error) {
		return readAPKInstalled(fsys, "installed", 1<<20)
	}, seed(f, "testdata/images/alpine/rootfs/lib/apk/db/installed"))
}

func FuzzPythonMetadata(f *testing.F) {
	fuzzReader(f, "METADATA", 0o644, func(fsys fstest.MapFS) ([]Package, error) {
		return readPythonMetadata(fsys, "METADATA")
	}, seed(f, "testdata/images/app/rootfs/usr/lib/python3.11/site-packages/requests-2.25.1.dist-info/METADATA"))
}

func FuzzNodeLock(f *testing.F) {
	fuzzReader(f, "package-lock.json", 0o644, func(fsys fstest.MapFS) ([]Package, error) {
		return readNodeLock(fsys, "package-lock.json", 1<<20)
	}, seed(f, "testdata/images/app/rootfs/srv/legacy/package-lock.json"), []byte(`{"dependencies":{"a":{"version":"1","dependencies":{"b":{"version":"2"}}}}}`))
}

func FuzzJar(f *testing.F) {
	inner := zipOf(f, map[string]string{"META-INF/maven/g/a/pom.properties": "groupId=g\nartifactId=a\nversion=1\n"})
	outer := zipOf(f, map[string]string{"META-INF/maven/g/b/pom.properties": "groupId=g\nartifactId=b\nversion=2\n", "lib/a.jar": string(inner)})
	fuzzReader(f, "x.jar", 0o644, func(fsys fstest.MapFS) ([]Package, error) {
		return readJar(fsys, "x.jar", Options{}.withDefaults())
	}, outer, inner)
}

func FuzzBinary(f *testing.F) {
	var seeds [][]byte
	if b, err := os.ReadFile("/bin/true"); err == nil {
		seeds = append(seeds, b)
	}
	fuzzReader(f, "bin", 0o755, func(fsys fstest.MapFS) ([]Package, error) {
		return readBinary(fsys, "bin", 1<<30)
	}, seeds...)
}

func FuzzOSRelease(f *testing.F) {
	f.Add(seed(f, "testdata/images/rpm/rootfs/etc/os-release"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o := parseOSRelease(b)
		require.NotNil(t, o)
	})
}
