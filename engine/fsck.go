package engine

// Fsck: a consistency check of the whole store (package gc's Fsck), with
// the store's keys to re-verify sealed blobs.

import (
	"context"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/gc"
	"github.com/berthstore/berth/index"
)

// Kinds of fsck findings (FsckFinding.Kind).
const (
	// Corruption: the store is inconsistent or data is damaged.
	FsckMissingFile      = "missing-file"      // a blob record whose file is absent
	FsckSizeMismatch     = "size-mismatch"     // a blob file whose size differs from its record
	FsckBadBlob          = "bad-blob"          // a blob whose bytes fail verification
	FsckDanglingBlob     = "dangling-blob"     // a manifest referencing a blob without a record
	FsckDanglingChild    = "dangling-child"    // an index whose child manifest is absent
	FsckDanglingTag      = "dangling-tag"      // a tag naming an absent manifest
	FsckDanglingReferrer = "dangling-referrer" // a referrer entry naming an absent manifest
	FsckDanglingLink     = "dangling-link"     // a link to a blob without a record
	FsckDanglingScan     = "dangling-scan"     // a scan record or scan job naming an absent manifest
	FsckUnpairedLink     = "unpaired-link"     // a link without its reverse index entry, or an entry without its link
	FsckNoRepository     = "no-repository"     // a manifest of a repository without a record
	FsckCorruptRecord    = "corrupt-record"    // an index value that does not decode
	FsckColdBlob         = "cold-blob"         // an active image's blob in the archive tier, with no job to bring it back
	// Orphans: space to reclaim, not corruption (gc removes them).
	FsckOrphanFile   = "orphan-file"   // a blob file without a record, or in the tier its record does not name
	FsckOrphanUpload = "orphan-upload" // an upload file without a session
)

// FsckOptions tune a check.
type FsckOptions struct {
	// Verify re-reads blobs and checks their digests.
	Verify bool
	// Sample is the fraction of blobs re-verified when Verify is set, in
	// (0, 1]; zero means all.
	Sample float64
	// AllowSparse does not report index children or image layers absent
	// from the store. Options.AllowSparse sets it for every check.
	AllowSparse bool
}

// FsckFinding is one fsck result.
type FsckFinding struct {
	// Kind is one of the Fsck* kinds.
	Kind   string        `json:"kind"`
	Repo   string        `json:"repo,omitempty"`
	Digest digest.Digest `json:"digest,omitempty"`
	// Ref is the tag, child, referrer or upload id concerned, if any.
	Ref    string `json:"ref,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// String renders the finding on one line.
func (f FsckFinding) String() string { return gc.Finding(f).String() }

// FsckReport is the result of a check. Clean reports whether it found no
// corruption; orphans are listed apart.
type FsckReport struct {
	Repositories int `json:"repositories"`
	Manifests    int `json:"manifests"`
	Tags         int `json:"tags"`
	Links        int `json:"links"`
	BlobRecords  int `json:"blobRecords"`
	BlobFiles    int `json:"blobFiles"`
	Uploads      int `json:"uploads"`
	// Verified and VerifiedBytes count blobs whose digests were checked.
	Verified      int   `json:"verified"`
	VerifiedBytes int64 `json:"verifiedBytes"`
	// Corrupt lists inconsistencies and damaged data.
	Corrupt []FsckFinding `json:"corrupt"`
	// Orphans lists unreferenced files (reclaimable by gc).
	Orphans []FsckFinding `json:"orphans"`
	// Duration is how long the check took.
	Duration time.Duration `json:"duration"`
}

// Clean reports whether the check found no corruption.
func (r *FsckReport) Clean() bool { return len(r.Corrupt) == 0 }

// Fsck checks the store: every blob record against its file (existence,
// size and, with Verify, digest, unsealing blobs with the store's keys),
// every reference of every manifest, tag, referrer entry and link, the
// index of the repositories that link each blob against the links, and
// lists orphan files. It reads only.
func (e *Engine) Fsck(ctx context.Context, opts FsckOptions) (*FsckReport, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	o := gc.FsckOptions{Verify: opts.Verify, Sample: opts.Sample, AllowSparse: opts.AllowSparse || e.opts.AllowSparse}
	cfg := gc.FsckConfig{DB: e.db, Blobs: e.hot, Archive: e.archive, Logger: e.log, OpenBlob: e.openBlobAnyKey}
	r, err := gc.Fsck(ctx, cfg, o)
	if r == nil {
		return nil, err
	}
	return fsckReportOf(r), err
}

func fsckReportOf(r *gc.FsckReport) *FsckReport {
	out := &FsckReport{
		Repositories: r.Repositories, Manifests: r.Manifests, Tags: r.Tags, Links: r.Links,
		BlobRecords: r.BlobRecords, BlobFiles: r.BlobFiles, Uploads: r.Uploads,
		Verified: r.Verified, VerifiedBytes: r.VerifiedBytes, Duration: r.Duration,
		Corrupt: findingsOf(r.Corrupt), Orphans: findingsOf(r.Orphans),
	}
	return out
}

func findingsOf(fs []gc.Finding) []FsckFinding {
	if fs == nil {
		return nil
	}
	out := make([]FsckFinding, len(fs))
	for i, f := range fs {
		out[i] = FsckFinding(f)
	}
	return out
}

// openBlobAnyKey opens a blob, in the tier its record names, through
// whichever of its wraps unwraps.
func (e *Engine) openBlobAnyKey(ctx context.Context, rec *index.Blob) (io.ReadCloser, error) {
	dk, err := e.anyDataKey(ctx, rec)
	if err != nil {
		return nil, err
	}
	r, err := e.storeOf(rec.Tier).Open(ctx, rec.Digest, dk)
	if err != nil {
		return nil, blobErr(err)
	}
	return r, nil
}
