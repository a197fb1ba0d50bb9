// Package manifest validates manifests: what PutManifest accepts, and
// what it learns from a manifest (the blobs and child manifests it
// references, its subject, artifact type and annotations). Errors wrap
// the engine's sentinel errors (package errdefs).
//
// Accepted media types:
//
//	application/vnd.oci.image.manifest.v1+json             OCI image manifest (and OCI 1.1 artifacts)
//	application/vnd.oci.image.index.v1+json                OCI image index
//	application/vnd.docker.distribution.manifest.v2+json   Docker schema 2 manifest
//	application/vnd.docker.distribution.manifest.list.v2+json  Docker manifest list
//
// Decisions, each after the OCI image and distribution specs:
//
//   - Docker schema 1 (…manifest.v1+json, …v1+prettyjws, or a payload with
//     schemaVersion 1) is a format Berth knows and deliberately refuses:
//     errdefs.ErrUnsupported (UNSUPPORTED). It is deprecated, signed with keys no
//     one checks, and removed from Docker since 2019.
//   - Any other media type is errdefs.ErrManifestInvalid (MANIFEST_INVALID), as the
//     distribution spec's manifest checks and the reference registry do:
//     an artifact is an OCI image manifest with an artifactType, not a
//     manifest of its own media type.
//   - The Content-Type given (parameters ignored) and the payload's
//     mediaType field must agree when both are present. With no
//     Content-Type, the payload's mediaType is used; an OCI payload without
//     one is an index if it has "manifests", an image manifest if it has
//     "config" (both or neither: invalid). Docker payloads must carry
//     their mediaType, as Docker's own schema requires.
//   - An image manifest must not have "manifests", an index must not have
//     "config" or "layers" (the image spec's guard against a manifest that
//     reads as two different things).
//   - "config" (image) and "layers" (image) / "manifests" (index) are
//     required, as the specs say; an empty array is fine (OCI 1.1 artifacts).
//   - Layers that carry "urls" (Docker foreign layers, OCI non-distributable
//     layers, or any layer the client says can be fetched elsewhere) are not
//     required to be in the registry: they are listed in Foreign, not Blobs.
//     Their URLs must be absolute http or https URLs.
//   - A descriptor's embedded "data" (OCI 1.1), when present, must match its
//     size and digest.
//   - artifactType is the manifest's artifactType, else, for image
//     manifests, config.mediaType (what the referrers API reports).
package manifest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berthstore/berth/engine/internal/errdefs"
	"github.com/berthstore/berth/engine/internal/reference"
)

// Manifest media types the engine knows besides the OCI ones in ocispec.
const (
	MediaTypeDockerManifest       = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList   = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerSchema1        = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Signed  = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	maxDescriptorMediaTypeSection = 127 // RFC 6838 limit on type and subtype names
)

// Descriptor identifies content a manifest references: its media type,
// digest and size, checked.
type Descriptor struct {
	MediaType string
	Digest    digest.Digest
	Size      int64
}

// IsIndex reports whether mt is an index or manifest list.
func IsIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

// IsManifest reports whether mt is one of the four accepted
// manifest media types.
func IsManifest(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
		MediaTypeDockerManifest, MediaTypeDockerManifestList:
		return true
	}
	return false
}

// Child is one entry of an index or manifest list.
type Child struct {
	Descriptor
	// Platform is the entry's platform, nil when it has none.
	Platform *ocispec.Platform
	// ArtifactType is the entry's artifactType, if any.
	ArtifactType string
	// Annotations are the entry's annotations.
	Annotations map[string]string
}

