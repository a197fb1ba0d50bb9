package index

import (
	"fmt"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Batch collects all the writes of one state change; Commit applies them
// atomically. A Batch is used by one goroutine. Reads made by the Batch
// itself (DeleteManifest, DeleteRepository looking up what to remove) see
// the committed state plus the writes already in the batch.
type Batch struct {
	db   *DB
	b    kvBatch
	done bool
}

// NewBatch starts a batch. On a closed DB the batch's methods return
// ErrClosed.
func (db *DB) NewBatch() *Batch {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return &Batch{db: db, done: true}
	}
	kb := db.kv.newBatch()
	if pb, ok := kb.(*pgBatch); ok {
		pb.ctx = db.ctx
	}
	return &Batch{db: db, b: kb}
}

func (b *Batch) check() error {
	if b.done {
		return fmt.Errorf("index: batch: %w", ErrClosed)
	}
	return nil
}

func (b *Batch) set(k, v []byte) error {
	if err := b.b.set(k, v); err != nil {
		return fmt.Errorf("index: batch set: %w", err)
	}
	return nil
}

func (b *Batch) del(k []byte) error {
	if err := b.b.del(k); err != nil {
		return fmt.Errorf("index: batch delete: %w", err)
	}
	return nil
}

// PutRepository writes a repository record.
func (b *Batch) PutRepository(r *Repository) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := repoKey(r.Name)
	if err != nil {
		return err
	}
	return b.set(k, encodeRepository(r))
}

// DeleteRepository deletes a repository record together with everything
// stored under the repository: its tags and reverse tag entries, manifests,
// links, referrers, tier jobs, upstream checks and lifecycle preview
// (range deletions), and the reverse link index entries of its links (one
// deletion each: they are keyed by digest, so they are found through the
// repository's links, as the batch sees them). Upload records, keyed by
// id, are left to the caller.
func (b *Batch) DeleteRepository(name string) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := repoKey(name)
	if err != nil {
		return err
	}
	if err := b.del(k); err != nil {
		return err
	}
	if err := b.deleteReverseLinks(name); err != nil {
		return err
	}
	if err := b.DeletePreview(name); err != nil {
		return err
	}
	for _, p := range []byte{prefixTag, prefixTagRev, prefixManifest, prefixLink, prefixReferrer, prefixTierJob, prefixUpCheck, prefixScan, prefixScanJob, prefixReplStatus} {
		lo := spanPrefix(p, name)
		if err := b.b.delRange(lo, upperBound(lo)); err != nil {
			return fmt.Errorf("index: batch delete range: %w", err)
		}
	}
	return nil
}

// deleteReverseLinks deletes the reverse link index entries of every link
// of repo.
func (b *Batch) deleteReverseLinks(repo string) error {
	lo := spanPrefix(prefixLink, repo)
	it, err := b.b.newIter(lo, upperBound(lo))
	if err != nil {
		return fmt.Errorf("index: links of %s: %w", repo, err)
	}
	var rks [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		rks = append(rks, makeKey(prefixLinkRev, string(it.Key()[len(lo):]), repo))
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("index: links of %s: %w", repo, err)
	}
	for _, rk := range rks {
		if err := b.del(rk); err != nil {
			return err
		}
	}
	return nil
}

// PutTag points tag at d in repo. prev is the digest the tag pointed to
// before ("" if none), whose reverse index entry is removed.
func (b *Batch) PutTag(repo, tag string, d digest.Digest, prev digest.Digest) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := tagKey(repo, tag)
	if err != nil {
		return err
	}
	rk, err := tagRevKey(repo, d, tag)
	if err != nil {
		return err
	}
	if prev != "" && prev != d {
		pk, err := tagRevKey(repo, prev, tag)
		if err != nil {
			return err
		}
		if err := b.del(pk); err != nil {
			return err
		}
	}
	if err := b.set(k, encodeTag(d)); err != nil {
		return err
	}
	return b.set(rk, nil)
}

