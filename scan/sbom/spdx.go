package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/berthstore/berth/scan"
)

// DefaultNamespace is the base of SPDX document namespaces when
// Options.Namespace is empty.
const DefaultNamespace = "https://spdx.org/spdxdocs/berth"

// SPDX identifiers of the document's fixed elements.
const (
	spdxImageID common.ElementID = "Image"
	spdxOSID    common.ElementID = "OperatingSystem"
)

const noAssertion = "NOASSERTION"

// SPDX returns the SPDX 2.3 document describing the image whose
// inventory is inv. The document DESCRIBES one package, the image
// (purpose CONTAINER, its package URL pkg:oci/...), which CONTAINS the
// operating system (purpose OPERATING_SYSTEM, as SPDX JSON spells it) and the language
// packages; the operating system CONTAINS its packages. Each package
// carries its package URL as a PACKAGE-MANAGER reference, its license
// as licenseDeclared (an SPDX expression, or a LicenseRef with the text
// recorded in hasExtractedLicensingInfos; NOASSERTION where the database
// records none) and where it was found as sourceInfo.
func SPDX(inv *scan.Inventory, img Image, opts Options) (*spdx.Document, error) {
	if err := check(inv, img); err != nil {
		return nil, err
	}
	ns := opts.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      img.Repository + "@" + img.Digest.String(),
		DocumentNamespace: strings.TrimSuffix(ns, "/") + "/" + img.Repository + "/" + img.Digest.Algorithm().String() + "-" + img.Digest.Encoded(),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: toolName(opts)}},
			Created:  timestamp(img.Created),
		},
	}
	image := &spdx.Package{
		PackageName:             img.Repository,
		PackageSPDXIdentifier:   spdxImageID,
		PackageVersion:          img.Digest.String(),
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "CONTAINER",
		PackageExternalReferences: []*spdx.PackageExternalReference{{
			Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL, Locator: ImageURL(img),
		}},
	}
	if len(img.Tags) > 0 {
		image.PackageComment = "tags: " + strings.Join(sortedCopy(img.Tags), ", ")
	}
	doc.Packages = append(doc.Packages, image)
	doc.Relationships = append(doc.Relationships, relationship("DOCUMENT", common.TypeRelationshipDescribe, spdxImageID))

	osParent := spdxImageID
	if inv.OS != nil {
		doc.Packages = append(doc.Packages, &spdx.Package{
			PackageName:             inv.OS.ID,
			PackageSPDXIdentifier:   spdxOSID,
			PackageVersion:          inv.OS.VersionID,
			PackageDescription:      inv.OS.PrettyName,
			PackageDownloadLocation: noAssertion,
			PrimaryPackagePurpose:   "OPERATING_SYSTEM",
		})
		doc.Relationships = append(doc.Relationships, relationship(spdxImageID, common.TypeRelationshipContains, spdxOSID))
		osParent = spdxOSID
	}

	refs := newLicenseRefs()
	for _, c := range components(inv) {
		id := spdxPackageID(c)
		p := &spdx.Package{
			PackageName:             c.pkg.Name,
			PackageSPDXIdentifier:   id,
			PackageVersion:          c.pkg.Version,
			PackageDownloadLocation: noAssertion,
			PackageSourceInfo:       c.sourceInfo(),
			PackageLicenseConcluded: noAssertion,
			PackageLicenseDeclared:  noAssertion,
			PackageCopyrightText:    noAssertion,
			PrimaryPackagePurpose:   "LIBRARY",
			PackageExternalReferences: []*spdx.PackageExternalReference{{
				Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL, Locator: c.purl,
			}},
		}
		if c.license != "" {
			if expr, ok := spdxExpression(c.license); ok {
				p.PackageLicenseDeclared = expr
			} else {
				p.PackageLicenseDeclared = refs.ref(c.license)
			}
		}
		doc.Packages = append(doc.Packages, p)
		parent := spdxImageID
		if c.isOS() {
			parent = osParent
		}
		doc.Relationships = append(doc.Relationships, relationship(parent, common.TypeRelationshipContains, id))
	}
	for _, text := range refs.order {
		doc.OtherLicenses = append(doc.OtherLicenses, &spdx.OtherLicense{
			LicenseIdentifier: refs.byText[text],
			ExtractedText:     text,
			LicenseName:       text,
			LicenseComment:    "the license as the package database records it; not an SPDX license expression",
		})
	}
	return doc, nil
}

// SPDXJSON returns the SPDX 2.3 document of the image as JSON, indented
// by two spaces.
func SPDXJSON(inv *scan.Inventory, img Image, opts Options) ([]byte, error) {
	doc, err := SPDX(inv, img, opts)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := spdxjson.Write(doc, &buf, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// spdxPackageID is a package's SPDX identifier: Package-KIND-NAME-HASH,
// NAME reduced to the characters identifiers allow and HASH the first
// eight bytes of the package URL's SHA-256, which keeps identifiers
// unique and the same for the same package in every document.
func spdxPackageID(c *component) common.ElementID {
	sum := sha256.Sum256([]byte(c.purl))
	return common.ElementID("Package-" + idText(string(c.pkg.Kind)) + "-" + idText(c.pkg.Name) + "-" + hex.EncodeToString(sum[:8]))
}

func relationship(a common.ElementID, typ string, b common.ElementID) *spdx.Relationship {
	return &spdx.Relationship{
		RefA:         common.DocElementID{ElementRefID: a},
		RefB:         common.DocElementID{ElementRefID: b},
		Relationship: typ,
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	slices.Sort(out)
	return out
}
