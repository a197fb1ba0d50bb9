package sbom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/opencontainers/go-digest"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/scanfixture"
	"github.com/berthstore/berth/internal/testenv"
	"github.com/berthstore/berth/scan"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// fixtureImage is the identity the fixture images' documents are
// written for.
func fixtureImage(name string) Image {
	return Image{
		Repository: "fixtures/" + name,
		Digest:     digest.FromString("manifest of " + name),
		Registry:   "registry.example.com",
		Tags:       []string{"v1", "latest"},
		Created:    time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
	}
}

// buildImage builds a fixture image's rootfs (scan/testdata/images,
// completed by internal/scanfixture) into a temporary directory.
func buildImage(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	if err := scanfixture.Build("..", name, dir); err != nil {
		if errors.Is(err, scanfixture.ErrMissing) {
			testenv.Missing(t, "%v", err)
		}
		require.NoError(t, err)
	}
	return dir
}

// fixtureInventory takes the inventory of a fixture image, as scan's own
// tests do. The Go toolchain's version, which is the one building the
// test binary, is set to GOVERSION, so that the golden files hold for
// every toolchain.
func fixtureInventory(t *testing.T, name string) *scan.Inventory {
	t.Helper()
	inv, err := scan.TakeInventory(context.Background(), os.DirFS(buildImage(t, name)), scan.Options{})
	require.NoError(t, err)
	require.Empty(t, inv.Problems)
	require.NotEmpty(t, inv.Packages)
	for i := range inv.Packages {
		if inv.Packages[i].Kind == scan.KindGoStdlib {
			inv.Packages[i].Version = "GOVERSION"
		}
	}
	return inv
}

// documentKinds are the documents written of every fixture image: the
// golden file's suffix, the format, the options and the schema's $id.
var documentKinds = []struct {
	suffix string
	format Format
	opts   Options
	schema string
}{
	{"spdx.json", FormatSPDXJSON, Options{ToolVersion: "1.2.3"}, "http://spdx.org/rdf/terms/2.3"},
	{"cdx-1.5.json", FormatCycloneDXJSON, Options{ToolVersion: "1.2.3", CycloneDXVersion: CycloneDX15}, "http://cyclonedx.org/schema/bom-1.5.schema.json"},
	{"cdx-1.6.json", FormatCycloneDXJSON, Options{ToolVersion: "1.2.3", CycloneDXVersion: CycloneDX16}, "http://cyclonedx.org/schema/bom-1.6.schema.json"},
}

// TestFixtureImages writes every document of every fixture image and
// checks that it is valid against its official schema, equals its
// golden file, does not depend on the order of the inventory, names
// every package of the inventory by its package URL, and reads back with
// the library that wrote it.
func TestFixtureImages(t *testing.T) {
	for _, name := range scanfixture.Images {
		t.Run(name, func(t *testing.T) {
			inv := fixtureInventory(t, name)
			img := fixtureImage(name)
			want := map[string]bool{}
			for _, p := range inv.Packages {
				want[PackageURL(p, inv.OS)] = true
			}
			for _, k := range documentKinds {
				doc, err := Generate(inv, img, k.format, k.opts)
				require.NoError(t, err)
				validate(t, k.schema, doc)
				golden(t, filepath.Join("testdata/golden", name+"."+k.suffix), doc)

				shuffled := *inv
				shuffled.Packages = slices.Clone(inv.Packages)
				rand.Shuffle(len(shuffled.Packages), func(i, j int) {
					shuffled.Packages[i], shuffled.Packages[j] = shuffled.Packages[j], shuffled.Packages[i]
				})
				again, err := Generate(&shuffled, img, k.format, k.opts)
				require.NoError(t, err)
				require.Equal(t, string(doc), string(again), "the document depends on the inventory's order")

				var got []string
				if k.format == FormatSPDXJSON {
					got = spdxPURLs(t, doc)
				} else {
					got = cdxPURLs(t, doc)
				}
				gotSet := map[string]bool{}
				for _, u := range got {
					gotSet[u] = true
				}
				require.Equal(t, want, gotSet)
			}
		})
	}
}

