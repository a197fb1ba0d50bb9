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
	"github.com/berthstore/berth/crypt"
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
func (e *Engine) linkedBlob(ctx context.Context, repo string, d digest.Digest) (*index.Blob, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, err
	}
	if _, err := ParseDigest(string(d)); err != nil {
		return nil, err
	}
	db := e.dbFor(ctx)
	ok, err := db.Linked(repo, d)
	if err != nil {
		return nil, storageErr(err)
	}
	if !ok {
		if _, err := e.cachedRepoState(repo); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s in %s", ErrBlobUnknown, d, repo)
	}
	rec, err := db.Blob(d)
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s in %s", ErrBlobUnknown, d, repo)
		}
		return nil, storageErr(err)
	}
	return rec, nil
}

// StatBlob describes a blob linked to repo. A blob in the archive tier
// (only archived images need it) fails with ErrBlobArchived, which wraps
// ErrBlobUnknown: a client pushing it uploads it again, and the upload
// brings it back to the hot tier.
func (e *Engine) StatBlob(ctx context.Context, repo string, d digest.Digest) (Descriptor, error) {
	rec, err := e.linkedBlob(ctx, repo, d)
	if err != nil {
		return Descriptor{}, err
	}
	if rec.Tier != index.TierHot {
		return Descriptor{}, blobArchivedErr(repo, d)
	}
	return Descriptor{Digest: d, Size: rec.Size, MediaType: "application/octet-stream"}, nil
}

// blobArchivedErr is the error a read of a blob in the archive tier gets.
func blobArchivedErr(repo string, d digest.Digest) error {
	return fmt.Errorf("%w: %s in %s is in the archive tier: only archived images use it; restore one with UpdateImageStorageClass to pull it",
		ErrBlobArchived, d, repo)
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
// its data key under the repository's key. A blob in the archive tier
// fails as StatBlob says.
func (e *Engine) OpenBlob(ctx context.Context, repo string, d digest.Digest) (BlobReader, error) {
	rec, err := e.linkedBlob(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	if rec.Tier != index.TierHot {
		return nil, blobArchivedErr(repo, d)
	}
	var dk []byte
	if len(rec.Wraps) > 0 {
		r, err := e.cachedRepoState(repo)
		if err != nil {
			return nil, err
		}
		if dk, err = e.blobDataKey(ctx, rec, r.kek); err != nil {
			return nil, err
		}
	}
	br, err := e.hot.Open(ctx, d, dk)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s: its file is missing", ErrCorrupt, d)
		}
		return nil, blobErr(err)
	}
	return blobReader{br}, nil
}

// MountBlob links blob d, which repository from holds, into repo without
// copying it (the OCI cross-repository mount). The blob must be linked to
// from and readable through from's key: its data key is unwrapped through
// from's wrap (no other) and wrapped under repo's key. A source that
// cannot give it (the blob not linked to from, from unknown, from's key
// disabled or destroyed) fails with ErrBlobUnknown, so that the caller
// uploads the blob instead; a source key that cannot be reached right now
// fails with ErrKeyUnavailable. The target repository is created on push
// if a template allows it.
//
// A mount from another repository fails with ErrBlobUnknown while the
// account setting BLOB_MOUNTING is DISABLED (PutAccountSetting).
//
// With from == "" there is no source: only a blob already linked to repo
// "mounts" (nothing changes); any other fails with ErrBlobUnknown, whether
// or not the store holds the digest elsewhere. A caller never reaches
// another repository's blob, nor learns that it exists, through MountBlob.
//
// Deciding whether the caller may read from is the caller's business
// (registryd asks for pull access on it first). A mount without a source
// that may use any repository the caller can read finds the candidates
// with LinkedRepositories and mounts from each, once allowed, as from.
func (e *Engine) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (Descriptor, error) {
	defer e.pushes.begin()()
	if err := e.checkOpen(); err != nil {
		return Descriptor{}, err
	}
	if _, err := ParseDigest(string(d)); err != nil {
		return Descriptor{}, err
	}
	if from == "" {
		desc, err := e.StatBlob(ctx, repo, d)
		if errors.Is(err, ErrNameUnknown) {
			return Descriptor{}, fmt.Errorf("%w: %s in %s (a mount without a source links only what the repository holds)", ErrBlobUnknown, d, repo)
		}
		return desc, err
	}
	if from != repo {
		mounting, err := e.blobMounting()
		if err != nil {
			return Descriptor{}, err
		}
		if !mounting {
			return Descriptor{}, fmt.Errorf("%w: %s: blob mounting is %s in this registry (account setting %s)",
				ErrBlobUnknown, d, BlobMountingDisabled, AccountSettingBlobMounting)
		}
	}
	rec, err := e.linkedBlob(ctx, from, d)
	if err != nil {
		if errors.Is(err, ErrNameUnknown) || errors.Is(err, ErrNameInvalid) {
			return Descriptor{}, fmt.Errorf("%w: %s: source %s: %w", ErrBlobUnknown, d, from, err)
		}
		return Descriptor{}, err
	}
	src, err := e.loadRepo(from)
	if err != nil {
		return Descriptor{}, fmt.Errorf("%w: %s: source %s: %w", ErrBlobUnknown, d, from, err)
	}
	if len(rec.Wraps) > 0 {
		// Checked before the target is created on push, and again (under
		// the digest's lock) when the wrap is made.
		if _, err := e.sourceDataKey(ctx, rec, from, src.kek); err != nil {
			return Descriptor{}, err
		}
	}
	r, _, err := e.ensureRepo(ctx, repo)
	if err != nil {
		return Descriptor{}, err
	}
	if err := refusePush(r); err != nil {
		return Descriptor{}, err
	}
	return e.linkBlob(ctx, r, d, func(rec *index.Blob) ([]byte, error) { return e.sourceDataKey(ctx, rec, from, src.kek) })
}

