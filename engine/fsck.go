package engine

// Fsck: a consistency check of the whole store (gc.Fsck), with the
// store's keys to re-verify sealed blobs.

import (
	"context"
	"errors"
	"io"

	"github.com/berthstore/berth/gc"
	"github.com/berthstore/berth/index"
)

// Fsck checks the store (gc.Fsck), unsealing blobs with the store's keys
// when opts.Verify asks for their digests to be re-verified.
func (e *Engine) Fsck(ctx context.Context, opts gc.FsckOptions) (*gc.FsckReport, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	opts.AllowSparse = opts.AllowSparse || e.opts.AllowSparse
	cfg := gc.FsckConfig{DB: e.db, Blobs: e.blobs, Logger: e.log, OpenBlob: e.openBlobAnyKey}
	return gc.Fsck(ctx, cfg, opts)
}

// openBlobAnyKey opens a blob through whichever of its wraps unwraps.
func (e *Engine) openBlobAnyKey(ctx context.Context, rec *index.Blob) (io.ReadCloser, error) {
	var dk []byte
	if len(rec.Wraps) > 0 {
		var errs []error
		for _, w := range rec.Wraps {
			k, err := e.blobDataKey(ctx, rec, w.KeyID)
			if err == nil {
				dk = k
				break
			}
			errs = append(errs, err)
		}
		if dk == nil {
			return nil, errors.Join(errs...)
		}
	}
	r, err := e.blobs.Open(ctx, rec.Digest, dk)
	if err != nil {
		return nil, blobErr(err)
	}
	return r, nil
}
