// Package sbom writes software bills of materials of an image from its
// scan.Inventory: SPDX 2.3 JSON (with github.com/spdx/tools-golang) and
// CycloneDX 1.5 or 1.6 JSON (with github.com/CycloneDX/cyclonedx-go),
// each package named by its package URL (github.com/package-url/packageurl-go)
// and its license as an SPDX expression where it is one. It also packs an
// SBOM as an OCI referrer artifact of its image, for a registry to store
// beside the image and `oras discover` to find.
//
// Like scan, it is pure: it reads nothing, stores nothing and fetches
// nothing. The output depends only on its input: packages are ordered,
// identifiers are derived from the image and the packages, and the time
// a document states is the one the caller gives.
package sbom
