package index

import (
	"errors"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"
)

// get reads one key and hands its value to fn while the value is valid. It
// returns ErrNotFound and ErrClosed unwrapped: callers name the record with
// named(), so that the hot path builds no error text.
func (db *DB) get(k []byte, fn func(v []byte) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	v, closer, err := db.kv.get(db.callCtx(), k)
	if isNotFound(err) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	defer func() { _ = closer.Close() }()
	return fn(v)
}

// named wraps a non-nil error of get with the record it concerns.
func named(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("index: "+format+": %w", append(args, err)...)
}

// has reports whether k exists.
func (db *DB) has(k []byte) (bool, error) {
	err := db.get(k, func([]byte) error { return nil })
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// scan iterates the keys in [lo, upperBound(lo)) starting at start (lo if
// nil), calling fn with each key and value (valid only during the call).
// fn returns false to stop early, or an error which stops and is returned.
func (db *DB) scan(lo, start []byte, fn func(k, v []byte) (bool, error)) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return fmt.Errorf("index: scan: %w", ErrClosed)
	}
	it, err := db.kv.newIter(db.callCtx(), lo, upperBound(lo))
	if err != nil {
		return fmt.Errorf("index: scan: %w", err)
	}
	var ok bool
	if start != nil {
		ok = it.SeekGE(start)
	} else {
		ok = it.First()
	}
	var ferr error
	for ; ok; ok = it.Next() {
		var more bool
		more, ferr = fn(it.Key(), it.Value())
		if ferr != nil || !more {
			break
		}
	}
	cerr := it.Close()
	if ferr != nil {
		return ferr
	}
	if cerr != nil {
		return fmt.Errorf("index: scan: %w", cerr)
	}
	return nil
}

// listNames lists the last key part under lo, after the exclusive name
// after, at most n (all when n <= 0).
func (db *DB) listNames(lo []byte, after string, n int) ([]string, error) {
	var start []byte
	if after != "" {
		start = afterKey(append(lo[:len(lo):len(lo)], after...))
	}
	var out []string
	err := db.scan(lo, start, func(k, _ []byte) (bool, error) {
		out = append(out, string(k[len(lo):]))
		return n <= 0 || len(out) < n, nil
	})
	return out, err
}

// Repository returns the record of repository name.
func (db *DB) Repository(name string) (*Repository, error) {
	k, err := repoKey(name)
	if err != nil {
		return nil, err
	}
	var r *Repository
	err = db.get(k, func(v []byte) error {
		r, err = decodeRepository(name, v)
		return err
	})
	if err != nil {
		return nil, named(err, "repository %s", name)
	}
	return r, nil
}

// HasRepository reports whether repository name exists.
func (db *DB) HasRepository(name string) (bool, error) {
	k, err := repoKey(name)
	if err != nil {
		return false, err
	}
	ok, err := db.has(k)
	if err != nil {
		return false, named(err, "repository %s", name)
	}
	return ok, nil
}

// ListRepositories lists repository names in lexical (byte) order, starting
// after the exclusive name after ("" from the start), at most n (n <= 0:
// all).
func (db *DB) ListRepositories(after string, n int) ([]string, error) {
	return db.listNames([]byte{prefixRepo, sep}, after, n)
}

// Tag returns the digest tag points to in repo.
func (db *DB) Tag(repo, tag string) (digest.Digest, error) {
	k, err := tagKey(repo, tag)
	if err != nil {
		return "", err
	}
	var d digest.Digest
	err = db.get(k, func(v []byte) error {
		d, err = decodeTag(v)
		return err
	})
	if err != nil {
		return "", named(err, "tag %s:%s", repo, tag)
	}
	return d, nil
}

// ListTags lists the tags of repo in lexical (byte) order, starting after
// the exclusive tag after, at most n (n <= 0: all). A repository without
// tags (or that does not exist) gives an empty list.
func (db *DB) ListTags(repo, after string, n int) ([]string, error) {
	if err := checkPart("repository", repo); err != nil {
		return nil, err
	}
	return db.listNames(spanPrefix(prefixTag, repo), after, n)
}

