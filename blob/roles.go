package blob

import (
	"context"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

// The blob store's roles, each a small interface, composed into Backend.
// Store implements them over a directory of files; another backend (an
// object store, say) implements the same roles and runs the same
// conformance suite, blob/blobtest.
//
// An ingest's life: Ingester.NewWriter starts an upload under a caller's
// id; Ingest.Write (or ReadFrom) appends bytes, hashing them as they
// arrive; Ingest.Checkpoint makes what was written durable and returns a
// WriterState, which the caller keeps; after a restart
// Ingester.ResumeWriter continues from that state (bytes written after it
// are gone). Ingest.Commit checks the size and digest and makes the blob
// visible to Provider.Open, Statter.Stat and Walker.Walk under its digest;
// a refused Commit leaves the upload open, to be cancelled or corrected.
// Ingest.Cancel removes the upload; Ingest.Close keeps it for a resume.
// IngestManager lists the uploads left behind and removes them.

// Content reads one committed blob. Every byte it returns has been
// authenticated (sealed blobs) or checksummed (plain ones); a stored blob
// that fails its checks reads as ErrCorrupt, never as other bytes. ReadAt
// is safe for concurrent use and writes nothing outside the buffer it is
// given; Read, Seek and WriteTo share one position.
type Content interface {
	io.ReaderAt
	io.ReadSeeker
	io.WriterTo
	io.Closer
	// Size is the blob's length in bytes.
	Size() int64
	// Digest is the blob's digest.
	Digest() digest.Digest
}

// Ingest is one upload in progress, used by one goroutine at a time.
// After its first failure it returns that failure forever; after Commit,
// Cancel or Close it returns ErrWriterClosed (Cancel and Close again: nil).
type Ingest interface {
	io.Writer
	io.ReaderFrom
	// Size is the number of bytes written so far.
	Size() int64
	// Checkpoint makes every byte written so far durable and returns the
	// state a resume continues from.
	Checkpoint(ctx context.Context) (WriterState, error)
	// Commit checks size (when >= 0) and expected, then makes the blob
	// readable under expected. Refused: ErrSizeMismatch, ErrDigestMismatch.
	Commit(ctx context.Context, expected digest.Digest, size int64) (Info, error)
	// Cancel abandons the upload and removes what it stored.
	Cancel() error
	// Close releases the upload and keeps what its last Checkpoint made
	// durable.
	Close() error
}

// Provider opens committed blobs for reading. dataKey is the blob's data
// key; a sealed blob opened without one is ErrKeyRequired, and a plain
// blob opened with one is ErrCorrupt (a sealed blob was expected).
type Provider[C Content] interface {
	Open(ctx context.Context, d digest.Digest, dataKey []byte) (C, error)
}

// Ingester starts uploads and resumes them from a checkpoint.
type Ingester[I Ingest] interface {
	NewWriter(ctx context.Context, id string, o WriterOptions) (I, error)
	ResumeWriter(ctx context.Context, id string, st WriterState, o WriterOptions) (I, error)
}

// IngestManager lists the uploads in progress, tells when each was last
// written (ErrNotFound for an id with nothing stored), and removes them.
type IngestManager interface {
	Uploads(ctx context.Context) ([]string, error)
	UploadModTime(ctx context.Context, id string) (time.Time, error)
	RemoveUpload(id string) error
}

// Statter describes a committed blob without opening it for reading.
type Statter interface {
	Stat(ctx context.Context, d digest.Digest) (Info, error)
}

// Deleter removes committed blobs; a missing blob is ErrNotFound.
type Deleter interface {
	Delete(ctx context.Context, d digest.Digest) error
}

// Walker lists the committed blobs, in no particular order; fn's error
// stops the walk and is returned.
type Walker interface {
	Walk(ctx context.Context, fn func(d digest.Digest, storedSize int64) error) error
}

// Inventory is the roles a collector and a checker use: what is stored,
// when it was written, and removing it. They never read blob contents
// through it (a checker that verifies digests is given an opener), so
// gc and fsck run over any backend.
type Inventory interface {
	Statter
	Deleter
	Walker
	IngestManager
}

// Backend is every role of a blob store together.
type Backend[C Content, I Ingest] interface {
	Provider[C]
	Ingester[I]
	IngestManager
	Statter
	Deleter
	Walker
}

var (
	_ Backend[*Reader, *Writer] = (*Store)(nil)
	_ Inventory                 = (*Store)(nil)
	_ Content                   = (*Reader)(nil)
	_ Ingest                    = (*Writer)(nil)
)