// spdxPURLs reads an SPDX document back with tools-golang and returns
// its packages' package URLs (the image's left out).
func spdxPURLs(t *testing.T, doc []byte) []string {
	t.Helper()
	d, err := spdxjson.Read(bytes.NewReader(doc))
	require.NoError(t, err)
	var out []string
	for _, p := range d.Packages {
		if p.PrimaryPackagePurpose == "CONTAINER" || p.PrimaryPackagePurpose == "OPERATING_SYSTEM" {
			continue
		}
		require.Len(t, p.PackageExternalReferences, 1, p.PackageName)
		out = append(out, p.PackageExternalReferences[0].Locator)
	}
	return out
}

// cdxPURLs reads a CycloneDX BOM back with cyclonedx-go and returns its
// components' package URLs (the operating system has none).
func cdxPURLs(t *testing.T, doc []byte) []string {
	t.Helper()
	var bom cdx.BOM
	require.NoError(t, cdx.NewBOMDecoder(bytes.NewReader(doc), cdx.BOMFileFormatJSON).Decode(&bom))
	var out []string
	for _, c := range *bom.Components {
		if c.Type == cdx.ComponentTypeOS {
			continue
		}
		require.Equal(t, c.BOMRef, c.PackageURL)
		out = append(out, c.PackageURL)
	}
	return out
}

// golden compares got with the file at p, or rewrites the file under
// -update.
func golden(t *testing.T, p string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, got, 0o644))
		return
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "run go test ./scan/sbom -update to write the golden files")
	require.Equal(t, string(want), string(got), "%s differs (go test ./scan/sbom -update rewrites it; review the diff)", p)
}

