package oci

import (
	"context"
	"io"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
)

// Blobs is the role of the store that holds a repository's blobs.
type Blobs interface {
	PutBlob(ctx context.Context, repo string, r io.Reader, expected digest.Digest) (engine.Descriptor, error)
	StatBlob(ctx context.Context, repo string, d digest.Digest) (engine.Descriptor, error)
	OpenBlob(ctx context.Context, repo string, d digest.Digest) (engine.BlobReader, error)
	MountBlob(ctx context.Context, repo, from string, d digest.Digest) (engine.Descriptor, error)
	LinkedRepositories(ctx context.Context, d digest.Digest, fn func(repo string) error) error
	DeleteBlob(ctx context.Context, repo string, d digest.Digest) error
}

// UploadSessions is the role of the store that keeps resumable upload
// sessions.
type UploadSessions interface {
	BeginUpload(ctx context.Context, repo string) (engine.Upload, error)
	ResumeUpload(ctx context.Context, repo, id string) (engine.Upload, error)
}

// Manifests is the role of the store that holds manifests and tags.
type Manifests interface {
	PutManifest(ctx context.Context, repo, reference, mediaType string, payload []byte, tags ...string) (engine.PutManifestResult, error)
	GetManifest(ctx context.Context, repo, reference string) (*engine.Manifest, error)
	StatManifest(ctx context.Context, repo, reference string) (engine.Descriptor, error)
	DeleteManifest(ctx context.Context, repo string, d digest.Digest) error
	DeleteTag(ctx context.Context, repo, tag string) error
}

// Listings is the role of the store that lists tags, repositories and
// referrers.
type Listings interface {
	ListTags(ctx context.Context, repo, last string, n int) ([]string, error)
	ListRepositories(ctx context.Context, last string, n int) ([]string, error)
	Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]engine.Referrer, error)
}

// Store is every role the OCI API needs; *engine.Engine has them all.
type Store interface {
	Blobs
	UploadSessions
	Manifests
	Listings
}

var _ Store = (*engine.Engine)(nil)

// Authenticator answers who an OCI API request comes from, by its basic
// credentials, and whether authentication is on at all
// (*auth.Authenticator).
type Authenticator interface {
	Basic(r *http.Request, maybeAnonymousPull bool) (engine.Principal, error)
	Enabled() bool
}

// Filler fills a repository that is a pull-through cache from its
// upstream when a pull by who misses (*pullthrough.Cache), if who may
// import into it; for any other repository it does nothing (nil, and
// the store answers).
type Filler interface {
	// FillManifest returns the upstream's manifest to answer with (it is
	// stored in the background), or nil when the store answers.
	FillManifest(ctx context.Context, who engine.Principal, repo, ref string) (*engine.Manifest, error)
	// StreamBlob returns the upstream's bytes of a blob to answer with as
	// they arrive (size -1 when unknown; a read error means the answer
	// must be cut), or nil when the store answers.
	StreamBlob(ctx context.Context, who engine.Principal, repo string, d digest.Digest) (io.ReadCloser, int64, error)
	// FillBlob returns once the blob is stored (or the store answers).
	FillBlob(ctx context.Context, who engine.Principal, repo string, d digest.Digest) error
}