// Parsed is what Parse learns from a valid manifest.
type Parsed struct {
	// MediaType is the manifest's media type: the Content-Type given, or
	// the one found in (or inferred from) the payload.
	MediaType string
	// Index is true for indexes and manifest lists.
	Index bool
	// Config is the image manifest's config descriptor (nil for indexes).
	Config *Descriptor
	// Blobs are the blobs the repository must hold: config then layers,
	// each once, in manifest order. Empty for indexes.
	Blobs []Descriptor
	// Foreign are layers with "urls": not required in the registry.
	Foreign []Descriptor
	// Children are the entries of an index or manifest list, in order.
	Children []Child
	// Subject is the subject's digest (OCI 1.1 referrers), or "".
	Subject digest.Digest
	// SubjectDescriptor is the full subject descriptor, nil if none.
	SubjectDescriptor *Descriptor
	// ArtifactType is the artifactType, else config.mediaType for image
	// manifests, else "".
	ArtifactType string
	// Annotations are the manifest's own annotations.
	Annotations map[string]string
}

// rawDescriptor is a descriptor as it appears in a payload; pointers tell
// a missing field from a zero one.
type rawDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         *int64            `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Data         []byte            `json:"data,omitempty"`
	Platform     *ocispec.Platform `json:"platform,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
}