// LinkedRepositories calls fn with the name of every repository blob d
// is linked to, in lexical (byte) order, from the index's reverse link
// index (one short scan, whatever the number of repositories); io.EOF
// from fn stops the listing early with a nil result. It says nothing of
// whether a caller may read them, nor whether their keys can still read
// d: an embedder that serves callers asks the first (registryd's mount
// without "from" asks pull access on each, at most a few), and
// MountBlob with the repository as its source checks the second. fn runs
// while the index is being read: it must not call the Engine.
func (e *Engine) LinkedRepositories(ctx context.Context, d digest.Digest, fn func(repo string) error) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	if _, err := ParseDigest(string(d)); err != nil {
		return err
	}
	return storageErr(e.db.LinkedRepositories(d, fn))
}

// sourceDataKey is the data key of rec read through the key of the
// repository it is mounted from: ErrBlobUnknown when that key cannot give
// it for good (disabled, destroyed, no wrap under it), ErrKeyUnavailable
// when its provider cannot be reached right now.
func (e *Engine) sourceDataKey(ctx context.Context, rec *index.Blob, from, kek string) ([]byte, error) {
	dk, err := e.blobDataKey(ctx, rec, kek)
	if err == nil || errors.Is(err, crypt.ErrUnavailable) {
		return dk, err
	}
	return nil, fmt.Errorf("%w: %s cannot be read through source %s: %w", ErrBlobUnknown, rec.Digest, from, err)
}

// linkBlob links blob d into repository r, adding a wrap of its data key
// under r's key when it has none; dataKey gives the data key of the
// blob's record (read under d's lock), nil for a plain blob. A blob in
// the archive tier comes back to the hot tier first: a mounted blob
// reads.
func (e *Engine) linkBlob(ctx context.Context, r *repoState, d digest.Digest, dataKey func(*index.Blob) ([]byte, error)) (Descriptor, error) {
	unlock := e.digestLocks.Lock(digestKey(d))
	defer unlock()
	defer e.gcEnter()() // write barrier: see engine/gc.go and docs/gc.md
	e.shade(d)
	if err := e.ensureHotLocked(ctx, d); err != nil {
		return Descriptor{}, err
	}
	rec, err := e.db.Blob(d)
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return Descriptor{}, fmt.Errorf("%w: %s", ErrBlobUnknown, d)
		}
		return Descriptor{}, storageErr(err)
	}
	b := e.db.NewBatch()
	defer b.Close()
	if _, ok := findWrap(rec, r.kek); len(rec.Wraps) > 0 && !ok {
		dk, err := dataKey(rec)
		if err != nil {
			return Descriptor{}, err
		}
		nw, err := e.keys.Wrap(ctx, r.kek, dk, blobWrapAD(d))
		if err != nil {
			return Descriptor{}, keyErr(fmt.Errorf("blob %s: wrapping under %q: %w", d, r.kek, err))
		}
		rec.Wraps = append(rec.Wraps, toIndexWrap(nw))
		if err := b.PutBlob(rec); err != nil {
			return Descriptor{}, storageErr(err)
		}
	} else if len(rec.Wraps) > 0 {
		// The target's key wraps it already; the source must still be
		// able to give it (no mount through a shredded or disabled key).
		if _, err := dataKey(rec); err != nil {
			return Descriptor{}, err
		}
	}
	if err := b.PutLink(r.Name, d, e.now()); err != nil {
		return Descriptor{}, storageErr(err)
	}
	if err := e.putShades(b, d); err != nil {
		return Descriptor{}, err
	}
	if err := b.Commit(true); err != nil {
		return Descriptor{}, storageErr(err)
	}
	return Descriptor{Digest: d, Size: rec.Size, MediaType: "application/octet-stream"}, nil
}

// DeleteBlob unlinks blob d from repo. The bytes go at the next gc when
// no repository links them and no manifest needs them.
func (e *Engine) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	if _, err := e.linkedBlob(ctx, repo, d); err != nil {
		return err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.DeleteLink(repo, d); err != nil {
		return storageErr(err)
	}
	return storageErr(b.Commit(true))
}
