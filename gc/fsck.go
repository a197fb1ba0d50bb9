package gc

import (
	"context"
	_ "crypto/sha256" // digests are verified here
	_ "crypto/sha512"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/index"
)

// Kinds of fsck findings.
const (
	// Corruption: the store is inconsistent or data is damaged.
	KindMissingFile      = "missing-file"      // a blob record whose file is absent
	KindSizeMismatch     = "size-mismatch"     // a blob file whose size differs from its record
	KindBadBlob          = "bad-blob"          // a blob whose bytes fail verification
	KindDanglingBlob     = "dangling-blob"     // a manifest referencing a blob without a record
	KindDanglingChild    = "dangling-child"    // an index whose child manifest is absent
	KindDanglingTag      = "dangling-tag"      // a tag naming an absent manifest
	KindDanglingReferrer = "dangling-referrer" // a referrer entry naming an absent manifest
	KindDanglingLink     = "dangling-link"     // a link to a blob without a record
	KindDanglingScan     = "dangling-scan"     // a scan record or scan job naming an absent manifest
	KindUnpairedLink     = "unpaired-link"     // a link without its reverse index entry, or an entry without its link
	KindNoRepository     = "no-repository"     // a manifest of a repository without a record
	KindCorruptRecord    = "corrupt-record"    // an index value that does not decode
	KindColdBlob         = "cold-blob"         // an active image's blob in the archive tier, with no job to bring it back
	// Orphans: space to reclaim, not corruption (gc removes them).
	KindOrphanFile   = "orphan-file"   // a blob file without a record, or in the tier its record does not name
	KindOrphanUpload = "orphan-upload" // an upload file without a session
)

