package server

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
)

// Store is the part of *engine.Engine that the HTTP server uses. It
// exists so that tests can drive the handler with an in-memory fake; the
// daemon always passes an *engine.Engine.
type Store interface {
	BeginUpload(ctx context.Context, repo string) (engine.Upload, error)
	ResumeUpload(ctx context.Context, repo, id string) (engine.Upload, error)
	PutBlob(ctx context.Context, repo string, r io.Reader, expected digest.Digest) (engine.Descriptor, error)
	StatBlob(ctx context.Context, repo string, d digest.Digest) (engine.Descriptor, error)
	OpenBlob(ctx context.Context, repo string, d digest.Digest) (engine.BlobReader, error)
	MountBlob(ctx context.Context, repo, from string, d digest.Digest) (engine.Descriptor, error)
	DeleteBlob(ctx context.Context, repo string, d digest.Digest) error
	PutManifest(ctx context.Context, repo, reference, mediaType string, payload []byte, tags ...string) (engine.PutManifestResult, error)
	GetManifest(ctx context.Context, repo, reference string) (*engine.Manifest, error)
	StatManifest(ctx context.Context, repo, reference string) (engine.Descriptor, error)
	DeleteManifest(ctx context.Context, repo string, d digest.Digest) error
	DeleteTag(ctx context.Context, repo, tag string) error
	ListTags(ctx context.Context, repo, last string, n int) ([]string, error)
	ListRepositories(ctx context.Context, last string, n int) ([]string, error)
	Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]engine.Referrer, error)
}

var _ Store = (*engine.Engine)(nil)
