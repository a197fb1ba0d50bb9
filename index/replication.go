package index

import (
	"bytes"
	"fmt"

	digest "github.com/opencontainers/go-digest"
)

// Replication (docs/replication.md): the durable queue of images to send
// to other registries, and each image's status per destination. Values
// are opaque to the index (engine records) behind the format-version
// byte.
//
//	y 0 <destination> 0 <repo> 0 <reference>   queued replication job     Batch.PutReplicationJob
//	Y 0 <repo> 0 <digest> 0 <destination>      replication status         Batch.PutReplicationStatus
//
// <reference> is a tag or a digest (a digest holds ':', a tag cannot): one
// job per destination and reference, so a push of a tag that is still
// queued replaces its job rather than adding one. A repository's Y keys
// go with it (DeleteRepository); its jobs stay until a worker finds the
// image gone.
const (
	prefixReplJob    byte = 'y'
	prefixReplStatus byte = 'Y'
)

func replJobKey(dest, repo, ref string) ([]byte, error) {
	if err := checkPart("destination", dest); err != nil {
		return nil, err
	}
	if err := checkPart("repository", repo); err != nil {
		return nil, err
	}
	if err := checkPart("reference", ref); err != nil {
		return nil, err
	}
	return makeKey(prefixReplJob, dest, repo, ref), nil
}

func replStatusKey(repo string, d digest.Digest, dest string) ([]byte, error) {
	if err := checkPart("repository", repo); err != nil {
		return nil, err
	}
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	if err := checkPart("destination", dest); err != nil {
		return nil, err
	}
	return makeKey(prefixReplStatus, repo, string(d), dest), nil
}

// PutReplicationJob queues (or replaces) the job of reference ref (a tag
// or a digest) of repo for destination dest; value is opaque.
func (b *Batch) PutReplicationJob(dest, repo, ref string, value []byte) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := replJobKey(dest, repo, ref)
	if err != nil {
		return err
	}
	return b.set(k, encodeOpaque(value))
}

// DeleteReplicationJob removes a job.
func (b *Batch) DeleteReplicationJob(dest, repo, ref string) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := replJobKey(dest, repo, ref)
	if err != nil {
		return err
	}
	return b.del(k)
}

// PutReplicationStatus writes the status of image d of repo at
// destination dest; value is opaque.
func (b *Batch) PutReplicationStatus(repo string, d digest.Digest, dest string, value []byte) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := replStatusKey(repo, d, dest)
	if err != nil {
		return err
	}
	return b.set(k, encodeOpaque(value))
}

// ReplicationJob returns the value of a job, or ErrNotFound.
func (db *DB) ReplicationJob(dest, repo, ref string) ([]byte, error) {
	k, err := replJobKey(dest, repo, ref)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = db.get(k, func(v []byte) error {
		var derr error
		out, derr = decodeReplValue(v)
		return derr
	})
	return out, named(err, "replication job %s %s:%s", dest, repo, ref)
}

// ReplicationStatus returns the status of image d of repo at dest, or
// ErrNotFound.
func (db *DB) ReplicationStatus(repo string, d digest.Digest, dest string) ([]byte, error) {
	k, err := replStatusKey(repo, d, dest)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = db.get(k, func(v []byte) error {
		var derr error
		out, derr = decodeReplValue(v)
		return derr
	})
	return out, named(err, "replication status %s@%s %s", repo, d, dest)
}

// WalkReplicationJobs calls fn with every job, destination by
// destination, then by repository and reference. io.EOF from fn stops
// the walk early with a nil result. value is valid only during the call.
func (db *DB) WalkReplicationJobs(fn func(dest, repo, ref string, value []byte) error) error {
	return db.scan([]byte{prefixReplJob, sep}, nil, func(k, v []byte) (bool, error) {
		parts, ok := splitKey(k, prefixReplJob, 3)
		if !ok {
			return false, fmt.Errorf("index: replication job key %q: %w", k, ErrCorrupt)
		}
		val, err := decodeReplValue(v)
		if err != nil {
			return false, err
		}
		return callFn(fn(parts[0], parts[1], parts[2], val))
	})
}

// WalkReplicationStatuses calls fn with the status of image d of repo at
// every destination, in destination order; io.EOF stops early.
func (db *DB) WalkReplicationStatuses(repo string, d digest.Digest, fn func(dest string, value []byte) error) error {
	if err := checkPart("repository", repo); err != nil {
		return err
	}
	if err := checkDigest(d); err != nil {
		return err
	}
	lo := spanPrefix(prefixReplStatus, repo, string(d))
	return db.scan(lo, nil, func(k, v []byte) (bool, error) {
		val, err := decodeReplValue(v)
		if err != nil {
			return false, err
		}
		return callFn(fn(string(k[len(lo):]), val))
	})
}

func decodeReplValue(v []byte) ([]byte, error) {
	if len(v) < 1 || v[0] != valueV1 {
		return nil, fmt.Errorf("replication value: %w", ErrCorrupt)
	}
	return bytes.Clone(v[1:]), nil
}