// TestDocumentContents checks what the documents say of one image, read
// as JSON: the OS as a component, licenses, locations, relationships.
func TestDocumentContents(t *testing.T) {
	inv := &scan.Inventory{
		OS: &scan.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)", Ecosystem: "Debian:12"},
		Packages: []scan.Package{
			{Ecosystem: "Debian:12", Name: "libc6", Version: "2.36-9+deb12u4", SourceName: "glibc", Arch: "amd64", Kind: scan.KindDeb, Location: "/var/lib/dpkg/status"},
			{Ecosystem: "npm", Name: "lodash", Version: "4.17.15", License: "MIT", Kind: scan.KindNPM, Location: "/app/node_modules/lodash/package.json"},
			{Ecosystem: "npm", Name: "lodash", Version: "4.17.15", Kind: scan.KindNPM, Location: "/app/package-lock.json"},
			{Ecosystem: "PyPI", Name: "requests", Version: "2.25.1", License: "Apache 2.0", Kind: scan.KindPython, Location: "/usr/lib/python3/requests-2.25.1.dist-info/METADATA"},
		},
	}
	img := fixtureImage("contents")

	spdxDoc, err := SPDXJSON(inv, img, Options{})
	require.NoError(t, err)
	var s struct {
		Namespace    string `json:"documentNamespace"`
		CreationInfo struct {
			Created  string   `json:"created"`
			Creators []string `json:"creators"`
		} `json:"creationInfo"`
		Packages []struct {
			ID       string `json:"SPDXID"`
			Name     string `json:"name"`
			Purpose  string `json:"primaryPackagePurpose"`
			License  string `json:"licenseDeclared"`
			Source   string `json:"sourceInfo"`
			Comment  string `json:"comment"`
			External []struct {
				Category string `json:"referenceCategory"`
				Type     string `json:"referenceType"`
				Locator  string `json:"referenceLocator"`
			} `json:"externalRefs"`
		} `json:"packages"`
		Extracted []struct {
			ID   string `json:"licenseId"`
			Text string `json:"extractedText"`
		} `json:"hasExtractedLicensingInfos"`
		Relationships []struct {
			A    string `json:"spdxElementId"`
			Type string `json:"relationshipType"`
			B    string `json:"relatedSpdxElement"`
		} `json:"relationships"`
	}
	require.NoError(t, json.Unmarshal(spdxDoc, &s))
	require.Equal(t, "2026-03-04T05:06:07Z", s.CreationInfo.Created)
	require.Equal(t, []string{"Tool: berth"}, s.CreationInfo.Creators)
	require.Equal(t, DefaultNamespace+"/fixtures/contents/sha256-"+img.Digest.Encoded(), s.Namespace)
	require.Len(t, s.Packages, 5) // image, OS, libc6, lodash (merged), requests
	require.Equal(t, "CONTAINER", s.Packages[0].Purpose)
	require.Equal(t, "tags: latest, v1", s.Packages[0].Comment)
	require.Equal(t, "pkg:oci/contents@sha256:"+img.Digest.Encoded()+"?repository_url=registry.example.com%2Ffixtures%2Fcontents&tag=latest", s.Packages[0].External[0].Locator)
	require.Equal(t, "OPERATING_SYSTEM", s.Packages[1].Purpose)
	require.Equal(t, "debian", s.Packages[1].Name)
	byName := map[string]int{}
	for i, p := range s.Packages {
		byName[p.Name] = i
	}
	libc := s.Packages[byName["libc6"]]
	require.Equal(t, "NOASSERTION", libc.License)
	require.Equal(t, "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc", libc.External[0].Locator)
	require.Equal(t, "built from source package glibc; recorded in /var/lib/dpkg/status", libc.Source)
	lodash := s.Packages[byName["lodash"]]
	require.Equal(t, "MIT", lodash.License)
	require.Equal(t, "recorded in /app/node_modules/lodash/package.json, /app/package-lock.json", lodash.Source)
	requests := s.Packages[byName["requests"]]
	require.Equal(t, "LicenseRef-Apache-2.0", requests.License)
	require.Equal(t, []struct{ ID, Text string }{{"LicenseRef-Apache-2.0", "Apache 2.0"}}, []struct{ ID, Text string }{{s.Extracted[0].ID, s.Extracted[0].Text}})
	rels := map[string]bool{}
	for _, r := range s.Relationships {
		rels[r.A+" "+r.Type+" "+r.B] = true
	}
	require.True(t, rels["SPDXRef-DOCUMENT DESCRIBES SPDXRef-Image"])
	require.True(t, rels["SPDXRef-Image CONTAINS SPDXRef-OperatingSystem"])
	require.True(t, rels["SPDXRef-OperatingSystem CONTAINS "+libc.ID])
	require.True(t, rels["SPDXRef-Image CONTAINS "+lodash.ID])
	require.Len(t, s.Relationships, 5)

	cdxDoc, err := CycloneDXJSON(inv, img, Options{CycloneDXVersion: CycloneDX15})
	require.NoError(t, err)
	var c struct {
		Schema      string `json:"$schema"`
		SpecVersion string `json:"specVersion"`
		Serial      string `json:"serialNumber"`
		Metadata    struct {
			Timestamp string `json:"timestamp"`
			Component struct {
				Type, Name, Version, Purl string
				Properties                []struct{ Name, Value string }
			} `json:"component"`
		} `json:"metadata"`
		Components []struct {
			Ref      string `json:"bom-ref"`
			Type     string `json:"type"`
			Name     string `json:"name"`
			Licenses []struct {
				Expression string `json:"expression"`
				License    *struct{ ID, Name string }
			} `json:"licenses"`
			Evidence struct {
				Occurrences []struct{ Location string } `json:"occurrences"`
			} `json:"evidence"`
		} `json:"components"`
		Dependencies []struct {
			Ref       string   `json:"ref"`
			DependsOn []string `json:"dependsOn"`
		} `json:"dependencies"`
	}
	require.NoError(t, json.Unmarshal(cdxDoc, &c))
	require.Equal(t, "1.5", c.SpecVersion)
	require.Equal(t, "http://cyclonedx.org/schema/bom-1.5.schema.json", c.Schema)
	require.Regexp(t, `^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, c.Serial)
	require.Equal(t, "2026-03-04T05:06:07Z", c.Metadata.Timestamp)
	require.Equal(t, "container", c.Metadata.Component.Type)
	require.Equal(t, []struct{ Name, Value string }{{PropertyTag, "latest"}, {PropertyTag, "v1"}}, c.Metadata.Component.Properties)
	require.Len(t, c.Components, 4)
	require.Equal(t, "operating-system", c.Components[0].Type)
	require.Equal(t, "debian", c.Components[0].Name)
	for _, comp := range c.Components {
		switch comp.Name {
		case "lodash":
			require.Equal(t, "MIT", comp.Licenses[0].Expression)
			require.Len(t, comp.Evidence.Occurrences, 2)
		case "requests":
			require.Equal(t, "Apache 2.0", comp.Licenses[0].License.Name)
		case "libc6":
			require.Empty(t, comp.Licenses)
		}
	}
	require.Len(t, c.Dependencies, 2)
	require.Equal(t, "image", c.Dependencies[0].Ref)
	require.Equal(t, []string{"operating-system", "pkg:npm/lodash@4.17.15", "pkg:pypi/requests@2.25.1"}, c.Dependencies[0].DependsOn)
	require.Equal(t, "operating-system", c.Dependencies[1].Ref)
	require.Equal(t, []string{"pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"}, c.Dependencies[1].DependsOn)

	// Another creation time is another document (and serial number); the
	// same input is the same document.
	later := img
	later.Created = img.Created.Add(time.Hour)
	other, err := CycloneDXJSON(inv, later, Options{CycloneDXVersion: CycloneDX15})
	require.NoError(t, err)
	require.NotEqual(t, string(cdxDoc), string(other))
	same, err := CycloneDXJSON(inv, img, Options{CycloneDXVersion: CycloneDX15})
	require.NoError(t, err)
	require.Equal(t, string(cdxDoc), string(same))
}

// TestInvalidInput checks that what no document can be written from is
// refused with ErrInvalid.
func TestInvalidInput(t *testing.T) {
	inv := &scan.Inventory{}
	good := fixtureImage("x")
	for name, tc := range map[string]struct {
		inv    *scan.Inventory
		img    func(Image) Image
		format Format
		opts   Options
	}{
		"no inventory":  {nil, func(i Image) Image { return i }, FormatSPDXJSON, Options{}},
		"no repository": {inv, func(i Image) Image { i.Repository = ""; return i }, FormatCycloneDXJSON, Options{}},
		"no digest":     {inv, func(i Image) Image { i.Digest = ""; return i }, FormatSPDXJSON, Options{}},
		"bad digest":    {inv, func(i Image) Image { i.Digest = "sha256:xyz"; return i }, FormatCycloneDXJSON, Options{}},
		"no time":       {inv, func(i Image) Image { i.Created = time.Time{}; return i }, FormatSPDXJSON, Options{}},
		"bad format":    {inv, func(i Image) Image { return i }, "spdx-tag-value", Options{}},
		"bad version":   {inv, func(i Image) Image { return i }, FormatCycloneDXJSON, Options{CycloneDXVersion: "1.4"}},
	} {
		_, err := Generate(tc.inv, tc.img(good), tc.format, tc.opts)
		require.True(t, errors.Is(err, ErrInvalid), "%s: %v", name, err)
	}
	_, err := ParseFormat("xml")
	require.ErrorIs(t, err, ErrInvalid)
	for _, f := range Formats {
		g, err := ParseFormat(string(f))
		require.NoError(t, err)
		require.Equal(t, f, g)
	}
	require.Equal(t, "application/spdx+json", FormatSPDXJSON.MediaType())
	require.Equal(t, "application/vnd.cyclonedx+json", FormatCycloneDXJSON.MediaType())

	// An empty inventory (an image with nothing inventoried) is a valid
	// document of the image alone.
	for _, k := range documentKinds {
		doc, err := Generate(inv, good, k.format, k.opts)
		require.NoError(t, err)
		validate(t, k.schema, doc)
	}
}
