package engine

// The interfaces through which callers hold the engine's streams: a blob
// being read and an upload in progress. The Engine's methods live in one
// file per concept (repos.go, uploads.go, blobs.go, manifests.go, ...).

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"
)

// BlobReader reads one blob. It is safe for concurrent ReadAt calls;
// Read and Seek share one position and are not.
type BlobReader interface {
	io.Reader
	io.ReaderAt
	io.Seeker
	io.Closer
	// Size is the blob's length in bytes.
	Size() int64
	// Digest is the blob's digest.
	Digest() digest.Digest
}

// Upload is one blob upload session. Bytes are appended in order; a
// session survives a restart of the process (see ResumeUpload). An Upload
// is used by one goroutine at a time.
type Upload interface {
	// ID is the session's identifier, safe to put in a URL.
	ID() string
	// Repository is the repository the blob is pushed into.
	Repository() string
	// Size is the number of bytes appended so far.
	Size() int64
	// Write appends p.
	Write(p []byte) (int, error)
	// ReadFrom appends everything r yields.
	ReadFrom(r io.Reader) (int64, error)
	// Checkpoint makes every byte appended so far durable and records
	// the session's state, so that it resumes at Size() after a crash.
	Checkpoint(ctx context.Context) error
	// Commit verifies that the content has digest expected (and, if
	// size >= 0, that length), stores the blob, links it to the
	// repository and ends the session.
	Commit(ctx context.Context, expected digest.Digest, size int64) (Descriptor, error)
	// Cancel ends the session and removes what it wrote.
	Cancel(ctx context.Context) error
	// Close releases the in-memory handle after a Checkpoint; the session
	// stays resumable.
	Close() error
}
