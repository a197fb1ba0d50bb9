package index

// Lifecycle policy previews and the engine's schedule state: values the
// engine owns (versioned records of its own), kept here under their keys
// (keys.go, docs/keys.md).
//
// A repository has at most one preview: its header (p 0 <repo>) and one
// key per image the preview lists (q 0 <repo> 0 <digest>), in digest
// order, so that a page of results is one short range scan however many
// images the preview lists.

import (
	"fmt"

	digest "github.com/opencontainers/go-digest"
)

// previewKey is the key of repo's preview header.
func previewKey(repo string) ([]byte, error) {
	if err := checkPart("repository", repo); err != nil {
		return nil, err
	}
	return makeKey(prefixPreview, repo), nil
}

// PutPreview writes repo's preview header; value is opaque.
func (b *Batch) PutPreview(repo string, value []byte) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := previewKey(repo)
	if err != nil {
		return err
	}
	return b.set(k, encodeOpaque(value))
}

// DeletePreview deletes repo's preview: its header and every result.
func (b *Batch) DeletePreview(repo string) error {
	if err := b.DeletePreviewResults(repo); err != nil {
		return err
	}
	k, err := previewKey(repo)
	if err != nil {
		return err
	}
	return b.del(k)
}

// DeletePreviewResults deletes every result of repo's preview (one range
// deletion) and leaves its header.
func (b *Batch) DeletePreviewResults(repo string) error {
	if err := b.check(); err != nil {
		return err
	}
	if err := checkPart("repository", repo); err != nil {
		return err
	}
	lo := spanPrefix(prefixPreviewResult, repo)
	if err := b.b.delRange(lo, upperBound(lo)); err != nil {
		return fmt.Errorf("index: batch delete range: %w", err)
	}
	return nil
}

// PutPreviewResult writes the result of image d in repo's preview; value
// is opaque.
func (b *Batch) PutPreviewResult(repo string, d digest.Digest, value []byte) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := previewResultKey(repo, d)
	if err != nil {
		return err
	}
	return b.set(k, encodeOpaque(value))
}

// Preview returns repo's preview header (ErrNotFound when it has none).
func (db *DB) Preview(repo string) ([]byte, error) {
	k, err := previewKey(repo)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = db.get(k, func(v []byte) error {
		out, err = decodeOpaque(prefixPreview, v)
		return err
	})
	if err != nil {
		return nil, named(err, "lifecycle preview of %s", repo)
	}
	return out, nil
}

// ListPreviews calls fn with every preview header, in repository order.
// io.EOF from fn stops the listing early with a nil result.
func (db *DB) ListPreviews(fn func(repo string, value []byte) error) error {
	return db.listOpaque(prefixPreview, fn)
}

// PreviewResults calls fn with the results of repo's preview in digest
// order, starting after the digest after ("" for the first). io.EOF from
// fn stops early with a nil result.
func (db *DB) PreviewResults(repo string, after digest.Digest, fn func(d digest.Digest, value []byte) error) error {
	if err := checkPart("repository", repo); err != nil {
		return err
	}
	lo := spanPrefix(prefixPreviewResult, repo)
	var start []byte
	if after != "" {
		start = afterKey(append(append([]byte{}, lo...), after...))
	}
	return db.scan(lo, start, func(k, v []byte) (bool, error) {
		d := digest.Digest(k[len(lo):])
		val, err := decodeOpaque(prefixPreviewResult, v)
		if err != nil {
			return false, named(err, "lifecycle preview result %s@%s", repo, d)
		}
		return callFn(fn(d, val))
	})
}

// PreviewResult returns the result of image d in repo's preview
// (ErrNotFound when the preview does not list it).
func (db *DB) PreviewResult(repo string, d digest.Digest) ([]byte, error) {
	k, err := previewResultKey(repo, d)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = db.get(k, func(v []byte) error {
		out, err = decodeOpaque(prefixPreviewResult, v)
		return err
	})
	if err != nil {
		return nil, named(err, "lifecycle preview result %s@%s", repo, d)
	}
	return out, nil
}

// PutSchedule writes the state of the engine's schedule name; value is
// opaque.
func (b *Batch) PutSchedule(name string, value []byte) error {
	return b.putOpaque(prefixSchedule, name, value)
}

// Schedule returns the state of the engine's schedule name (ErrNotFound
// when it has none).
func (db *DB) Schedule(name string) ([]byte, error) { return db.opaque(prefixSchedule, name) }
