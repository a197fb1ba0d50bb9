package engine

// Temporary: methods whose bodies are being written. Each moves to its own
// file when implemented; this file must be empty (deleted) before landing.

import (
	"context"
	"errors"
	"io"

	"github.com/opencontainers/go-digest"
)

var errTODO = errors.New("engine: not implemented yet")

// Options configure a store. The zero value is valid: see EnsureDefaults.
type Options struct {
	// FrameSize is the logical size of a blob frame. Default 1 MiB.
	FrameSize int
	// DisableEncryption stores new blobs unsealed (integrity-checked by
	// CRC only). Default false: envelope encryption on, as in ECR.
	DisableEncryption bool
	// DisableCompression stores every frame raw. Default false: zstd
	// where it pays.
	DisableCompression bool
	// MaxBlobSize bounds one blob. Default 52,000 MiB (ECR's layer limit).
	MaxBlobSize int64
	// MaxManifestSize bounds one manifest. Default 4 MiB.
	MaxManifestSize int64
	// CreateOnPush creates a repository on push with default settings
	// when no creation template with CREATE_ON_PUSH matches its name.
	// Default false: ECR behaviour (NAME_UNKNOWN).
	CreateOnPush bool
}

// Engine is an open store. It is safe for concurrent use.
type Engine struct{}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts *Options) (*Engine, error) { return nil, errTODO }

// Close flushes and closes the store. Open uploads stay resumable.
func (e *Engine) Close() error { return errTODO }

// CreateRepository creates a repository with the given settings.
func (e *Engine) CreateRepository(ctx context.Context, name string, s RepositorySettings) (*Repository, error) {
	return nil, errTODO
}

// Repository returns a repository's description.
func (e *Engine) Repository(ctx context.Context, name string) (*Repository, error) {
	return nil, errTODO
}

// DeleteRepository deletes a repository; with force, its images too.
func (e *Engine) DeleteRepository(ctx context.Context, name string, force bool) error { return errTODO }

// ListRepositories lists up to n repository names after last, in lexical order (n <= 0: all).
func (e *Engine) ListRepositories(ctx context.Context, last string, n int) ([]string, error) {
	return nil, errTODO
}

// SetTagMutability changes a repository's tag mutability setting.
func (e *Engine) SetTagMutability(ctx context.Context, name, mutability string, exclusions []TagFilter) error {
	return errTODO
}

// PutCreationTemplate creates or replaces a repository creation template.
func (e *Engine) PutCreationTemplate(ctx context.Context, t CreationTemplate) error { return errTODO }

// DeleteCreationTemplate deletes the template with this prefix.
func (e *Engine) DeleteCreationTemplate(ctx context.Context, prefix string) error { return errTODO }

// CreationTemplates lists the templates, in prefix order.
func (e *Engine) CreationTemplates(ctx context.Context) ([]CreationTemplate, error) {
	return nil, errTODO
}

// BeginUpload starts an upload session into repo, creating the repository
// on push if a template allows it.
func (e *Engine) BeginUpload(ctx context.Context, repo string) (Upload, error) { return nil, errTODO }

// ResumeUpload returns the session id of repo, reopening it after a restart.
func (e *Engine) ResumeUpload(ctx context.Context, repo, id string) (Upload, error) {
	return nil, errTODO
}

// PutBlob stores the content of r as one blob in repo, verifying expected
// (which may be "" to accept whatever digest the content has).
func (e *Engine) PutBlob(ctx context.Context, repo string, r io.Reader, expected digest.Digest) (Descriptor, error) {
	return Descriptor{}, errTODO
}

// StatBlob describes a blob linked to repo.
func (e *Engine) StatBlob(ctx context.Context, repo string, d digest.Digest) (Descriptor, error) {
	return Descriptor{}, errTODO
}

// OpenBlob opens a blob linked to repo for reading.
func (e *Engine) OpenBlob(ctx context.Context, repo string, d digest.Digest) (BlobReader, error) {
	return nil, errTODO
}

// MountBlob links blob d, which repository from holds, into repo without
// copying it. With from == "", any copy in the store will do (the caller
// has proved possession some other way, e.g. by pushing it before).
func (e *Engine) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (Descriptor, error) {
	return Descriptor{}, errTODO
}

// DeleteBlob unlinks blob d from repo. The bytes go at the next gc when
// no repository links them.
func (e *Engine) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error { return errTODO }

// PutManifest validates and stores a manifest under reference (a tag or
// its digest) and under every extra tag.
func (e *Engine) PutManifest(ctx context.Context, repo, reference, mediaType string, payload []byte, tags ...string) (PutManifestResult, error) {
	return PutManifestResult{}, errTODO
}

// GetManifest returns the manifest that reference (tag or digest) names.
func (e *Engine) GetManifest(ctx context.Context, repo, reference string) (*Manifest, error) {
	return nil, errTODO
}

// StatManifest is GetManifest without the payload's use: it returns the
// descriptor only (a HEAD request).
func (e *Engine) StatManifest(ctx context.Context, repo, reference string) (Descriptor, error) {
	return Descriptor{}, errTODO
}

// DeleteManifest deletes manifest d and every tag that points to it.
func (e *Engine) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error { return errTODO }

// DeleteTag removes one tag; the manifest stays.
func (e *Engine) DeleteTag(ctx context.Context, repo, tag string) error { return errTODO }

// ListTags lists up to n tags of repo after last, in lexical order (n <= 0: all).
func (e *Engine) ListTags(ctx context.Context, repo, last string, n int) ([]string, error) {
	return nil, errTODO
}

// Referrers lists the manifests in repo whose subject is d, filtered by
// artifactType when it is not "".
func (e *Engine) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]Referrer, error) {
	return nil, errTODO
}