// CountTags returns the number of tags of repo.
func (db *DB) CountTags(repo string) (int, error) {
	if err := checkPart("repository", repo); err != nil {
		return 0, err
	}
	n := 0
	err := db.scan(spanPrefix(prefixTag, repo), nil, func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	})
	return n, err
}

// TagsOf returns the tags of repo that point to d, in lexical order, from
// the reverse tag index (no scan of all tags).
func (db *DB) TagsOf(repo string, d digest.Digest) ([]string, error) {
	if _, err := manifestKey(repo, d); err != nil {
		return nil, err
	}
	return db.listNames(spanPrefix(prefixTagRev, repo, string(d)), "", 0)
}

// Manifest returns the manifest d of repo with its payload: one pebble Get.
func (db *DB) Manifest(repo string, d digest.Digest) (*Manifest, error) {
	return db.manifest(repo, d, true)
}

// ManifestMeta returns the manifest d of repo without its payload (Payload
// is nil); cheaper than Manifest for HEAD requests and metadata decisions.
func (db *DB) ManifestMeta(repo string, d digest.Digest) (*Manifest, error) {
	return db.manifest(repo, d, false)
}

func (db *DB) manifest(repo string, d digest.Digest, payload bool) (*Manifest, error) {
	k, err := manifestKey(repo, d)
	if err != nil {
		return nil, err
	}
	var m *Manifest
	err = db.get(k, func(v []byte) error {
		m, err = decodeManifest(repo, d, v, payload)
		return err
	})
	if err != nil {
		return nil, named(err, "manifest %s@%s", repo, d)
	}
	return m, nil
}

// HasManifest reports whether repo holds manifest d.
func (db *DB) HasManifest(repo string, d digest.Digest) (bool, error) {
	k, err := manifestKey(repo, d)
	if err != nil {
		return false, err
	}
	ok, err := db.has(k)
	if err != nil {
		return false, named(err, "manifest %s@%s", repo, d)
	}
	return ok, nil
}

// ListManifests calls fn with every manifest of repo, in digest order,
// without payloads (Manifest gives one payload; listing all of them would
// copy every manifest's bytes). fn runs while an iterator is open: it may
// read and commit, but must not Close the DB. An error from fn stops the
// listing and is returned; io.EOF from fn stops it and nil is returned.
func (db *DB) ListManifests(repo string, fn func(*Manifest) error) error {
	if err := checkPart("repository", repo); err != nil {
		return err
	}
	lo := spanPrefix(prefixManifest, repo)
	return db.scan(lo, nil, func(k, v []byte) (bool, error) {
		m, err := decodeManifest(repo, digest.Digest(k[len(lo):]), v, false)
		if err != nil {
			return false, named(err, "manifest %s@%s", repo, k[len(lo):])
		}
		return callFn(fn(m))
	})
}

// WalkManifests calls fn with every manifest of every repository, ordered
// by repository then digest, without payloads (for gc mark). io.EOF from fn
// stops the walk early with a nil result.
func (db *DB) WalkManifests(fn func(*Manifest) error) error {
	return db.scan([]byte{prefixManifest, sep}, nil, func(k, v []byte) (bool, error) {
		parts, ok := splitKey(k, prefixManifest, 2)
		if !ok {
			return false, fmt.Errorf("index: manifest key %q: %w", k, ErrCorrupt)
		}
		m, err := decodeManifest(parts[0], digest.Digest(parts[1]), v, false)
		if err != nil {
			return false, named(err, "manifest %s@%s", parts[0], parts[1])
		}
		return callFn(fn(m))
	})
}

// CountManifests returns the number of manifests in repo.
func (db *DB) CountManifests(repo string) (int, error) {
	if err := checkPart("repository", repo); err != nil {
		return 0, err
	}
	n := 0
	err := db.scan(spanPrefix(prefixManifest, repo), nil, func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	})
	return n, err
}

