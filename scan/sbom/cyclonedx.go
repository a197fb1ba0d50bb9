package sbom

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/berthstore/berth/scan"
)

// bom-refs of the document's fixed components.
const (
	cdxImageRef = "image"
	cdxOSRef    = "operating-system"
)

// Property names Berth gives components, in its own namespace as the
// CycloneDX property taxonomy asks.
const (
	PropertyTag           = "berth:image:tag"              // a tag of the image (one property per tag)
	PropertySourceName    = "berth:package:source-name"    // the source package of an OS package
	PropertySourceVersion = "berth:package:source-version" // the source package's version, when it differs
	PropertyEcosystem     = "berth:package:ecosystem"      // the OSV ecosystem of the package's advisories
)

// cycloneDXVersion maps Options.CycloneDXVersion to the library's.
func cycloneDXVersion(opts Options) (cdx.SpecVersion, error) {
	switch opts.CycloneDXVersion {
	case "", CycloneDX16:
		return cdx.SpecVersion1_6, nil
	case CycloneDX15:
		return cdx.SpecVersion1_5, nil
	}
	return 0, fmt.Errorf("%w: CycloneDX version %q (want 1.5 or 1.6)", ErrInvalid, opts.CycloneDXVersion)
}

// CycloneDX returns the CycloneDX BOM describing the image whose
// inventory is inv, for the version opts asks (its specVersion and
// $schema are set when it is encoded, by CycloneDXJSON). The metadata's
// component is the image (type container, its package URL pkg:oci/...,
// its tags as properties); the components are the operating system
// (type operating-system) and every package (type library, with its
// package URL as purl and bom-ref, its license as an SPDX expression or
// by name, the paths it was found at as evidence occurrences). The
// dependencies say the image holds the operating system and the
// language packages, and the operating system its packages.
func CycloneDX(inv *scan.Inventory, img Image, opts Options) (*cdx.BOM, error) {
	if err := check(inv, img); err != nil {
		return nil, err
	}
	sv, err := cycloneDXVersion(opts)
	if err != nil {
		return nil, err
	}
	bom := cdx.NewBOM()
	bom.SpecVersion = sv
	bom.SerialNumber = "urn:uuid:" + nameUUID(fmt.Sprintf("%s@%s %s %s", img.Repository, img.Digest, timestamp(img.Created), sv))
	image := cdx.Component{
		BOMRef:     cdxImageRef,
		Type:       cdx.ComponentTypeContainer,
		Name:       img.Repository,
		Version:    img.Digest.String(),
		PackageURL: ImageURL(img),
	}
	if len(img.Tags) > 0 {
		var props []cdx.Property
		for _, t := range sortedCopy(img.Tags) {
			props = append(props, cdx.Property{Name: PropertyTag, Value: t})
		}
		image.Properties = &props
	}
	tool := cdx.Component{Type: cdx.ComponentTypeApplication, Name: "berth", Version: opts.ToolVersion}
	bom.Metadata = &cdx.Metadata{
		Timestamp: timestamp(img.Created),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{tool}},
		Component: &image,
	}

	comps := []cdx.Component{}
	imageDeps, osDeps := []string{}, []string{}
	osRef := ""
	if inv.OS != nil {
		osRef = cdxOSRef
		comps = append(comps, cdx.Component{
			BOMRef:      cdxOSRef,
			Type:        cdx.ComponentTypeOS,
			Name:        inv.OS.ID,
			Version:     inv.OS.VersionID,
			Description: inv.OS.PrettyName,
		})
		imageDeps = append(imageDeps, cdxOSRef)
	}
	for _, c := range components(inv) {
		comp := cdx.Component{
			BOMRef:     c.purl,
			Type:       cdx.ComponentTypeLibrary,
			Name:       c.pkg.Name,
			Version:    c.pkg.Version,
			PackageURL: c.purl,
			Licenses:   cdxLicenses(c.license),
		}
		switch c.pkg.Kind {
		case scan.KindMaven:
			comp.Group, comp.Name = splitLast(c.pkg.Name, ":")
		case scan.KindNPM:
			if strings.HasPrefix(c.pkg.Name, "@") {
				comp.Group, comp.Name = splitLast(c.pkg.Name, "/")
			}
		}
		var props []cdx.Property
		if c.pkg.Ecosystem != "" {
			props = append(props, cdx.Property{Name: PropertyEcosystem, Value: c.pkg.Ecosystem})
		}
		if c.pkg.SourceName != "" {
			props = append(props, cdx.Property{Name: PropertySourceName, Value: c.pkg.SourceName})
		}
		if c.pkg.SourceVersion != "" {
			props = append(props, cdx.Property{Name: PropertySourceVersion, Value: c.pkg.SourceVersion})
		}
		if len(props) > 0 {
			comp.Properties = &props
		}
		if len(c.locations) > 0 {
			occ := make([]cdx.EvidenceOccurrence, len(c.locations))
			for i, l := range c.locations {
				occ[i] = cdx.EvidenceOccurrence{Location: l}
			}
			comp.Evidence = &cdx.Evidence{Occurrences: &occ}
		}
		comps = append(comps, comp)
		if c.isOS() && osRef != "" {
			osDeps = append(osDeps, c.purl)
		} else {
			imageDeps = append(imageDeps, c.purl)
		}
	}
	bom.Components = &comps
	deps := []cdx.Dependency{{Ref: cdxImageRef, Dependencies: &imageDeps}}
	if osRef != "" {
		deps = append(deps, cdx.Dependency{Ref: osRef, Dependencies: &osDeps})
	}
	bom.Dependencies = &deps
	return bom, nil
}

// CycloneDXJSON returns the CycloneDX BOM of the image as JSON of the
// version opts asks, indented by two spaces.
func CycloneDXJSON(inv *scan.Inventory, img Image, opts Options) ([]byte, error) {
	bom, err := CycloneDX(inv, img, opts)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).SetPretty(true).SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, bom.SpecVersion); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// cdxLicenses is a package's license as CycloneDX states it: an SPDX
// expression, or a license by name when the recorded text is not one;
// nil when none is recorded. Expressions (rather than license ids) keep
// the document valid whatever identifiers a newer SPDX license list
// adds, which the schema's enumeration of ids would refuse.
func cdxLicenses(license string) *cdx.Licenses {
	if license == "" {
		return nil
	}
	if expr, ok := spdxExpression(license); ok {
		return &cdx.Licenses{{Expression: expr}}
	}
	return &cdx.Licenses{{License: &cdx.License{Name: license}}}
}

// nameUUID is the name-based (SHA-1, version 5) UUID of name in the URL
// namespace (RFC 9562, section 5.5): the same name, the same UUID.
func nameUUID(name string) string {
	ns := [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
