package index

import (
	"bytes"
	"fmt"

	digest "github.com/opencontainers/go-digest"
)

// Image scanning (docs/scanning.md): scan records, the scan queue and the
// vulnerability database. Values are opaque to the index (engine records)
// behind the format-version byte.
//
//	s 0 <repo> 0 <digest>                             scan record of an image          Batch.PutScan
//	Q 0 <repo> 0 <digest>                             queued scan job of an image      Batch.PutScanJob
//	V 0 <version, 16 hex digits> 0 <record id>        vulnerability record             Batch.PutVulnRecord
//	K 0 <version> 0 <ecosystem> 0 <name> 0 <id>       empty: package key -> record id  Batch.PutVulnKey
//
// A repository's s and Q keys go with it (DeleteRepository), an image's
// with its manifest (DeleteManifest). The database's versions are
// written by an import and made current by a registry setting the engine
// writes last (G 0 vulnDatabase); DeleteVulnVersionsExcept removes what
// an interrupted import or a superseded version left.
const (
	prefixScan    byte = 's'
	prefixScanJob byte = 'Q'
	prefixVulnRec byte = 'V'
	prefixVulnKey byte = 'K'
)

func vulnVersion(v uint64) string { return fmt.Sprintf("%016x", v) }

func imageKey(prefix byte, repo string, d digest.Digest) ([]byte, error) {
	if err := checkPart("repository", repo); err != nil {
		return nil, err
	}
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	return makeKey(prefix, repo, string(d)), nil
}

// PutScan writes the scan record of image d of repo; value is opaque.
func (b *Batch) PutScan(repo string, d digest.Digest, value []byte) error {
	return b.putImageValue(prefixScan, repo, d, value)
}

// DeleteScan deletes the scan record of image d of repo.
func (b *Batch) DeleteScan(repo string, d digest.Digest) error {
	return b.deleteImageValue(prefixScan, repo, d)
}

// PutScanJob queues (or requeues) a scan job for image d of repo; value
// is opaque.
func (b *Batch) PutScanJob(repo string, d digest.Digest, value []byte) error {
	return b.putImageValue(prefixScanJob, repo, d, value)
}

// DeleteScanJob removes the scan job of image d of repo.
func (b *Batch) DeleteScanJob(repo string, d digest.Digest) error {
	return b.deleteImageValue(prefixScanJob, repo, d)
}

func (b *Batch) putImageValue(prefix byte, repo string, d digest.Digest, value []byte) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := imageKey(prefix, repo, d)
	if err != nil {
		return err
	}
	return b.set(k, encodeOpaque(value))
}

func (b *Batch) deleteImageValue(prefix byte, repo string, d digest.Digest) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := imageKey(prefix, repo, d)
	if err != nil {
		return err
	}
	return b.del(k)
}

// Scan returns the scan record of image d of repo, or ErrNotFound.
func (db *DB) Scan(repo string, d digest.Digest) ([]byte, error) {
	return db.imageValue(prefixScan, repo, d)
}

// ScanJob returns the queued scan job of image d of repo, or ErrNotFound.
func (db *DB) ScanJob(repo string, d digest.Digest) ([]byte, error) {
	return db.imageValue(prefixScanJob, repo, d)
}

func (db *DB) imageValue(prefix byte, repo string, d digest.Digest) ([]byte, error) {
	k, err := imageKey(prefix, repo, d)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = db.get(k, func(v []byte) error {
		if len(v) < 1 || v[0] != valueV1 {
			return fmt.Errorf("scan value: %w", ErrCorrupt)
		}
		out = bytes.Clone(v[1:])
		return nil
	})
	if err != nil {
		return nil, named(err, "scan %s@%s", repo, d)
	}
	return out, nil
}

// WalkScans calls fn with every scan record, in repository and digest
// order. io.EOF from fn stops the walk early with a nil result.
func (db *DB) WalkScans(fn func(repo string, d digest.Digest, value []byte) error) error {
	return db.walkImageValues(prefixScan, fn)
}

// WalkScanJobs calls fn with every queued scan job, in repository and
// digest order. io.EOF from fn stops the walk early with a nil result.
func (db *DB) WalkScanJobs(fn func(repo string, d digest.Digest, value []byte) error) error {
	return db.walkImageValues(prefixScanJob, fn)
}

