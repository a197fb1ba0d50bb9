package index

import (
	"errors"
	"time"
)

// The records of the pull-through cache and of the secrets it
// authenticates to upstream registries with: the secrets (opaque, the
// engine's, sealed before they get here) and when each cached tag was
// last checked against its upstream (a time, so that a restart does not
// check every tag again).

// PutSecret writes the stored secret name; value is opaque (the engine
// seals it first).
func (b *Batch) PutSecret(name string, value []byte) error {
	return b.putOpaque(prefixSecret, name, value)
}

// DeleteSecret deletes the stored secret name.
func (b *Batch) DeleteSecret(name string) error { return b.deleteOpaque(prefixSecret, name) }

// Secret returns the value of the stored secret name (ErrNotFound when
// there is none).
func (db *DB) Secret(name string) ([]byte, error) { return db.opaque(prefixSecret, name) }

// ListSecrets calls fn with every stored secret in name order. io.EOF
// from fn stops the listing early with a nil result.
func (db *DB) ListSecrets(fn func(name string, value []byte) error) error {
	return db.listOpaque(prefixSecret, fn)
}

// PutUpstreamCheck records that tag of repo was checked against its
// upstream at at. DeleteRepository deletes the records of a repository.
func (b *Batch) PutUpstreamCheck(repo, tag string, at time.Time) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := upstreamCheckKey(repo, tag)
	if err != nil {
		return err
	}
	return b.set(k, encodeLink(at))
}

// UpstreamCheck returns when tag of repo was last checked against its
// upstream (ErrNotFound when never).
func (db *DB) UpstreamCheck(repo, tag string) (time.Time, error) {
	k, err := upstreamCheckKey(repo, tag)
	if err != nil {
		return time.Time{}, err
	}
	var at time.Time
	err = db.get(k, func(v []byte) error {
		var derr error
		at, derr = decodeLink(v)
		return derr
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return time.Time{}, err
		}
		return time.Time{}, named(err, "upstream check %s:%s", repo, tag)
	}
	return at, nil
}