// TierJob returns the tier job of image d in repo (ErrNotFound: none).
func (db *DB) TierJob(repo string, d digest.Digest) (*TierJob, error) {
	k, err := tierJobKey(repo, d)
	if err != nil {
		return nil, err
	}
	var j *TierJob
	err = db.get(k, func(v []byte) error {
		j, err = decodeTierJob(repo, d, v)
		return err
	})
	if err != nil {
		return nil, named(err, "tier job %s@%s", repo, d)
	}
	return j, nil
}

// WalkTierJobs calls fn with every tier job, ordered by repository then
// digest. io.EOF from fn stops the walk early with a nil result.
func (db *DB) WalkTierJobs(fn func(*TierJob) error) error {
	return db.scan([]byte{prefixTierJob, sep}, nil, func(k, v []byte) (bool, error) {
		parts, ok := splitKey(k, prefixTierJob, 2)
		if !ok {
			return false, fmt.Errorf("index: tier job key %q: %w", k, ErrCorrupt)
		}
		j, err := decodeTierJob(parts[0], digest.Digest(parts[1]), v)
		if err != nil {
			return false, named(err, "tier job %s@%s", parts[0], parts[1])
		}
		return callFn(fn(j))
	})
}

// Blob returns the record of blob d.
func (db *DB) Blob(d digest.Digest) (*Blob, error) {
	k, err := blobKey(d)
	if err != nil {
		return nil, err
	}
	var bl *Blob
	err = db.get(k, func(v []byte) error {
		bl, err = decodeBlob(d, v)
		return err
	})
	if err != nil {
		return nil, named(err, "blob %s", d)
	}
	return bl, nil
}

// WalkBlobs calls fn with every blob record in digest order. io.EOF from fn
// stops the walk early with a nil result.
func (db *DB) WalkBlobs(fn func(*Blob) error) error {
	lo := []byte{prefixBlob, sep}
	return db.scan(lo, nil, func(k, v []byte) (bool, error) {
		bl, err := decodeBlob(digest.Digest(k[len(lo):]), v)
		if err != nil {
			return false, named(err, "blob %s", k[len(lo):])
		}
		return callFn(fn(bl))
	})
}

// Linked reports whether blob d is linked to repo.
func (db *DB) Linked(repo string, d digest.Digest) (bool, error) {
	k, err := linkKey(repo, d)
	if err != nil {
		return false, err
	}
	ok, err := db.has(k)
	if err != nil {
		return false, named(err, "link %s@%s", repo, d)
	}
	return ok, nil
}

// ListLinks calls fn with every blob digest linked to repo, in digest order.
// io.EOF from fn stops the listing early with a nil result.
func (db *DB) ListLinks(repo string, fn func(digest.Digest) error) error {
	if err := checkPart("repository", repo); err != nil {
		return err
	}
	lo := spanPrefix(prefixLink, repo)
	return db.scan(lo, nil, func(k, _ []byte) (bool, error) {
		return callFn(fn(digest.Digest(k[len(lo):])))
	})
}

// LinkedRepositories calls fn with the name of every repository that
// blob d is linked to, in lexical (byte) order, from the reverse link index
// (one short range scan, whatever the number of repositories). io.EOF from
// fn stops the listing early with a nil result. fn runs while an iterator
// is open: it must not write or Close the DB.
func (db *DB) LinkedRepositories(d digest.Digest, fn func(repo string) error) error {
	if err := checkDigest(d); err != nil {
		return err
	}
	lo := spanPrefix(prefixLinkRev, string(d))
	return db.scan(lo, nil, func(k, _ []byte) (bool, error) {
		return callFn(fn(string(k[len(lo):])))
	})
}