// Finding is one fsck result.
type Finding struct {
	Kind   string        `json:"kind"`
	Repo   string        `json:"repo,omitempty"`
	Digest digest.Digest `json:"digest,omitempty"`
	// Ref is the tag, child, referrer or upload id concerned, if any.
	Ref    string `json:"ref,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// String renders the finding on one line.
func (f Finding) String() string {
	s := f.Kind
	if f.Repo != "" {
		s += " " + f.Repo
	}
	if f.Digest != "" {
		s += " " + string(f.Digest)
	}
	if f.Ref != "" {
		s += " " + f.Ref
	}
	if f.Detail != "" {
		s += ": " + f.Detail
	}
	return s
}

// FsckConfig connects Fsck to a store.
type FsckConfig struct {
	// DB is the store's index; Blobs its blob files (the hot tier);
	// Archive the archive tier's, nil when the store has none.
	DB      *index.DB
	Blobs   blob.Inventory
	Archive blob.Inventory
	// OpenBlob opens a blob for reading, unsealing it (the engine knows the
	// keys). Needed only with FsckOptions.Verify.
	OpenBlob func(ctx context.Context, rec *index.Blob) (io.ReadCloser, error)
	// Logger receives progress logs. Default slog.Default().
	Logger *slog.Logger
}

// FsckOptions tune a check.
type FsckOptions struct {
	// Verify re-reads blobs and checks their digests.
	Verify bool
	// Sample is the fraction of blobs re-verified when Verify is set, in
	// (0, 1]; zero means all.
	Sample float64
	// AllowSparse does not report index children or image layers absent
	// from the store (the engine's Options.AllowSparse).
	AllowSparse bool
}

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
	Corrupt []Finding `json:"corrupt"`
	// Orphans lists unreferenced files (reclaimable by gc).
	Orphans []Finding `json:"orphans"`
	// Duration is how long the check took.
	Duration time.Duration `json:"duration"`
}

// Clean reports whether the check found no corruption.
func (r *FsckReport) Clean() bool { return len(r.Corrupt) == 0 }

// Fsck checks the store: every blob record against its file (existence,
// size and, with Verify, digest), every reference of every manifest, tag,
// referrer entry and link, the reverse link index against the links, and
// lists orphan files. It reads only. On a
// store in use, findings about records written during the check are
// re-checked once before being reported.
func Fsck(ctx context.Context, cfg FsckConfig, opts FsckOptions) (*FsckReport, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t0 := time.Now()
	r := &FsckReport{Corrupt: []Finding{}, Orphans: []Finding{}}
	db := cfg.DB
	corrupt := func(f Finding) { r.Corrupt = append(r.Corrupt, f) }

	repos, err := db.ListRepositories("", 0)
	if err != nil {
		return nil, fmt.Errorf("gc: fsck: %w", err)
	}
	r.Repositories = len(repos)
	hasRepo := map[string]bool{}
	for _, name := range repos {
		hasRepo[name] = true
	}

	tiers := tiersOf(cfg.Blobs, cfg.Archive)
	storeOf := func(t index.Tier) blob.Inventory {
		for _, ts := range tiers {
			if ts.tier == t {
				return ts.store
			}
		}
		return nil
	}
	// still reports whether b's record is unchanged (not swept, moved
	// between tiers or pushed again meanwhile).
	still := func(b *index.Blob) bool {
		rec, err := db.Blob(b.Digest)
		return err == nil && rec.Tier == b.Tier && string(rec.FileID) == string(b.FileID)
	}

	// Blob records against files, in the tier each record names.
	err = db.WalkBlobs(func(b *index.Blob) error {
		r.BlobRecords++
		if err := ctx.Err(); err != nil {
			return err
		}
		s := storeOf(b.Tier)
		if s == nil {
			corrupt(Finding{Kind: KindMissingFile, Digest: b.Digest, Detail: fmt.Sprintf("the record names the %s tier, which this store has not", b.Tier)})
			return nil
		}
		info, err := s.Stat(ctx, b.Digest)
		switch {
		case errors.Is(err, blob.ErrNotFound):
			if still(b) {
				detail := ""
				if b.Tier != index.TierHot {
					detail = b.Tier.String() + " tier"
				}
				corrupt(Finding{Kind: KindMissingFile, Digest: b.Digest, Detail: detail})
			}
			return nil
		case err != nil:
			corrupt(Finding{Kind: KindBadBlob, Digest: b.Digest, Detail: err.Error()})
			return nil
		}
		if info.StoredSize != b.StoredSize || info.Size != b.Size {
			if !still(b) {
				return nil
			}
			corrupt(Finding{Kind: KindSizeMismatch, Digest: b.Digest,
				Detail: fmt.Sprintf("record %d/%d bytes, file %d/%d", b.Size, b.StoredSize, info.Size, info.StoredSize)})
			return nil
		}
		if opts.Verify && cfg.OpenBlob != nil && (opts.Sample <= 0 || opts.Sample >= 1 || rand.Float64() < opts.Sample) {
			n, err := verifyBlob(ctx, cfg, b)
			if err != nil {
				if still(b) {
					corrupt(Finding{Kind: KindBadBlob, Digest: b.Digest, Detail: err.Error()})
				}
				return nil
			}
			r.Verified++
			r.VerifiedBytes += n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gc: fsck blobs: %w", err)
	}

	// Manifests: repository, blobs, children; an active image's blobs in
	// the hot tier (unless a tier job of the repository is pending, which
	// brings them back).
	jobRepos := map[string]bool{}
	if err := db.WalkTierJobs(func(j *index.TierJob) error { jobRepos[j.Repo] = true; return nil }); err != nil {
		return nil, fmt.Errorf("gc: fsck tier jobs: %w", err)
	}
	err = db.WalkManifests(func(m *index.Manifest) error {
		r.Manifests++
		if !hasRepo[m.Repo] {
			corrupt(Finding{Kind: KindNoRepository, Repo: m.Repo, Digest: m.Digest})
		}
		for _, d := range m.Blobs {
			rec, err := db.Blob(d)
			if err == nil && rec.Tier != index.TierHot && m.Status == index.StatusActive && !jobRepos[m.Repo] {
				if coldBlob(db, m.Repo, m.Digest, d) {
					corrupt(Finding{Kind: KindColdBlob, Repo: m.Repo, Digest: m.Digest, Ref: string(d), Detail: "the image is active but the blob is in the " + rec.Tier.String() + " tier"})
				}
			}
			if errors.Is(err, index.ErrNotFound) {
				if opts.AllowSparse {
					continue
				}
				if ok, _ := db.HasManifest(m.Repo, m.Digest); ok {
					corrupt(Finding{Kind: KindDanglingBlob, Repo: m.Repo, Digest: m.Digest, Ref: string(d)})
				}
			} else if err != nil {
				corrupt(Finding{Kind: KindCorruptRecord, Digest: d, Detail: err.Error()})
			}
		}
		if !opts.AllowSparse {
			for _, c := range m.Children {
				if ok, err := db.HasManifest(m.Repo, c); err == nil && !ok {
					if still, _ := db.HasManifest(m.Repo, m.Digest); still {
						corrupt(Finding{Kind: KindDanglingChild, Repo: m.Repo, Digest: m.Digest, Ref: string(c)})
					}
				}
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("gc: fsck manifests: %w", err)
	}

	// Tags and referrer entries of every repository.
	for _, repo := range repos {
		tags, err := db.ListTags(repo, "", 0)
		if err != nil {
			return nil, fmt.Errorf("gc: fsck tags of %s: %w", repo, err)
		}
		r.Tags += len(tags)
		for _, t := range tags {
			d, err := db.Tag(repo, t)
			if err != nil {
				if !errors.Is(err, index.ErrNotFound) {
					corrupt(Finding{Kind: KindCorruptRecord, Repo: repo, Ref: t, Detail: err.Error()})
				}
				continue
			}
			if ok, _ := db.HasManifest(repo, d); !ok {
				if d2, err := db.Tag(repo, t); err == nil && d2 == d {
					corrupt(Finding{Kind: KindDanglingTag, Repo: repo, Digest: d, Ref: t})
				}
			}
		}
		err = db.ListManifests(repo, func(m *index.Manifest) error {
			refs, err := db.Referrers(repo, m.Digest)
			if err != nil {
				return err
			}
			for _, ref := range refs {
				if ok, _ := db.HasManifest(repo, ref.Digest); !ok {
					corrupt(Finding{Kind: KindDanglingReferrer, Repo: repo, Digest: m.Digest, Ref: string(ref.Digest)})
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("gc: fsck referrers of %s: %w", repo, err)
		}
	}

	// Scan records and jobs: each of an image the repository holds (they
	// go with their manifest, in its batch, and are written under the
	// repository's lock after the manifest is checked).
	for _, walk := range []func(func(string, digest.Digest, []byte) error) error{db.WalkScans, db.WalkScanJobs} {
		var gone [][2]string
		err := walk(func(repo string, d digest.Digest, _ []byte) error {
			if ok, _ := db.HasManifest(repo, d); !ok {
				gone = append(gone, [2]string{repo, string(d)})
			}
			return ctx.Err()
		})
		if err != nil {
			return nil, fmt.Errorf("gc: fsck scans: %w", err)
		}
		for _, g := range gone {
			corrupt(Finding{Kind: KindDanglingScan, Repo: g[0], Digest: digest.Digest(g[1])})
		}
	}

	// Links, and the reverse link index both ways: each link has its
	// entry and each entry its link (they are written and deleted in one
	// batch, so a pair seen half is re-read once: a link made or removed
	// during the walk is not a finding).
	unpaired := func(repo string, d digest.Digest) bool {
		fwd, ferr := db.Linked(repo, d)
		rev, rerr := db.ReverseLinked(repo, d)
		return ferr == nil && rerr == nil && fwd != rev
	}
	err = db.WalkLinks(func(repo string, d digest.Digest, _ time.Time) error {
		r.Links++
		if _, err := db.Blob(d); errors.Is(err, index.ErrNotFound) {
			if ok, _ := db.Linked(repo, d); ok {
				corrupt(Finding{Kind: KindDanglingLink, Repo: repo, Digest: d})
			}
		}
		if ok, err := db.ReverseLinked(repo, d); err == nil && !ok && unpaired(repo, d) {
			corrupt(Finding{Kind: KindUnpairedLink, Repo: repo, Digest: d, Detail: "a link without its reverse index entry"})
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("gc: fsck links: %w", err)
	}
	err = db.WalkReverseLinks(func(d digest.Digest, repo string) error {
		if ok, err := db.Linked(repo, d); err == nil && !ok && unpaired(repo, d) {
			corrupt(Finding{Kind: KindUnpairedLink, Repo: repo, Digest: d, Detail: "a reverse index entry without its link"})
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("gc: fsck reverse links: %w", err)
	}

	// Orphan files (no record, or a record naming the other tier) and
	// uploads, in every tier.
	for _, ts := range tiers {
		err = ts.store.Walk(ctx, func(d digest.Digest, size int64) error {
			r.BlobFiles++
			rec, err := db.Blob(d)
			if errors.Is(err, index.ErrNotFound) || err == nil && rec.Tier != ts.tier {
				detail := fmt.Sprintf("%d bytes", size)
				if ts.tier != index.TierHot {
					detail += ", " + ts.tier.String() + " tier"
				}
				r.Orphans = append(r.Orphans, Finding{Kind: KindOrphanFile, Digest: d, Detail: detail})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("gc: fsck files (%s tier): %w", ts.tier, err)
		}
		ids, err := ts.store.Uploads(ctx)
		if err != nil {
			return nil, fmt.Errorf("gc: fsck uploads: %w", err)
		}
		for _, id := range ids {
			if _, err := db.Upload(id); err != nil {
				r.Orphans = append(r.Orphans, Finding{Kind: KindOrphanUpload, Ref: id})
			}
		}
	}
	if err := db.ListUploads(func(*index.Upload) error { r.Uploads++; return nil }); err != nil {
		return nil, fmt.Errorf("gc: fsck uploads: %w", err)
	}
	r.Duration = time.Since(t0)
	cfg.Logger.Info("fsck finished", "component", "gc", "clean", r.Clean(), "corrupt", len(r.Corrupt), "orphans", len(r.Orphans),
		"blobs", r.BlobRecords, "verified", r.Verified, "manifests", r.Manifests, "duration", r.Duration)
	return r, nil
}

// coldBlob reports, reading again, whether manifest md of repo is still
// active and its blob d, linked to repo, still outside the hot tier, with
// no tier job of the repository pending: a finding made while a move or a
// push ran is not reported.
func coldBlob(db *index.DB, repo string, md, d digest.Digest) bool {
	m, err := db.ManifestMeta(repo, md)
	if err != nil || m.Status != index.StatusActive {
		return false
	}
	rec, err := db.Blob(d)
	if err != nil || rec.Tier == index.TierHot {
		return false
	}
	if linked, err := db.Linked(repo, d); err != nil || !linked {
		return false // not pullable through repo anyway (its link was deleted)
	}
	pending := false
	_ = db.WalkTierJobs(func(j *index.TierJob) error {
		if j.Repo == repo {
			pending = true
			return io.EOF
		}
		return nil
	})
	return !pending
}

// verifyBlob reads a blob whole and checks its digest and size.
func verifyBlob(ctx context.Context, cfg FsckConfig, b *index.Blob) (int64, error) {
	rc, err := cfg.OpenBlob(ctx, b)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	v := b.Digest.Verifier()
	n, err := io.Copy(v, rc)
	if err != nil {
		return n, err
	}
	if n != b.Size {
		return n, fmt.Errorf("read %d bytes, record says %d", n, b.Size)
	}
	if !v.Verified() {
		return n, fmt.Errorf("content does not match its digest")
	}
	return n, nil
}
