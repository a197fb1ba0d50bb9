package sbom

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/scan"
)

// FuzzDocuments writes every document of an inventory whose package
// fields are arbitrary, as an image's package databases may hold them,
// and checks that each is written and valid against its schema.
func FuzzDocuments(f *testing.F) {
	f.Add(uint8(0), "libc6", "2.36-9+deb12u4", "amd64", "glibc", "2.36-9", "", "debian", "12")
	f.Add(uint8(2), "openssl-libs", "1:3.0.7-16.el9_2", "x86_64", "openssl", "", "OpenSSL and ASL 2.0", "almalinux", "9.2")
	f.Add(uint8(7), "org.apache.commons:commons-text", "1.9", "", "", "", "Apache-2.0", "", "")
	f.Add(uint8(5), "@babel/code-frame", "7.22.13", "", "", "", "(MIT OR Apache-2.0)", "", "")
	f.Add(uint8(4), "Django_Rest", "3.14.0", "", "", "", "BSD", "", "")
	f.Fuzz(func(t *testing.T, kind uint8, name, version, arch, source, sourceVersion, license, osID, osVersion string) {
		kinds := []scan.Kind{scan.KindDeb, scan.KindAPK, scan.KindRPM, scan.KindGoModule, scan.KindPython, scan.KindNPM, scan.KindGoStdlib, scan.KindMaven, scan.KindCargo}
		inv := &scan.Inventory{Packages: []scan.Package{{
			Name: name, Version: version, Arch: arch, SourceName: source, SourceVersion: sourceVersion,
			License: license, Kind: kinds[int(kind)%len(kinds)], Location: "/var/lib/x",
		}}}
		if osID != "" {
			inv.OS = &scan.OS{ID: osID, VersionID: osVersion}
		}
		for _, k := range documentKinds {
			doc, err := Generate(inv, fixtureImage("fuzz"), k.format, k.opts)
			require.NoError(t, err)
			validate(t, k.schema, doc)
		}
	})
}