// ReverseLinked reports whether the reverse link index holds the entry of
// the link of d to repo (for fsck: Linked reads the link itself).
func (db *DB) ReverseLinked(repo string, d digest.Digest) (bool, error) {
	k, err := linkRevKey(repo, d)
	if err != nil {
		return false, err
	}
	ok, err := db.has(k)
	if err != nil {
		return false, named(err, "reverse link %s@%s", repo, d)
	}
	return ok, nil
}

// Referrers returns the referrers of subject in repo, in referrer digest
// order; none gives an empty list and no error.
func (db *DB) Referrers(repo string, subject digest.Digest) ([]Referrer, error) {
	if _, err := manifestKey(repo, subject); err != nil {
		return nil, err
	}
	lo := spanPrefix(prefixReferrer, repo, string(subject))
	var out []Referrer
	err := db.scan(lo, nil, func(k, v []byte) (bool, error) {
		r, err := decodeReferrer(subject, digest.Digest(k[len(lo):]), v)
		if err != nil {
			return false, named(err, "referrer %s of %s@%s", k[len(lo):], repo, subject)
		}
		out = append(out, r)
		return true, nil
	})
	return out, err
}

// Upload returns the upload record id.
func (db *DB) Upload(id string) (*Upload, error) {
	k, err := uploadKey(id)
	if err != nil {
		return nil, err
	}
	var u *Upload
	err = db.get(k, func(v []byte) error {
		u, err = decodeUpload(id, v)
		return err
	})
	if err != nil {
		return nil, named(err, "upload %s", id)
	}
	return u, nil
}

// ListUploads calls fn with every upload record in id order. io.EOF from fn
// stops the listing early with a nil result.
func (db *DB) ListUploads(fn func(*Upload) error) error {
	lo := []byte{prefixUpload, sep}
	return db.scan(lo, nil, func(k, v []byte) (bool, error) {
		u, err := decodeUpload(string(k[len(lo):]), v)
		if err != nil {
			return false, named(err, "upload %s", k[len(lo):])
		}
		return callFn(fn(u))
	})
}

// Template returns the creation template value for prefix.
func (db *DB) Template(prefix string) ([]byte, error) { return db.opaque(prefixTemplate, prefix) }

// ListTemplates calls fn with every creation template in prefix order. io.EOF
// from fn stops the listing early with a nil result.
func (db *DB) ListTemplates(fn func(prefix string, value []byte) error) error {
	return db.listOpaque(prefixTemplate, fn)
}

// CacheRule returns the pull-through cache rule value for prefix.
func (db *DB) CacheRule(prefix string) ([]byte, error) { return db.opaque(prefixCache, prefix) }

// ListCacheRules calls fn with every pull-through cache rule in prefix
// order. io.EOF from fn stops the listing early with a nil result.
func (db *DB) ListCacheRules(fn func(prefix string, value []byte) error) error {
	return db.listOpaque(prefixCache, fn)
}

// RegistrySetting returns the value of the registry-level setting name
// (ErrNotFound when it is not set).
func (db *DB) RegistrySetting(name string) ([]byte, error) {
	return db.opaque(prefixRegistry, name)
}

func (db *DB) opaque(kind byte, prefix string) ([]byte, error) {
	k, err := opaqueKey(kind, prefix)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = db.get(k, func(v []byte) error {
		out, err = decodeOpaque(kind, v)
		return err
	})
	if err != nil {
		return nil, named(err, "%s %s", opaqueKinds[kind], prefix)
	}
	return out, nil
}

func (db *DB) listOpaque(kind byte, fn func(prefix string, value []byte) error) error {
	lo := []byte{kind, sep}
	return db.scan(lo, nil, func(k, v []byte) (bool, error) {
		p := string(k[len(lo):])
		val, err := decodeOpaque(kind, v)
		if err != nil {
			return false, named(err, "%s %s", opaqueKinds[kind], p)
		}
		return callFn(fn(p, val))
	})
}

// callFn maps a callback result to scan's (more, err): io.EOF stops
// without error.
func callFn(err error) (bool, error) {
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	return err == nil, err
}