// rawManifest holds the fields of every accepted manifest type.
type rawManifest struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *rawDescriptor    `json:"config"`
	Layers        *[]rawDescriptor  `json:"layers"`
	Manifests     *[]rawDescriptor  `json:"manifests"`
	Subject       *rawDescriptor    `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// Parse validates payload as a manifest of type mediaType (the
// request's Content-Type; "" to take it from the payload) and returns what
// it references. Errors wrap errdefs.ErrManifestInvalid, errdefs.ErrUnsupported (schema
// 1) or errdefs.ErrTooLarge (len(payload) > maxSize, when maxSize > 0).
func Parse(mediaType string, payload []byte, maxSize int64) (*Parsed, error) {
	if maxSize > 0 && int64(len(payload)) > maxSize {
		return nil, fmt.Errorf("%w: manifest of %d bytes, limit %d", errdefs.ErrTooLarge, len(payload), maxSize)
	}
	ct := normalizeMediaType(mediaType)
	if isSchema1(ct) {
		return nil, fmt.Errorf("%w: Docker schema 1 manifests (%s) are not accepted; push schema 2 or OCI", errdefs.ErrUnsupported, ct)
	}
	if ct != "" && !IsManifest(ct) {
		return nil, fmt.Errorf("%w: unknown manifest media type %q", errdefs.ErrManifestInvalid, errdefs.Truncate(ct))
	}
	if len(payload) == 0 {
		return nil, fmt.Errorf("%w: empty payload", errdefs.ErrManifestInvalid)
	}
	var raw rawManifest
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, fmt.Errorf("%w: not well-formed JSON: %v", errdefs.ErrManifestInvalid, err)
	}
	if raw.SchemaVersion == nil {
		return nil, fmt.Errorf("%w: schemaVersion missing", errdefs.ErrManifestInvalid)
	}
	if *raw.SchemaVersion == 1 || isSchema1(raw.MediaType) {
		return nil, fmt.Errorf("%w: Docker schema 1 manifests are not accepted; push schema 2 or OCI", errdefs.ErrUnsupported)
	}
	if *raw.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: schemaVersion %d, want 2", errdefs.ErrManifestInvalid, *raw.SchemaVersion)
	}

	mt, err := resolveManifestMediaType(ct, &raw)
	if err != nil {
		return nil, err
	}
	p := &Parsed{MediaType: mt, Index: IsIndex(mt), Annotations: raw.Annotations}

	if raw.ArtifactType != "" {
		if !validMediaType(raw.ArtifactType) {
			return nil, fmt.Errorf("%w: artifactType %q is not a media type", errdefs.ErrManifestInvalid, errdefs.Truncate(raw.ArtifactType))
		}
		p.ArtifactType = raw.ArtifactType
	}
	if raw.Subject != nil {
		d, err := checkDescriptor("subject", raw.Subject)
		if err != nil {
			return nil, err
		}
		p.Subject = d.Digest
		p.SubjectDescriptor = &d
	}

	if p.Index {
		err = p.fillIndex(&raw)
	} else {
		err = p.fillImage(&raw)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// resolveManifestMediaType checks the Content-Type ct against the
// payload's mediaType field and returns the manifest's media type.
func resolveManifestMediaType(ct string, raw *rawManifest) (string, error) {
	pm := raw.MediaType
	switch {
	case ct != "" && pm != "" && pm != ct:
		return "", fmt.Errorf("%w: mediaType field %q does not match Content-Type %q", errdefs.ErrManifestInvalid, errdefs.Truncate(pm), ct)
	case ct != "":
		// Docker's schemas make the mediaType field mandatory.
		if (ct == MediaTypeDockerManifest || ct == MediaTypeDockerManifestList) && pm == "" {
			return "", fmt.Errorf("%w: mediaType field missing (required for %s)", errdefs.ErrManifestInvalid, ct)
		}
		return ct, nil
	case pm != "":
		if !IsManifest(pm) {
			return "", fmt.Errorf("%w: unknown manifest media type %q", errdefs.ErrManifestInvalid, errdefs.Truncate(pm))
		}
		return pm, nil
	}
	// No media type anywhere: an OCI manifest or index, told by its fields.
	hasManifests := raw.Manifests != nil
	hasImage := raw.Config != nil || raw.Layers != nil
	switch {
	case hasManifests && !hasImage:
		return ocispec.MediaTypeImageIndex, nil
	case hasImage && !hasManifests:
		return ocispec.MediaTypeImageManifest, nil
	case hasImage && hasManifests:
		return "", fmt.Errorf("%w: no mediaType, and both manifests and config/layers present", errdefs.ErrManifestInvalid)
	default:
		return "", fmt.Errorf("%w: no mediaType, and neither manifests nor config/layers present", errdefs.ErrManifestInvalid)
	}
}

// fillImage validates an image manifest's config and layers.
func (p *Parsed) fillImage(raw *rawManifest) error {
	if raw.Manifests != nil {
		return fmt.Errorf("%w: manifests field in an image manifest (%s)", errdefs.ErrManifestInvalid, p.MediaType)
	}
	if raw.Config == nil {
		return fmt.Errorf("%w: config missing", errdefs.ErrManifestInvalid)
	}
	if raw.Layers == nil {
		return fmt.Errorf("%w: layers missing", errdefs.ErrManifestInvalid)
	}
	cfg, err := checkDescriptor("config", raw.Config)
	if err != nil {
		return err
	}
	if len(raw.Config.URLs) > 0 {
		return fmt.Errorf("%w: config: urls are not allowed on a config", errdefs.ErrManifestInvalid)
	}
	p.Config = &cfg
	layers := *raw.Layers
	p.Blobs = make([]Descriptor, 0, 1+len(layers))
	p.Blobs = append(p.Blobs, cfg)
	seen := map[digest.Digest]bool{cfg.Digest: true}
	for i := range layers {
		field := fmt.Sprintf("layers[%d]", i)
		d, err := checkDescriptor(field, &layers[i])
		if err != nil {
			return err
		}
		if len(layers[i].URLs) > 0 {
			if err := checkURLs(field, layers[i].URLs); err != nil {
				return err
			}
			p.Foreign = append(p.Foreign, d)
			continue
		}
		if !seen[d.Digest] {
			seen[d.Digest] = true
			p.Blobs = append(p.Blobs, d)
		}
	}
	if p.ArtifactType == "" {
		p.ArtifactType = cfg.MediaType
	}
	return nil
}

// fillIndex validates an index's or manifest list's entries.
func (p *Parsed) fillIndex(raw *rawManifest) error {
	if raw.Config != nil || raw.Layers != nil {
		return fmt.Errorf("%w: config or layers field in an index (%s)", errdefs.ErrManifestInvalid, p.MediaType)
	}
	if raw.Manifests == nil {
		return fmt.Errorf("%w: manifests missing", errdefs.ErrManifestInvalid)
	}
	entries := *raw.Manifests
	p.Children = make([]Child, 0, len(entries))
	for i := range entries {
		field := fmt.Sprintf("manifests[%d]", i)
		e := &entries[i]
		d, err := checkDescriptor(field, e)
		if err != nil {
			return err
		}
		if len(e.URLs) > 0 {
			return fmt.Errorf("%w: %s: urls are not allowed on a manifest entry", errdefs.ErrManifestInvalid, field)
		}
		if e.Platform != nil && (e.Platform.OS == "" || e.Platform.Architecture == "") {
			return fmt.Errorf("%w: %s.platform: os and architecture are required", errdefs.ErrManifestInvalid, field)
		}
		if e.ArtifactType != "" && !validMediaType(e.ArtifactType) {
			return fmt.Errorf("%w: %s.artifactType %q is not a media type", errdefs.ErrManifestInvalid, field, errdefs.Truncate(e.ArtifactType))
		}
		p.Children = append(p.Children, Child{
			Descriptor:   d,
			Platform:     e.Platform,
			ArtifactType: e.ArtifactType,
			Annotations:  e.Annotations,
		})
	}
	return nil
}

// checkDescriptor validates one descriptor found at field.
func checkDescriptor(field string, r *rawDescriptor) (Descriptor, error) {
	if r.MediaType == "" {
		return Descriptor{}, fmt.Errorf("%w: %s.mediaType missing", errdefs.ErrManifestInvalid, field)
	}
	if !validMediaType(r.MediaType) {
		return Descriptor{}, fmt.Errorf("%w: %s.mediaType %q is not a media type", errdefs.ErrManifestInvalid, field, errdefs.Truncate(r.MediaType))
	}
	if r.Digest == "" {
		return Descriptor{}, fmt.Errorf("%w: %s.digest missing", errdefs.ErrManifestInvalid, field)
	}
	d, err := reference.ParseDigest(r.Digest)
	if err != nil {
		return Descriptor{}, fmt.Errorf("%w: %s.digest: %v", errdefs.ErrManifestInvalid, field, err)
	}
	if r.Size == nil {
		return Descriptor{}, fmt.Errorf("%w: %s.size missing", errdefs.ErrManifestInvalid, field)
	}
	if *r.Size < 0 {
		return Descriptor{}, fmt.Errorf("%w: %s.size %d is negative", errdefs.ErrManifestInvalid, field, *r.Size)
	}
	if r.Data != nil {
		if int64(len(r.Data)) != *r.Size {
			return Descriptor{}, fmt.Errorf("%w: %s.data is %d bytes, size says %d", errdefs.ErrManifestInvalid, field, len(r.Data), *r.Size)
		}
		if d.Algorithm().FromBytes(r.Data) != d {
			return Descriptor{}, fmt.Errorf("%w: %s.data does not match digest %s", errdefs.ErrManifestInvalid, field, d)
		}
	}
	return Descriptor{MediaType: r.MediaType, Digest: d, Size: *r.Size}, nil
}

// checkURLs requires absolute http(s) URLs.
func checkURLs(field string, urls []string) error {
	for i, s := range urls {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: %s.urls[%d] %q is not an http(s) URL", errdefs.ErrManifestInvalid, field, i, errdefs.Truncate(s))
		}
	}
	return nil
}

// normalizeMediaType lower-cases a Content-Type and drops its parameters.
func normalizeMediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

func isSchema1(mt string) bool {
	return mt == MediaTypeDockerSchema1 || mt == MediaTypeDockerSchema1Signed
}

// validMediaType checks the type/subtype part of a media type against RFC
// 6838 (restricted-name); parameters after ';' are allowed and not checked.
func validMediaType(mt string) bool {
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimRight(mt[:i], " ")
	}
	slash := strings.IndexByte(mt, '/')
	if slash < 0 {
		return false
	}
	return validRestrictedName(mt[:slash]) && validRestrictedName(mt[slash+1:])
}

func isAlnum(b byte) bool {
	return ('a' <= b && b <= 'z') || ('A' <= b && b <= 'Z') || ('0' <= b && b <= '9')
}

// validRestrictedName: restricted-name-first *126restricted-name-chars.
func validRestrictedName(s string) bool {
	if s == "" || len(s) > maxDescriptorMediaTypeSection || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		b := s[i]
		if isAlnum(b) {
			continue
		}
		switch b {
		case '!', '#', '$', '&', '-', '^', '_', '.', '+':
			continue
		}
		return false
	}
	return true
}
