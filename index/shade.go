package index

import (
	"encoding/binary"
	"fmt"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// The gc write barrier's marks in the index, for several processes
// sharing one database: a write that adds a reference to a blob (a
// manifest put, an upload commit, a mount) records the blob's digest here
// in its own batch, under the blob's cross-process lock; a collection
// removes every mark before its mark phase, and its sweep, under the same
// lock, spares a candidate that has one. docs/gc.md, docs/scale-out.md.
//
//	h 0 <digest>        when it was last marked (8 bytes, Unix nanoseconds)   Batch.PutShade
const prefixShade byte = 'h'

// shadeKey is the key of digest d's mark.
func shadeKey(d digest.Digest) ([]byte, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	return makeKey(prefixShade, string(d)), nil
}

// PutShade marks blob d as referenced at time at (the gc write barrier
// of several processes).
func (b *Batch) PutShade(d digest.Digest, at time.Time) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := shadeKey(d)
	if err != nil {
		return err
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
	return b.set(k, v)
}

// DeleteShade removes blob d's mark.
func (b *Batch) DeleteShade(d digest.Digest) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := shadeKey(d)
	if err != nil {
		return err
	}
	return b.del(k)
}

// Shade returns when blob d was last marked as referenced (ErrNotFound
// when it has no mark).
func (db *DB) Shade(d digest.Digest) (time.Time, error) {
	k, err := shadeKey(d)
	if err != nil {
		return time.Time{}, err
	}
	var at time.Time
	err = db.get(k, func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("shade value: %w", ErrCorrupt)
		}
		at = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		return nil
	})
	if err != nil {
		return time.Time{}, named(err, "shade %s", d)
	}
	return at, nil
}

// WalkShades calls fn with every mark, in digest order. io.EOF from fn
// stops the walk early with a nil result.
func (db *DB) WalkShades(fn func(d digest.Digest, at time.Time) error) error {
	lo := []byte{prefixShade, sep}
	return db.scan(lo, nil, func(k, v []byte) (bool, error) {
		parts, ok := splitKey(k, prefixShade, 1)
		if !ok || len(v) != 8 {
			return false, fmt.Errorf("index: shade key %q: %w", k, ErrCorrupt)
		}
		return callFn(fn(digest.Digest(parts[0]), time.Unix(0, int64(binary.BigEndian.Uint64(v)))))
	})
}