func (db *DB) walkImageValues(prefix byte, fn func(repo string, d digest.Digest, value []byte) error) error {
	lo := []byte{prefix, sep}
	return db.scan(lo, nil, func(k, v []byte) (bool, error) {
		parts, ok := splitKey(k, prefix, 2)
		if !ok {
			return false, fmt.Errorf("index: scan key %q: %w", k, ErrCorrupt)
		}
		if len(v) < 1 || v[0] != valueV1 {
			return false, fmt.Errorf("index: scan value of %s@%s: %w", parts[0], parts[1], ErrCorrupt)
		}
		return callFn(fn(parts[0], digest.Digest(parts[1]), v[1:]))
	})
}

// PutVulnRecord writes vulnerability record id of database version ver;
// value is opaque.
func (b *Batch) PutVulnRecord(ver uint64, id string, value []byte) error {
	if err := b.check(); err != nil {
		return err
	}
	if err := checkPart("vulnerability id", id); err != nil {
		return err
	}
	return b.set(makeKey(prefixVulnRec, vulnVersion(ver), id), encodeOpaque(value))
}

// PutVulnKey records that record id of database version ver has an entry
// for package name of ecosystem.
func (b *Batch) PutVulnKey(ver uint64, ecosystem, name, id string) error {
	if err := b.check(); err != nil {
		return err
	}
	for _, p := range [][2]string{{"ecosystem", ecosystem}, {"package name", name}, {"vulnerability id", id}} {
		if err := checkPart(p[0], p[1]); err != nil {
			return err
		}
	}
	return b.set(makeKey(prefixVulnKey, vulnVersion(ver), ecosystem, name, id), nil)
}

// DeleteVulnVersionsExcept deletes the records and package keys of every
// database version but those of keep (range deletions).
func (b *Batch) DeleteVulnVersionsExcept(keep ...uint64) error {
	if err := b.check(); err != nil {
		return err
	}
	for _, p := range []byte{prefixVulnRec, prefixVulnKey} {
		lo := []byte{p, sep}
		hi := upperBound(lo)
		from := lo
		for _, v := range sortedVersions(keep) {
			span := spanPrefix(p, vulnVersion(v))
			if bytes.Compare(from, span) < 0 {
				if err := b.b.delRange(from, span); err != nil {
					return fmt.Errorf("index: batch delete range: %w", err)
				}
			}
			from = upperBound(span)
		}
		if bytes.Compare(from, hi) < 0 {
			if err := b.b.delRange(from, hi); err != nil {
				return fmt.Errorf("index: batch delete range: %w", err)
			}
		}
	}
	return nil
}

func sortedVersions(vs []uint64) []uint64 {
	out := make([]uint64, 0, len(vs))
	for _, v := range vs {
		i := 0
		for i < len(out) && out[i] < v {
			i++
		}
		if i < len(out) && out[i] == v {
			continue
		}
		out = append(out[:i], append([]uint64{v}, out[i:]...)...)
	}
	return out
}

// VulnRecord returns record id of database version ver, or ErrNotFound.
func (db *DB) VulnRecord(ver uint64, id string) ([]byte, error) {
	if err := checkPart("vulnerability id", id); err != nil {
		return nil, err
	}
	var out []byte
	err := db.get(makeKey(prefixVulnRec, vulnVersion(ver), id), func(v []byte) error {
		if len(v) < 1 || v[0] != valueV1 {
			return fmt.Errorf("vulnerability record: %w", ErrCorrupt)
		}
		out = bytes.Clone(v[1:])
		return nil
	})
	if err != nil {
		return nil, named(err, "vulnerability %s (database version %d)", id, ver)
	}
	return out, nil
}

// VulnIDs calls fn with the id of every record of database version ver
// with an entry for package name of ecosystem, in id order.
func (db *DB) VulnIDs(ver uint64, ecosystem, name string, fn func(id string) error) error {
	if checkPart("ecosystem", ecosystem) != nil || checkPart("package name", name) != nil {
		return nil // no record can have such a key
	}
	lo := spanPrefix(prefixVulnKey, vulnVersion(ver), ecosystem, name)
	return db.scan(lo, nil, func(k, _ []byte) (bool, error) {
		return callFn(fn(string(k[len(lo):])))
	})
}

// CountVulnRecords counts the records of database version ver.
func (db *DB) CountVulnRecords(ver uint64) (int, error) {
	n := 0
	err := db.scan(spanPrefix(prefixVulnRec, vulnVersion(ver)), nil, func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	})
	return n, err
}
