package engine

// Blobs: reading, mounting and unlinking them. Writing is an upload
// (uploads.go).

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/index"
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

// linkedBlob returns blob d's record if repo may read it.
func (e *Engine) linkedBlob(repo string, d digest.Digest) (*index.Blob, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, err
	}
	if _, err := ParseDigest(string(d)); err != nil {
		return nil, err
	}
	ok, err := e.db.Linked(repo, d)
	if err != nil {
		return nil, storageErr(err)
	}
	if !ok {
		if _, err := e.loadRepo(repo); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s in %s", ErrBlobUnknown, d, repo)
	}
	rec, err := e.db.Blob(d)
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s in %s", ErrBlobUnknown, d, repo)
		}
		return nil, storageErr(err)
	}
	return rec, nil
}

// StatBlob describes a blob linked to repo.
func (e *Engine) StatBlob(ctx context.Context, repo string, d digest.Digest) (Descriptor, error) {
	rec, err := e.linkedBlob(repo, d)
	if err != nil {
		return Descriptor{}, err
	}
	return Descriptor{Digest: d, Size: rec.Size, MediaType: "application/octet-stream"}, nil
}

// blobReader adapts blob.Reader to BlobReader with engine errors.
type blobReader struct{ *blob.Reader }

func (r blobReader) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	return n, readErr(err)
}

func (r blobReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.Reader.ReadAt(p, off)
	return n, readErr(err)
}

func (r blobReader) WriteTo(w io.Writer) (int64, error) {
	n, err := r.Reader.WriteTo(w)
	return n, readErr(err)
}

func readErr(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	return blobErr(err)
}

// OpenBlob opens a blob linked to repo for reading, through the wrap of
// its data key under the repository's key.
func (e *Engine) OpenBlob(ctx context.Context, repo string, d digest.Digest) (BlobReader, error) {
	rec, err := e.linkedBlob(repo, d)
	if err != nil {
		return nil, err
	}
	var dk []byte
	if len(rec.Wraps) > 0 {
		r, err := e.loadRepo(repo)
		if err != nil {
			return nil, err
		}
		if dk, err = e.blobDataKey(ctx, rec, r.kek); err != nil {
			return nil, err
		}
	}
	br, err := e.blobs.Open(ctx, d, dk)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s: its file is missing", ErrCorrupt, d)
		}
		return nil, blobErr(err)
	}
	return blobReader{br}, nil
}

// MountBlob links blob d, which repository from holds, into repo without
// copying it. With from == "", any copy in the store will do (the caller
// has proved possession some other way). The target repository is
// created on push if a template allows it.
func (e *Engine) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (Descriptor, error) {
	if err := e.checkOpen(); err != nil {
		return Descriptor{}, err
	}
	if _, err := ParseDigest(string(d)); err != nil {
		return Descriptor{}, err
	}
	if from != "" {
		if _, err := e.linkedBlob(from, d); err != nil {
			return Descriptor{}, err
		}
	}
	r, _, err := e.ensureRepo(ctx, repo)
	if err != nil {
		return Descriptor{}, err
	}
	unlock := e.digestLocks.Lock(digestKey(d))
	defer unlock()
	defer e.gcEnter()() // write barrier: see engine/gc.go and docs/gc.md
	e.shade(d)
	rec, err := e.db.Blob(d)
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return Descriptor{}, fmt.Errorf("%w: %s", ErrBlobUnknown, d)
		}
		return Descriptor{}, storageErr(err)
	}
	b := e.db.NewBatch()
	defer b.Close()
	changed, err := e.addWrap(ctx, rec, r.kek)
	if err != nil {
		return Descriptor{}, err
	}
	if changed {
		if err := b.PutBlob(rec); err != nil {
			return Descriptor{}, storageErr(err)
		}
	}
	if err := b.PutLink(repo, d, e.now()); err != nil {
		return Descriptor{}, storageErr(err)
	}
	if err := b.Commit(true); err != nil {
		return Descriptor{}, storageErr(err)
	}
	return Descriptor{Digest: d, Size: rec.Size, MediaType: "application/octet-stream"}, nil
}

// DeleteBlob unlinks blob d from repo. The bytes go at the next gc when
// no repository links them and no manifest needs them.
func (e *Engine) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	if _, err := e.linkedBlob(repo, d); err != nil {
		return err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.DeleteLink(repo, d); err != nil {
		return storageErr(err)
	}
	return storageErr(b.Commit(true))
}
