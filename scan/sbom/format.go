package sbom

import (
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/scan"
)

// ErrInvalid is returned for input a document cannot be written from:
// no inventory, an image without a repository or a valid digest, no
// creation time, an unknown format or CycloneDX version.
var ErrInvalid = errors.New("sbom: invalid input")

// Media types of the documents, which are also the artifact types of
// their OCI referrers.
const (
	// MediaTypeSPDXJSON is the media type of an SPDX JSON document.
	MediaTypeSPDXJSON = "application/spdx+json"
	// MediaTypeCycloneDXJSON is the media type of a CycloneDX JSON document.
	MediaTypeCycloneDXJSON = "application/vnd.cyclonedx+json"
)

// Format is a document format.
type Format string

// Formats.
const (
	// FormatSPDXJSON is SPDX 2.3 in JSON.
	FormatSPDXJSON Format = "spdx-json"
	// FormatCycloneDXJSON is CycloneDX (1.6 unless Options.CycloneDXVersion
	// says 1.5) in JSON.
	FormatCycloneDXJSON Format = "cyclonedx-json"
)

// Formats lists the formats, as ParseFormat accepts them.
var Formats = []Format{FormatSPDXJSON, FormatCycloneDXJSON}

// ParseFormat returns the format named s ("spdx-json", "cyclonedx-json").
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("%w: unknown format %q (want spdx-json or cyclonedx-json)", ErrInvalid, s)
}

// MediaType returns the media type of documents of the format, "" for an
// unknown format.
func (f Format) MediaType() string {
	switch f {
	case FormatSPDXJSON:
		return MediaTypeSPDXJSON
	case FormatCycloneDXJSON:
		return MediaTypeCycloneDXJSON
	}
	return ""
}

// FileName returns the file name a document of the format is given in
// its referrer artifact ("sbom.spdx.json", "sbom.cdx.json"), "" for an
// unknown format.
func (f Format) FileName() string {
	switch f {
	case FormatSPDXJSON:
		return "sbom.spdx.json"
	case FormatCycloneDXJSON:
		return "sbom.cdx.json"
	}
	return ""
}

// CycloneDX versions Berth writes.
const (
	CycloneDX15 = "1.5"
	CycloneDX16 = "1.6"
)

// Image identifies the image a document describes. The caller states
// everything, the time included, so that a document is a function of its
// input.
type Image struct {
	// Repository is the repository's name ("team/app"). Required.
	Repository string
	// Digest is the digest of the image's manifest (or index). Required.
	Digest digest.Digest
	// Registry is the registry's host[:port], when known: the package URL
	// of the image then carries it as repository_url.
	Registry string
	// Tags are the image's tags, if any.
	Tags []string
	// Created is the time the document states it was created. Required.
	Created time.Time
}

// Options tune a document. The zero value writes CycloneDX 1.6 and
// names the tool "berth" without a version.
type Options struct {
	// ToolVersion is Berth's version, named with the tool in the document.
	ToolVersion string
	// CycloneDXVersion is CycloneDX15 or CycloneDX16 (the default).
	CycloneDXVersion string
	// Namespace is the base URI of SPDX document namespaces, typically the
	// registry's URL ("https://registry.example.com/spdx"). Each document's
	// namespace is Namespace/REPOSITORY/DIGEST. Default
	// "https://spdx.org/spdxdocs/berth".
	Namespace string
}

// Generate writes the document of the given format describing the image
// whose inventory is inv.
func Generate(inv *scan.Inventory, img Image, format Format, opts Options) ([]byte, error) {
	switch format {
	case FormatSPDXJSON:
		return SPDXJSON(inv, img, opts)
	case FormatCycloneDXJSON:
		return CycloneDXJSON(inv, img, opts)
	}
	return nil, fmt.Errorf("%w: unknown format %q (want spdx-json or cyclonedx-json)", ErrInvalid, format)
}

// check refuses input no document can be written from.
func check(inv *scan.Inventory, img Image) error {
	switch {
	case inv == nil:
		return fmt.Errorf("%w: no inventory", ErrInvalid)
	case img.Repository == "":
		return fmt.Errorf("%w: the image has no repository", ErrInvalid)
	case img.Created.IsZero():
		return fmt.Errorf("%w: no creation time", ErrInvalid)
	}
	if err := img.Digest.Validate(); err != nil {
		return fmt.Errorf("%w: the image's digest %q: %v", ErrInvalid, img.Digest, err)
	}
	return nil
}

// timestamp is the document's creation time as both formats write it.
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func toolName(opts Options) string {
	if opts.ToolVersion == "" {
		return "berth"
	}
	return "berth-" + opts.ToolVersion
}
