package index

import (
	"fmt"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Repository is the record of one repository.
type Repository struct {
	// Name is the repository name (the key; not stored in the value).
	Name string
	// CreatedAt is when the repository was created.
	CreatedAt time.Time
	// Settings is opaque JSON owned by the engine (mutability, encryption,
	// policies, ...).
	Settings []byte
}

// Manifest is the record of one manifest in one repository: its metadata
// and its bytes, so that a manifest GET reads no file.
type Manifest struct {
	// Repo is the repository (part of the key).
	Repo string
	// Digest is the manifest digest (part of the key).
	Digest digest.Digest
	// MediaType is the manifest media type.
	MediaType string
	// ArtifactType is the OCI 1.1 artifactType (or the config media type the
	// engine derived it from), empty if none.
	ArtifactType string
	// Subject is the OCI 1.1 subject digest, empty if none.
	Subject digest.Digest
	// PushedAt is when the manifest was pushed.
	PushedAt time.Time
	// LastPulledAt is when the manifest was last pulled (zero if never).
	LastPulledAt time.Time
	// Blobs are the config and layer digests the manifest references.
	Blobs []digest.Digest
	// Children are the child manifests of an index.
	Children []digest.Digest
	// Annotations are the manifest annotations.
	Annotations map[string]string
	// Payload is the manifest bytes as pushed. Nil when read through
	// ManifestMeta, ListManifests or WalkManifests.
	Payload []byte
	// PayloadSize is len(Payload), also set when the payload is not read
	// (filled on decode; not stored separately).
	PayloadSize int64
	// Status is the image's storage status: active (pullable), archived,
	// or activating (being restored from the archive).
	Status ImageStatus
	// LastArchivedAt is when the image was last archived (zero if never).
	LastArchivedAt time.Time
	// LastActivatedAt is when it was last restored from the archive (zero
	// if never).
	LastActivatedAt time.Time
}

// ImageStatus is a manifest's storage status (ECR's imageStatus).
type ImageStatus uint8

// The image statuses. The zero value is active, so that every record
// written before the archive tier reads as active.
const (
	StatusActive ImageStatus = iota
	StatusArchived
	StatusActivating
)

// String returns ECR's name of the status.
func (s ImageStatus) String() string {
	switch s {
	case StatusActive:
		return "ACTIVE"
	case StatusArchived:
		return "ARCHIVED"
	case StatusActivating:
		return "ACTIVATING"
	}
	return fmt.Sprintf("ImageStatus(%d)", uint8(s))
}

// Tier is the blob store holding a blob's file.
type Tier uint8

// The tiers. The zero value is the hot store, so that every record
// written before the archive tier reads as hot.
const (
	// TierHot is the store's own blob directory (<data>/blobs).
	TierHot Tier = iota
	// TierArchive is the archive directory (recompressed at a high zstd
	// level, still sealed under the blob's data key).
	TierArchive
)

// String names the tier.
func (t Tier) String() string {
	switch t {
	case TierHot:
		return "hot"
	case TierArchive:
		return "archive"
	}
	return fmt.Sprintf("Tier(%d)", uint8(t))
}

// KeyWrap is one wrap of a blob's data key by a key-encryption key.
type KeyWrap struct {
	// KeyID names the key-encryption key.
	KeyID string
	// Version is the version of that key used to wrap.
	Version uint32
	// Wrapped is the wrapped data key.
	Wrapped []byte
}

// Blob is the record of one stored blob (one per store, whatever the number
// of repositories linking it).
type Blob struct {
	// Digest is the digest of the bytes as pushed (the key).
	Digest digest.Digest
	// Size is the logical size in bytes.
	Size int64
	// StoredSize is the size of the stored file.
	StoredSize int64
	// CreatedAt is when the blob was committed.
	CreatedAt time.Time
	// Wraps are the wraps of the blob's data key, one per key-encryption key.
	Wraps []KeyWrap
	// FileID identifies the blob's file in the blob store (opaque).
	FileID []byte
	// Tier is the blob store that holds the file.
	Tier Tier
}

// Referrer is one OCI 1.1 referrer of a subject manifest in a repository.
type Referrer struct {
	// Subject is the digest of the manifest referred to (part of the key).
	Subject digest.Digest
	// Digest is the digest of the referring manifest (part of the key).
	Digest digest.Digest
	// MediaType is the referring manifest's media type.
	MediaType string
	// ArtifactType is the referring manifest's artifact type.
	ArtifactType string
	// Size is the size of the referring manifest in bytes.
	Size int64
	// Annotations are the referring manifest's annotations.
	Annotations map[string]string
}

// Upload is the record of one upload session.
type Upload struct {
	// ID is the upload id (the key).
	ID string
	// Repo is the repository the upload was started in.
	Repo string
	// StartedAt is when the upload started.
	StartedAt time.Time
	// UpdatedAt is when the upload last received data.
	UpdatedAt time.Time
	// State is opaque writer state owned by the engine (offsets, hash state).
	State []byte
}

// TierJobKind is what a tier job does.
type TierJobKind uint8

// The tier jobs.
const (
	// JobArchive moves the blobs of archived manifests that no active
	// image needs to the archive tier.
	JobArchive TierJobKind = iota + 1
	// JobRestore brings the blobs of activating manifests back to the hot
	// tier, then makes the manifests active.
	JobRestore
)

// String names the kind.
func (k TierJobKind) String() string {
	switch k {
	case JobArchive:
		return "archive"
	case JobRestore:
		return "restore"
	}
	return fmt.Sprintf("TierJobKind(%d)", uint8(k))
}

// TierJob is a durable job of the archive tier: the manifests of one
// image (the image, its index children and its referrers) whose blobs
// move between tiers. It is written in the batch that changes their
// status and deleted in the batch that finishes the job, so that a crash
// in between leaves it to be done again.
type TierJob struct {
	// Repo and Digest name the image the job is for (the key).
	Repo   string
	Digest digest.Digest
	// Kind is what the job does.
	Kind TierJobKind
	// Manifests are the manifests of the repository whose blobs move
	// (the image's own digest among them).
	Manifests []digest.Digest
	// CreatedAt is when the job was written.
	CreatedAt time.Time
}