// DeleteTag deletes tag from repo. prev is the digest the tag points to
// ("" if unknown: the batch then reads it).
func (b *Batch) DeleteTag(repo, tag string, prev digest.Digest) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := tagKey(repo, tag)
	if err != nil {
		return err
	}
	if prev == "" {
		v, closer, err := b.b.get(k)
		switch {
		case isNotFound(err):
		case err != nil:
			return fmt.Errorf("index: tag %s:%s: %w", repo, tag, err)
		default:
			prev, err = decodeTag(v)
			_ = closer.Close()
			if err != nil {
				return err
			}
		}
	}
	if prev != "" {
		pk, err := tagRevKey(repo, prev, tag)
		if err != nil {
			return err
		}
		if err := b.del(pk); err != nil {
			return err
		}
	}
	return b.del(k)
}

// PutManifest writes a manifest record (metadata and payload).
func (b *Batch) PutManifest(m *Manifest) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := manifestKey(m.Repo, m.Digest)
	if err != nil {
		return err
	}
	return b.set(k, encodeManifest(m))
}

// DeleteManifest deletes the manifest d of repo and every tag of repo that
// points to it (found through the reverse tag index, including tags put
// earlier in this batch). Referrers whose subject is d are left to the
// caller (see Referrers).
func (b *Batch) DeleteManifest(repo string, d digest.Digest) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := manifestKey(repo, d)
	if err != nil {
		return err
	}
	lo := spanPrefix(prefixTagRev, repo, string(d))
	it, err := b.b.newIter(lo, upperBound(lo))
	if err != nil {
		return fmt.Errorf("index: manifest %s@%s: %w", repo, d, err)
	}
	var tags []string
	for ok := it.First(); ok; ok = it.Next() {
		tags = append(tags, string(it.Key()[len(lo):]))
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("index: manifest %s@%s: %w", repo, d, err)
	}
	for _, tag := range tags {
		if err := b.del(makeKey(prefixTag, repo, tag)); err != nil {
			return err
		}
		if err := b.del(makeKey(prefixTagRev, repo, string(d), tag)); err != nil {
			return err
		}
	}
	if err := b.del(makeKey(prefixScan, repo, string(d))); err != nil {
		return err
	}
	if err := b.del(makeKey(prefixScanJob, repo, string(d))); err != nil {
		return err
	}
	return b.del(k)
}

// PutTierJob writes (or replaces) the tier job of image j.Digest in
// j.Repo.
func (b *Batch) PutTierJob(j *TierJob) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := tierJobKey(j.Repo, j.Digest)
	if err != nil {
		return err
	}
	return b.set(k, encodeTierJob(j))
}

// DeleteTierJob deletes the tier job of image d in repo, if any.
func (b *Batch) DeleteTierJob(repo string, d digest.Digest) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := tierJobKey(repo, d)
	if err != nil {
		return err
	}
	return b.del(k)
}

// PutBlob writes a blob record.
func (b *Batch) PutBlob(bl *Blob) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := blobKey(bl.Digest)
	if err != nil {
		return err
	}
	return b.set(k, encodeBlob(bl))
}

// DeleteBlob deletes a blob record.
func (b *Batch) DeleteBlob(d digest.Digest) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := blobKey(d)
	if err != nil {
		return err
	}
	return b.del(k)
}

// PutLink links blob d to repo, recording when, with its reverse link
// index entry (LinkedRepositories) in the same batch.
func (b *Batch) PutLink(repo string, d digest.Digest, at time.Time) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := linkKey(repo, d)
	if err != nil {
		return err
	}
	if err := b.set(k, encodeLink(at)); err != nil {
		return err
	}
	return b.set(makeKey(prefixLinkRev, string(d), repo), nil) // validated by linkKey
}

// DeleteLink unlinks blob d from repo: the link and its reverse link
// index entry, whichever of them exists.
func (b *Batch) DeleteLink(repo string, d digest.Digest) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := linkKey(repo, d)
	if err != nil {
		return err
	}
	if err := b.del(k); err != nil {
		return err
	}
	return b.del(makeKey(prefixLinkRev, string(d), repo)) // validated by linkKey
}

