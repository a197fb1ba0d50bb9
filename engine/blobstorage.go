package engine

// How a blob is stored: its logical size against the size of its file,
// for the console's layer table (compression ratios as stored).

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/index"
)

// BlobStorage describes how one blob of a repository is stored.
type BlobStorage struct {
	// Size is the blob's logical size (the bytes as pushed).
	Size int64
	// StoredSize is the size of its file: after zstd (where it paid) and
	// the encryption's overhead.
	StoredSize int64
	// Archived reports that the file is in the archive tier.
	Archived bool
}

// BlobStorage describes how blob d, linked to repo, is stored
// (ErrBlobUnknown when it is not linked to repo). It reads only the
// blob's record: no file is opened.
func (e *Engine) BlobStorage(ctx context.Context, repo string, d digest.Digest) (BlobStorage, error) {
	if err := e.checkOpen(); err != nil {
		return BlobStorage{}, err
	}
	rec, err := e.linkedBlob(ctx, repo, d)
	if err != nil {
		return BlobStorage{}, err
	}
	return BlobStorage{Size: rec.Size, StoredSize: rec.StoredSize, Archived: rec.Tier == index.TierArchive}, nil
}
