package index

import (
	"fmt"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// WalkLinks calls fn with every repository-to-blob link of the store, with
// the time it was made, ordered by repository then digest (for gc, which
// needs each blob's newest link and the repositories to unlink it from).
// io.EOF from fn stops the walk early with a nil result.
func (db *DB) WalkLinks(fn func(repo string, d digest.Digest, at time.Time) error) error {
	return db.scan([]byte{prefixLink, sep}, nil, func(k, v []byte) (bool, error) {
		parts, ok := splitKey(k, prefixLink, 2)
		if !ok {
			return false, fmt.Errorf("index: link key %q: %w", k, ErrCorrupt)
		}
		at, err := decodeLink(v)
		if err != nil {
			return false, named(err, "link %s@%s", parts[0], parts[1])
		}
		return callFn(fn(parts[0], digest.Digest(parts[1]), at))
	})
}

// WalkReverseLinks calls fn with every entry of the reverse link index,
// ordered by digest then repository (for fsck, which pairs each with its
// link). io.EOF from fn stops the walk early with a nil result.
func (db *DB) WalkReverseLinks(fn func(d digest.Digest, repo string) error) error {
	return db.scan([]byte{prefixLinkRev, sep}, nil, func(k, _ []byte) (bool, error) {
		parts, ok := splitKey(k, prefixLinkRev, 2)
		if !ok {
			return false, fmt.Errorf("index: reverse link key %q: %w", k, ErrCorrupt)
		}
		return callFn(fn(digest.Digest(parts[0]), parts[1]))
	})
}
