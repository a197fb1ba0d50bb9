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
// replaced it meanwhile), with every record derived from its plaintext:
// its links, its layer table of contents (the file list of the layer),
// its derived record, and its seekable derivative (the layer's
// uncompressed tar) when only destroyed keys wrap that too. It reports
// whether it removed d. Manifests that name d stay: reads of d through
// them fail with ErrBlobUnknown. docs/crypto.md lists what stays.
func (e *Engine) RemoveShreddedBlob(ctx context.Context, d digest.Digest) (bool, error) {
	if err := e.checkOpen(); err != nil {
		return false, err
	}
	destroyed, err := e.destroyedKeys(ctx)
	if err != nil {
		return false, err
	}
	n, err := e.removeShreddedAndDerived(ctx, d, destroyed)
	return n > 0, err
}

// removeShreddedAndDerived removes blob d if it is shredded, then its
// derivative if that is shredded too; it returns how many blobs it
// removed.
func (e *Engine) removeShreddedAndDerived(ctx context.Context, d digest.Digest, destroyed map[string]bool) (int, error) {
	removed, derived, err := e.removeShredded(ctx, d, destroyed)
	if err != nil || !removed {
		return 0, err
	}
	if derived == "" {
		return 1, nil
	}
	also, _, err := e.removeShredded(ctx, derived, destroyed)
	if also {
		return 2, err
	}
	return 1, err
}

// removeShredded removes blob d and its layer records, under d's lock,
// if it is shredded; derived is the seekable derivative it had, if any.
func (e *Engine) removeShredded(ctx context.Context, d digest.Digest, destroyed map[string]bool) (removed bool, derived digest.Digest, err error) {
	unlock := e.digestLocks.Lock(digestKey(d))
	defer unlock()
	rec, err := e.db.Blob(d)
	if errors.Is(err, index.ErrNotFound) {
		return false, "", nil
	}
	if err != nil {
		return false, "", storageErr(err)
	}
	if !shredded(rec, destroyed) {
		return false, "", nil
	}
	derived, err = e.db.LayerDerived(d)
	if errors.Is(err, index.ErrNotFound) {
		derived, err = "", nil
	}
	if err != nil {
		return false, "", storageErr(err)
	}
	var repos []string
	err = e.db.LinkedRepositories(d, func(repo string) error { repos = append(repos, repo); return nil })
	if err != nil {
		return false, "", storageErr(err)
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.DeleteBlob(d); err != nil {
		return false, "", storageErr(err)
	}
	// Its links (found through the reverse link index): a link to a
	// record that is gone would stay dangling, since gc sweeps only what
	// has a record.
	for _, repo := range repos {
		if err := b.DeleteLink(repo, d); err != nil {
			return false, "", storageErr(err)
		}
	}
	// The layer's table of contents and derived record (no-ops when it
	// has none).
	if err := b.DeleteLayerTOC(d); err != nil {
		return false, "", storageErr(err)
	}
	if err := b.Commit(true); err != nil {
		return false, "", storageErr(err)
	}
	if err := e.deleteBlobFiles(ctx, d); err != nil {
		e.log.Warn("removing shredded blob file", "blob", d, "err", err)
	}
	e.log.Info("shredded blob removed", "blob", d, "derived", derived)
	return true, derived, nil
}

// SweepLayerRecords removes the layer records (tables of contents and
// derived records) of blobs the store no longer holds: those a
// shredding left before the shred sweep removed them too, or a table
// built while its layer was swept. With dryRun it only counts them. gc
// runs it at each collection.
func (e *Engine) SweepLayerRecords(ctx context.Context, dryRun bool) (int, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	seen := map[digest.Digest]bool{}
	var orphans []digest.Digest
	check := func(layer digest.Digest) error {
		if seen[layer] {
			return nil
		}
		seen[layer] = true
		if _, err := e.db.Blob(layer); errors.Is(err, index.ErrNotFound) {
			orphans = append(orphans, layer)
		} else if err != nil {
			return err
		}
		return ctx.Err()
	}
	if err := e.db.WalkLayerTOCs(check); err != nil {
		return 0, storageErr(err)
	}
	if err := e.db.WalkLayerDerived(func(layer, _ digest.Digest) error { return check(layer) }); err != nil {
		return 0, storageErr(err)
	}
	if dryRun {
		return len(orphans), nil
	}
	n := 0
	for _, layer := range orphans {
		ok, err := e.removeLayerRecords(layer)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// removeLayerRecords removes layer's table of contents and derived
// record if the store holds no blob layer, checked under its lock.
func (e *Engine) removeLayerRecords(layer digest.Digest) (bool, error) {
	unlock := e.digestLocks.Lock(digestKey(layer))
	defer unlock()
	if _, err := e.db.Blob(layer); !errors.Is(err, index.ErrNotFound) {
		return false, storageErr(err)
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.DeleteLayerTOC(layer); err != nil {
		return false, storageErr(err)
	}
	if err := b.Commit(true); err != nil {
		return false, storageErr(err)
	}
	return true, nil
}

// SweepShredded removes every shredded blob (see ShreddedBlobs), with
// the records derived from it (see RemoveShreddedBlob), and returns how
// many blobs it removed. DestroyKey runs it; gc runs it at each
// collection.
func (e *Engine) SweepShredded(ctx context.Context) (int, error) {
	var ds []digest.Digest
	if err := e.ShreddedBlobs(ctx, func(d digest.Digest) error { ds = append(ds, d); return nil }); err != nil {
		return 0, err
	}
	if len(ds) == 0 {
		return 0, nil
	}
	destroyed, err := e.destroyedKeys(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range ds {
		k, err := e.removeShreddedAndDerived(ctx, d, destroyed)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
