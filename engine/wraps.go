package engine

// Data-key wraps: a blob's data key, wrapped under each key-encryption
// key that needs it, and the cache of unwrapped data keys.

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/engine/internal/keycache"
	"github.com/berthstore/berth/index"
)

// kekName is the key-encryption key of a repository: its KMS key, or the
// registry's default key.
func kekName(s *RepositorySettings) string {
	if s.Encryption.KMSKey != "" {
		return s.Encryption.KMSKey
	}
	return crypt.DefaultKeyName
}

// blobWrapAD is the associated data of a blob record's wraps: the digest,
// so a wrap cannot be moved to another blob's record.
func blobWrapAD(d digest.Digest) []byte { return []byte("blob\x00" + string(d)) }

// uploadWrapAD binds an upload's wrap to its session id.
func uploadWrapAD(id string) []byte { return []byte("upload\x00" + id) }

func toIndexWrap(w crypt.WrappedKey) index.KeyWrap {
	return index.KeyWrap{KeyID: w.KeyName, Version: w.Version, Wrapped: w.Ciphertext}
}

func fromIndexWrap(w index.KeyWrap) crypt.WrappedKey {
	return crypt.WrappedKey{KeyName: w.KeyID, Version: w.Version, Ciphertext: w.Wrapped}
}

// findWrap returns the wrap under key name in rec, if any.
func findWrap(rec *index.Blob, name string) (index.KeyWrap, bool) {
	for _, w := range rec.Wraps {
		if w.KeyID == name {
			return w, true
		}
	}
	return index.KeyWrap{}, false
}

// blobDataKey returns the data key of rec as the repository keyed by kek
// may read it: only through a wrap under kek. nil for a plain blob.
func (e *Engine) blobDataKey(ctx context.Context, rec *index.Blob, kek string) ([]byte, error) {
	if len(rec.Wraps) == 0 {
		return nil, nil
	}
	w, ok := findWrap(rec, kek)
	if !ok {
		return nil, fmt.Errorf("%w: blob %s has no wrap under key %q", ErrBlobUnknown, rec.Digest, kek)
	}
	ck := cacheKey(rec.Digest, w)
	if k := e.dkeys.Get(ck); k != nil {
		return k, nil
	}
	k, err := e.keys.Unwrap(ctx, fromIndexWrap(w), blobWrapAD(rec.Digest))
	if err != nil {
		return nil, keyErr(fmt.Errorf("blob %s: %w", rec.Digest, err))
	}
	e.dkeys.Put(ck, k)
	return k, nil
}

// addWrap makes sure rec holds a wrap under kek, unwrapping its data key
// through any other wrap. It reports whether rec changed.
func (e *Engine) addWrap(ctx context.Context, rec *index.Blob, kek string) (bool, error) {
	if len(rec.Wraps) == 0 {
		return false, nil
	}
	if _, ok := findWrap(rec, kek); ok {
		return false, nil
	}
	var dk []byte
	var lastErr error
	for _, w := range rec.Wraps {
		k, err := e.blobDataKey(ctx, rec, w.KeyID)
		if err == nil {
			dk = k
			break
		}
		lastErr = err
	}
	if dk == nil {
		return false, lastErr
	}
	nw, err := e.keys.Wrap(ctx, kek, dk, blobWrapAD(rec.Digest))
	if err != nil {
		return false, keyErr(fmt.Errorf("blob %s: wrapping under %q: %w", rec.Digest, kek, err))
	}
	rec.Wraps = append(rec.Wraps, toIndexWrap(nw))
	return true, nil
}

// cacheKey names the data key of blob d unwrapped through wrap w.
func cacheKey(d digest.Digest, w index.KeyWrap) keycache.Key {
	return keycache.Key{Blob: string(d), KEK: w.KeyID, Version: w.Version, Wrapped: string(w.Wrapped)}
}

// dropDataKeys removes from the cache every data key unwrapped through
// key name and returns how many.
func (e *Engine) dropDataKeys(name string) int {
	canon := crypt.CanonicalKeyName(name)
	return e.dkeys.Drop(func(kek string) bool { return crypt.CanonicalKeyName(kek) == canon })
}
