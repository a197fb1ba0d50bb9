package sbom

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Referrer is an SBOM packed as an OCI artifact that refers to its image
// (image-spec 1.1: an image manifest with an artifactType and a subject),
// as `oras attach` packs one: the registry lists it among the image's
// referrers, and `oras discover` finds it by its artifact type.
//
// To store it, push the blobs (Config with ConfigData, Layer with SBOM)
// and then Manifest by its digest (Descriptor.Digest) with the media
// type Descriptor.MediaType.
type Referrer struct {
	// Manifest is the artifact's image manifest, as pushed.
	Manifest []byte
	// Descriptor describes Manifest: media type, digest, size, the
	// artifact type and the manifest's annotations, as a referrers list
	// carries them.
	Descriptor ocispec.Descriptor
	// Config is the empty config (application/vnd.oci.empty.v1+json) the
	// image-spec asks of an artifact without one; ConfigData is its blob.
	Config     ocispec.Descriptor
	ConfigData []byte
	// Layer describes the SBOM's blob, with its file name as title.
	Layer ocispec.Descriptor
	// SBOM is the document, the layer's blob.
	SBOM []byte
}

// NewReferrer packs doc, a document of the given format, as an artifact
// referring to subject, the image's manifest (its media type, digest and
// size as stored). created is the time the manifest's
// org.opencontainers.image.created annotation states, from the caller so
// that the same input gives the same manifest.
func NewReferrer(doc []byte, format Format, subject ocispec.Descriptor, created time.Time) (*Referrer, error) {
	mt := format.MediaType()
	switch {
	case mt == "":
		return nil, fmt.Errorf("%w: unknown format %q", ErrInvalid, format)
	case len(doc) == 0:
		return nil, fmt.Errorf("%w: an empty document", ErrInvalid)
	case subject.MediaType == "":
		return nil, fmt.Errorf("%w: the subject has no media type", ErrInvalid)
	case subject.Size <= 0:
		return nil, fmt.Errorf("%w: the subject's size %d", ErrInvalid, subject.Size)
	case created.IsZero():
		return nil, fmt.Errorf("%w: no creation time", ErrInvalid)
	}
	if err := subject.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%w: the subject's digest %q: %v", ErrInvalid, subject.Digest, err)
	}
	layer := ocispec.Descriptor{
		MediaType:   mt,
		Digest:      digest.FromBytes(doc),
		Size:        int64(len(doc)),
		Annotations: map[string]string{ocispec.AnnotationTitle: format.FileName()},
	}
	// The empty config, without the data it could carry inline: the blob
	// is pushed.
	config := ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: ocispec.DescriptorEmptyJSON.Digest, Size: ocispec.DescriptorEmptyJSON.Size}
	annotations := map[string]string{ocispec.AnnotationCreated: timestamp(created)}
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: mt,
		Config:       config,
		Layers:       []ocispec.Descriptor{layer},
		Subject: &ocispec.Descriptor{
			MediaType: subject.MediaType,
			Digest:    subject.Digest,
			Size:      subject.Size,
		},
		Annotations: annotations,
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &Referrer{
		Manifest: b,
		Descriptor: ocispec.Descriptor{
			MediaType:    ocispec.MediaTypeImageManifest,
			Digest:       digest.FromBytes(b),
			Size:         int64(len(b)),
			ArtifactType: mt,
			Annotations:  annotations,
		},
		Config:     config,
		ConfigData: append([]byte(nil), ocispec.DescriptorEmptyJSON.Data...),
		Layer:      layer,
		SBOM:       doc,
	}, nil
}