// PutReferrer records that r.Digest refers to r.Subject in repo.
func (b *Batch) PutReferrer(repo string, r *Referrer) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := referrerKey(repo, r.Subject, r.Digest)
	if err != nil {
		return err
	}
	return b.set(k, encodeReferrer(r))
}

// DeleteReferrer deletes the referrer d of subject in repo.
func (b *Batch) DeleteReferrer(repo string, subject, d digest.Digest) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := referrerKey(repo, subject, d)
	if err != nil {
		return err
	}
	return b.del(k)
}

// PutUpload writes an upload record.
func (b *Batch) PutUpload(u *Upload) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := uploadKey(u.ID)
	if err != nil {
		return err
	}
	return b.set(k, encodeUpload(u))
}

// DeleteUpload deletes an upload record.
func (b *Batch) DeleteUpload(id string) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := uploadKey(id)
	if err != nil {
		return err
	}
	return b.del(k)
}

// PutTemplate writes the creation template for prefix; value is opaque.
func (b *Batch) PutTemplate(prefix string, value []byte) error {
	return b.putOpaque(prefixTemplate, prefix, value)
}

// DeleteTemplate deletes the creation template for prefix.
func (b *Batch) DeleteTemplate(prefix string) error { return b.deleteOpaque(prefixTemplate, prefix) }

// PutCacheRule writes the pull-through cache rule for prefix; value is
// opaque.
func (b *Batch) PutCacheRule(prefix string, value []byte) error {
	return b.putOpaque(prefixCache, prefix, value)
}

// DeleteCacheRule deletes the pull-through cache rule for prefix.
func (b *Batch) DeleteCacheRule(prefix string) error { return b.deleteOpaque(prefixCache, prefix) }

// PutRegistrySetting writes the registry-level setting name (the
// registry policy, say); value is opaque.
func (b *Batch) PutRegistrySetting(name string, value []byte) error {
	return b.putOpaque(prefixRegistry, name, value)
}

// DeleteRegistrySetting deletes the registry-level setting name.
func (b *Batch) DeleteRegistrySetting(name string) error {
	return b.deleteOpaque(prefixRegistry, name)
}

func (b *Batch) putOpaque(kind byte, prefix string, value []byte) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := opaqueKey(kind, prefix)
	if err != nil {
		return err
	}
	return b.set(k, encodeOpaque(value))
}

func (b *Batch) deleteOpaque(kind byte, prefix string) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := opaqueKey(kind, prefix)
	if err != nil {
		return err
	}
	return b.del(k)
}

// Len returns the size in bytes of the batch's encoded writes.
func (b *Batch) Len() int {
	if b.b == nil {
		return 0
	}
	return b.b.size()
}

// Commit applies the batch atomically, durably (fsync of the WAL) when sync
// is set, and closes it. A commit that finds the file system (nearly) full
// returns an error wrapping ErrNoSpace.
func (b *Batch) Commit(sync bool) error {
	if err := b.check(); err != nil {
		return err
	}
	b.done = true
	defer func() {
		// After a fatal pebble error the batch may be left mid-commit;
		// releasing it must not crash the caller.
		defer func() { _ = recover() }()
		_ = b.b.close()
	}()
	db := b.db
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return fmt.Errorf("index: commit: %w", ErrClosed)
	}
	if b.b.count() == 0 {
		return nil
	}
	return db.kv.apply(db.callCtx(), b.b, sync)
}

// SyncWAL makes every batch committed so far durable (an fsync of the
// write-ahead log, shared with concurrent synced commits). A writer may
// commit without sync while it holds a lock that orders its writes, then
// release the lock and call SyncWAL before it acknowledges: writers of
// the same lock then share fsyncs instead of queueing behind each other's.
func (db *DB) SyncWAL() error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return fmt.Errorf("index: sync: %w", ErrClosed)
	}
	if err := db.kv.sync(db.callCtx()); err != nil {
		return fmt.Errorf("index: sync: %w", err)
	}
	return nil
}

// Close discards the batch if it was not committed. Closing twice is a no-op.
func (b *Batch) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if err := b.b.close(); err != nil {
		return fmt.Errorf("index: batch close: %w", err)
	}
	return nil
}
