package index

import (
	"bytes"
	"fmt"

	digest "github.com/opencontainers/go-digest"
)

// Layer tables of contents and seekable derivatives (the FUSE view, see
// docs/fuse.md). Both are keyed by the layer's content digest, so they are
// store-wide and never stale: the same bytes always have the same table.
//
//	c 0 <layer digest> 0 <chunk, 8 hex digits>   TOC chunk (opaque, engine-owned)   Batch.PutLayerTOC
//	x 0 <layer digest>                           digest of the layer's uncompressed  Batch.PutLayerDerived
//	                                             tar stored as its own blob
//
// gc keeps a derived blob while its layer is marked (WalkLayerDerived /
// LayerDerived) and removes both records with the layer (DeleteLayerTOC).
const (
	prefixTOC     byte = 'c'
	prefixDerived byte = 'x'
)

// maxTOCChunks bounds the number of chunks of one table.
const maxTOCChunks = 1 << 24

func tocChunkKey(layer digest.Digest, n int) []byte {
	return makeKey(prefixTOC, string(layer), fmt.Sprintf("%08x", n))
}

func derivedKey(layer digest.Digest) ([]byte, error) {
	if err := checkDigest(layer); err != nil {
		return nil, err
	}
	return makeKey(prefixDerived, string(layer)), nil
}

// PutLayerTOC replaces the table of contents of layer with chunks, stored
// in order. The chunks are opaque to the index.
func (b *Batch) PutLayerTOC(layer digest.Digest, chunks [][]byte) error {
	if err := b.check(); err != nil {
		return err
	}
	if err := checkDigest(layer); err != nil {
		return err
	}
	if len(chunks) == 0 || len(chunks) > maxTOCChunks {
		return fmt.Errorf("index: toc of %s: %d chunks: %w", layer, len(chunks), ErrInvalidKey)
	}
	lo := spanPrefix(prefixTOC, string(layer))
	if err := b.b.delRange(lo, upperBound(lo)); err != nil {
		return fmt.Errorf("index: batch delete range: %w", err)
	}
	for i, c := range chunks {
		if err := b.set(tocChunkKey(layer, i), c); err != nil {
			return err
		}
	}
	return nil
}

// DeleteLayerTOC removes the table of contents of layer and its derived
// record (when the layer's blob is swept).
func (b *Batch) DeleteLayerTOC(layer digest.Digest) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := derivedKey(layer)
	if err != nil {
		return err
	}
	lo := spanPrefix(prefixTOC, string(layer))
	if err := b.b.delRange(lo, upperBound(lo)); err != nil {
		return fmt.Errorf("index: batch delete range: %w", err)
	}
	return b.del(k)
}

// LayerTOC returns the chunks of layer's table of contents in order, or
// ErrNotFound when none was stored.
func (db *DB) LayerTOC(layer digest.Digest) ([][]byte, error) {
	if err := checkDigest(layer); err != nil {
		return nil, err
	}
	lo := spanPrefix(prefixTOC, string(layer))
	var out [][]byte
	err := db.scan(lo, nil, func(k, v []byte) (bool, error) {
		if want := fmt.Sprintf("%08x", len(out)); !bytes.Equal(k[len(lo):], []byte(want)) {
			return false, fmt.Errorf("index: toc of %s: chunk %q where %s expected: %w", layer, k[len(lo):], want, ErrCorrupt)
		}
		out = append(out, bytes.Clone(v))
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, named(ErrNotFound, "toc of %s", layer)
	}
	return out, nil
}

// PutLayerDerived records that blob derived holds the uncompressed tar of
// the (compressed) layer.
func (b *Batch) PutLayerDerived(layer, derived digest.Digest) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := derivedKey(layer)
	if err != nil {
		return err
	}
	if err := checkDigest(derived); err != nil {
		return err
	}
	return b.set(k, []byte(derived))
}

// LayerDerived returns the digest of the uncompressed tar derived from
// layer, or ErrNotFound.
func (db *DB) LayerDerived(layer digest.Digest) (digest.Digest, error) {
	k, err := derivedKey(layer)
	if err != nil {
		return "", err
	}
	var d digest.Digest
	err = db.get(k, func(v []byte) error {
		d = digest.Digest(v)
		if checkDigest(d) != nil {
			return fmt.Errorf("derived digest %q: %w", v, ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return "", named(err, "derived of %s", layer)
	}
	return d, nil
}

// WalkLayerDerived calls fn with every layer that has a derived blob, in
// layer digest order (gc marks derived when it marks layer). io.EOF from fn
// stops the walk early with a nil result.
func (db *DB) WalkLayerDerived(fn func(layer, derived digest.Digest) error) error {
	lo := []byte{prefixDerived, sep}
	return db.scan(lo, nil, func(k, v []byte) (bool, error) {
		d := digest.Digest(v)
		if checkDigest(d) != nil {
			return false, fmt.Errorf("index: derived of %s: %q: %w", k[len(lo):], v, ErrCorrupt)
		}
		return callFn(fn(digest.Digest(k[len(lo):]), d))
	})
}

// WalkLayerTOCs calls fn with every layer that has a table of contents,
// in layer digest order, reading one key of each table (it seeks past
// the rest). fn runs outside any iterator, so it may write. io.EOF from
// fn stops the walk early with a nil result.
func (db *DB) WalkLayerTOCs(fn func(layer digest.Digest) error) error {
	lo := []byte{prefixTOC, sep}
	var start []byte
	for {
		var found digest.Digest
		err := db.scan(lo, start, func(k, _ []byte) (bool, error) {
			rest := k[len(lo):]
			i := bytes.IndexByte(rest, sep)
			if i <= 0 {
				return false, fmt.Errorf("index: toc key %q: %w", k, ErrCorrupt)
			}
			found = digest.Digest(rest[:i])
			return false, nil
		})
		if err != nil || found == "" {
			return err
		}
		if more, err := callFn(fn(found)); !more {
			return err
		}
		start = upperBound(spanPrefix(prefixTOC, string(found)))
	}
}
