package sbom

import (
	"strings"
	"testing"

	packageurl "github.com/package-url/packageurl-go"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/scan"
)

// TestPackageURL checks the package URL of each ecosystem against the
// purl specification's type definitions and examples.
func TestPackageURL(t *testing.T) {
	debian := &scan.OS{ID: "debian", VersionID: "12", Ecosystem: "Debian:12"}
	ubuntu := &scan.OS{ID: "ubuntu", VersionID: "22.04", Ecosystem: "Ubuntu:22.04"}
	alpine := &scan.OS{ID: "alpine", VersionID: "3.18.4", Ecosystem: "Alpine:v3.18"}
	alma := &scan.OS{ID: "almalinux", VersionID: "9.2", Ecosystem: "AlmaLinux:9"}
	fedora := &scan.OS{ID: "fedora", VersionID: "39"}
	for _, tc := range []struct {
		os   *scan.OS
		pkg  scan.Package
		want string
	}{
		{debian, scan.Package{Ecosystem: "Debian:12", Name: "curl", Version: "7.88.1-10+deb12u5", Arch: "amd64", Kind: scan.KindDeb},
			"pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-12"},
		{debian, scan.Package{Ecosystem: "Debian:12", Name: "libc6", Version: "2.36-9+deb12u4", SourceName: "glibc", Arch: "amd64", Kind: scan.KindDeb},
			"pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"},
		// A binNMU: the source's version differs from the binary's.
		{debian, scan.Package{Ecosystem: "Debian:12", Name: "libfoo1", Version: "1.0-1+b1", SourceName: "foo", SourceVersion: "1.0-1", Kind: scan.KindDeb},
			"pkg:deb/debian/libfoo1@1.0-1%2Bb1?distro=debian-12&upstream=foo%401.0-1"},
		{ubuntu, scan.Package{Ecosystem: "Ubuntu:22.04", Name: "openssl", Version: "3.0.2-0ubuntu1.6", Arch: "amd64", Kind: scan.KindDeb},
			"pkg:deb/ubuntu/openssl@3.0.2-0ubuntu1.6?arch=amd64&distro=ubuntu-22.04"},
		// A dpkg database in an image without os-release: Debian's, with no release.
		{nil, scan.Package{Ecosystem: "Debian", Name: "tzdata", Version: "2024a-0+deb12u1", Arch: "all", Kind: scan.KindDeb},
			"pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all"},
		{alpine, scan.Package{Ecosystem: "Alpine:v3.18", Name: "libssl3", Version: "3.1.3-r0", SourceName: "openssl", Arch: "x86_64", Kind: scan.KindAPK},
			"pkg:apk/alpine/libssl3@3.1.3-r0?arch=x86_64&distro=alpine-3.18.4&upstream=openssl"},
		{alma, scan.Package{Ecosystem: "AlmaLinux:9", Name: "openssl-libs", Version: "1:3.0.7-16.el9_2", SourceName: "openssl", Arch: "x86_64", Kind: scan.KindRPM},
			"pkg:rpm/almalinux/openssl-libs@3.0.7-16.el9_2?arch=x86_64&distro=almalinux-9.2&epoch=1&upstream=openssl"},
		// A distribution without an OSV ecosystem still names the vendor.
		{fedora, scan.Package{Name: "curl", Version: "8.2.1-3.fc39", Arch: "x86_64", Kind: scan.KindRPM},
			"pkg:rpm/fedora/curl@8.2.1-3.fc39?arch=x86_64&distro=fedora-39"},
		{nil, scan.Package{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.7", Kind: scan.KindGoModule},
			"pkg:golang/golang.org/x/text@v0.3.7"},
		// Module paths keep their case.
		{nil, scan.Package{Ecosystem: "Go", Name: "github.com/BurntSushi/toml", Version: "v1.3.2", Kind: scan.KindGoModule},
			"pkg:golang/github.com/BurntSushi/toml@v1.3.2"},
		{nil, scan.Package{Ecosystem: "Go", Name: "stdlib", Version: "1.21.0-rc.2", Kind: scan.KindGoStdlib},
			"pkg:golang/stdlib@1.21.0-rc.2"},
		{nil, scan.Package{Ecosystem: "PyPI", Name: "Django_Rest", Version: "3.14.0", Kind: scan.KindPython},
			"pkg:pypi/django-rest@3.14.0"},
		{nil, scan.Package{Ecosystem: "npm", Name: "@babel/code-frame", Version: "7.22.13", Kind: scan.KindNPM},
			"pkg:npm/%40babel/code-frame@7.22.13"},
		{nil, scan.Package{Ecosystem: "npm", Name: "lodash", Version: "4.17.15", Kind: scan.KindNPM},
			"pkg:npm/lodash@4.17.15"},
		{nil, scan.Package{Ecosystem: "Maven", Name: "org.apache.commons:commons-text", Version: "1.10.0", Kind: scan.KindMaven},
			"pkg:maven/org.apache.commons/commons-text@1.10.0"},
		{nil, scan.Package{Ecosystem: "crates.io", Name: "regex", Version: "1.5.5", Kind: scan.KindCargo},
			"pkg:cargo/regex@1.5.5"},
		{nil, scan.Package{Name: "thing", Version: "1", Kind: "unknown"},
			"pkg:generic/thing@1"},
	} {
		got := PackageURL(tc.pkg, tc.os)
		require.Equal(t, tc.want, got, "%+v", tc.pkg)
		// Every package URL parses back, into the same string; but for
		// golang, whose path the library lower-cases as the type's
		// definition literally says (see PackageURL), the same up to case.
		u, err := packageurl.FromString(got)
		require.NoError(t, err, got)
		if u.Type == packageurl.TypeGolang {
			require.True(t, strings.EqualFold(got, u.ToString()), got)
		} else {
			require.Equal(t, got, u.ToString())
		}
	}
}

// TestImageURL checks the image's package URL (the oci type).
func TestImageURL(t *testing.T) {
	img := fixtureImage("x")
	img.Repository = "Team/App"
	require.Equal(t, "pkg:oci/app@"+img.Digest.String()+"?repository_url=registry.example.com%2FTeam%2FApp&tag=latest", ImageURL(img))
	img.Registry, img.Tags = "", nil
	require.Equal(t, "pkg:oci/app@"+img.Digest.String(), ImageURL(img))
}
