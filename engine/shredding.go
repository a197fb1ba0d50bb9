package engine

// Crypto-shredding: blobs whose every wrap is under a destroyed key can
// never be read again, and are removed.

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/index"
)

// destroyedKeys returns the canonical names of the destroyed keys. It
// fails, rather than guess, if a provider cannot be reached.
func (e *Engine) destroyedKeys(ctx context.Context) (map[string]bool, error) {
	infos, err := e.keys.Keys(ctx)
	if err != nil {
		return nil, keyErr(err)
	}
	out := map[string]bool{}
	for _, k := range infos {
		if k.State == crypt.KeyDestroyed {
			out[crypt.CanonicalKeyName(k.Name)] = true
		}
	}
	return out, nil
}

func shredded(rec *index.Blob, destroyed map[string]bool) bool {
	if len(rec.Wraps) == 0 {
		return false
	}
	for _, w := range rec.Wraps {
		if !destroyed[crypt.CanonicalKeyName(w.KeyID)] {
			return false
		}
	}
	return true
}

// ShreddedBlobs calls fn with the digest of every blob that only
// destroyed keys wrap: its bytes can never be read again. gc removes
// them (SweepShredded, or RemoveShreddedBlob for each) whatever still
// references them. A key whose state cannot be learned (its provider is
// unreachable) is never taken for destroyed: then ShreddedBlobs fails.
func (e *Engine) ShreddedBlobs(ctx context.Context, fn func(digest.Digest) error) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	destroyed, err := e.destroyedKeys(ctx)
	if err != nil || len(destroyed) == 0 {
		return err
	}
	var ds []digest.Digest
	err = e.db.WalkBlobs(func(rec *index.Blob) error {
		if shredded(rec, destroyed) {
			ds = append(ds, rec.Digest)
		}
		return ctx.Err()
	})
	if err != nil {
		return storageErr(err)
	}
	for _, d := range ds {
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

// RemoveShreddedBlob removes blob d, record and file, if only destroyed
// keys wrap it, checking again under the digest's lock (a push may have
// replaced it meanwhile). It reports whether it removed it. Links and
// manifests that name d are left to gc: reads through them fail with
// ErrBlobUnknown.
func (e *Engine) RemoveShreddedBlob(ctx context.Context, d digest.Digest) (bool, error) {
	if err := e.checkOpen(); err != nil {
		return false, err
	}
	destroyed, err := e.destroyedKeys(ctx)
	if err != nil {
		return false, err
	}
	unlock := e.digestLocks.Lock(digestKey(d))
	defer unlock()
	rec, err := e.db.Blob(d)
	if errors.Is(err, index.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, storageErr(err)
	}
	if !shredded(rec, destroyed) {
		return false, nil
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.DeleteBlob(d); err != nil {
		return false, storageErr(err)
	}
	if err := b.Commit(true); err != nil {
		return false, storageErr(err)
	}
	if err := e.blobs.Delete(ctx, d); err != nil {
		e.log.Warn("removing shredded blob file", "blob", d, "err", err)
	}
	e.log.Info("shredded blob removed", "blob", d)
	return true, nil
}

// SweepShredded removes every shredded blob (see ShreddedBlobs) and
// returns how many it removed. DestroyKey runs it; gc should run it at
// each collection.
func (e *Engine) SweepShredded(ctx context.Context) (int, error) {
	var ds []digest.Digest
	if err := e.ShreddedBlobs(ctx, func(d digest.Digest) error { ds = append(ds, d); return nil }); err != nil {
		return 0, err
	}
	n := 0
	for _, d := range ds {
		ok, err := e.RemoveShreddedBlob(ctx, d)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}
