package gc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/index"
)

// Defaults of Options.
const (
	// DefaultGrace is how old an unreferenced blob (its record and its
	// newest link) must be before a collection removes it.
	DefaultGrace = time.Hour
	// DefaultUploadTTL is how long an upload session may stay idle before a
	// collection expires it.
	DefaultUploadTTL = 7 * 24 * time.Hour
	// sweepBatch is the number of blobs swept under one synced index batch.
	sweepBatch = 64
)

// ErrRunning is returned when a collection is asked for while another runs.
var ErrRunning = errors.New("gc: a collection is already running")

// Options tune one collection.
type Options struct {
	// Grace spares unreferenced blobs whose record or newest link is younger
	// than this, and orphan files younger than this. Zero means DefaultGrace
	// (1 h); a negative value means no grace at all (offline use and tests).
	Grace time.Duration
	// DryRun plans only: the report tells what would go; nothing changes.
	DryRun bool
	// UploadTTL expires upload sessions idle longer than this. Zero means
	// DefaultUploadTTL (7 days); negative disables expiry.
	UploadTTL time.Duration
}

func (o Options) grace() time.Duration {
	switch {
	case o.Grace == 0:
		return DefaultGrace
	case o.Grace < 0:
		return 0
	}
	return o.Grace
}

func (o Options) uploadTTL() time.Duration {
	if o.UploadTTL == 0 {
		return DefaultUploadTTL
	}
	return o.UploadTTL
}

// Config connects a Collector to the store it collects. DB, Blobs and
// LockDigest are required.
type Config struct {
	// DB is the store's index.
	DB *index.DB
	// Blobs is the store's blob backend (the hot tier), through the
	// roles a collection uses only.
	Blobs blob.Inventory
	// Archive is the archive tier's blob backend; nil when the store has
	// none. A blob record's Tier says which of the two holds its file; a
	// file in the other one is an orphan.
	Archive blob.Inventory
	// LockDigest takes the engine's lock for digest d (the one upload commit
	// and mount hold around their record check and index write) and returns
	// its release.
	LockDigest func(d digest.Digest) (unlock func())
	// LockDigests, if set, takes the locks of several digests at once
	// (without deadlock, whatever their order or collisions) so that a sweep
	// batch shares one synced commit. Nil: one digest at a time.
	LockDigests func(ds []digest.Digest) (unlock func())
	// UploadLive, if set, reports whether upload id has a live handle in
	// this process; such sessions are never expired, and their files (also
	// those of writers with no session record, such as the archive tier's
	// moves) are never orphans.
	UploadLive func(id string) bool
	// LockUpload, if set, takes the lock that resuming upload id holds
	// while it reopens the session, and returns its release. Expiry holds
	// it across its last look at the session and the removal, so that a
	// session resumed after the plan is never expired under its user.
	LockUpload func(id string) (unlock func())
	// Shaded, if set, reports whether blob d was marked referenced by a
	// writer the in-process barrier (Shade) does not see: another process
	// sharing the store. The sweep asks it under d's lock, after its
	// plan, and spares d when it reports true.
	Shaded func(d digest.Digest) bool
	// Logger receives the collection's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Collector is one online collection. Create it with NewCollector, make it
// reachable to the write barrier (the engine's PutManifest, upload commit
// and mount call Shade once it is) and wait for operations that started
// before to finish, then Run (or Plan and Execute).
type Collector struct {
	cfg  Config
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	cond     *sync.Cond
	shaded   map[digest.Digest]struct{}
	sweeping map[digest.Digest]struct{}
}

// NewCollector prepares a collection.
func NewCollector(cfg Config, opts Options) *Collector {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Collector{
		cfg: cfg, opts: opts, log: cfg.Logger.With("component", "gc"),
		shaded: map[digest.Digest]struct{}{}, sweeping: map[digest.Digest]struct{}{},
	}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Shade is the write barrier: it records that the digests are about to be
// referenced (by a manifest being put, an upload being committed, a blob
// being mounted), so that this collection will not sweep them. It returns
// only once no sweep of any of them is in flight, so that the caller's
// following check of the blob (its link or record) sees either the blob or
// its removal, never a blob about to disappear. Safe for concurrent use;
// cheap when nothing is being swept.
func (c *Collector) Shade(ds ...digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range ds {
		c.shaded[d] = struct{}{}
		for {
			if _, busy := c.sweeping[d]; !busy {
				break
			}
			c.cond.Wait()
		}
	}
}

// Candidate is an unreferenced blob a plan would sweep.
type Candidate struct {
	Digest digest.Digest `json:"digest"`
	// Size is the blob's logical size; StoredSize its file's size.
	Size       int64 `json:"size"`
	StoredSize int64 `json:"storedSize"`
	// CreatedAt is the record's time.
	CreatedAt time.Time `json:"createdAt"`
	// Repos are the repositories that link it (their links go with it).
	Repos []string `json:"repos,omitempty"`
}

// OrphanFile is a blob file without a blob record, or in the tier its
// record does not name.
type OrphanFile struct {
	Digest     digest.Digest `json:"digest"`
	StoredSize int64         `json:"storedSize"`
	// Tier is the tier the file is in.
	Tier index.Tier `json:"-"`
}

// tierStore is one tier's blob files.
type tierStore struct {
	tier  index.Tier
	store blob.Inventory
}

// tiers returns the blob stores of the configured tiers.
func tiersOf(hot, archive blob.Inventory) []tierStore {
	ts := []tierStore{{index.TierHot, hot}}
	if archive != nil {
		ts = append(ts, tierStore{index.TierArchive, archive})
	}
	return ts
}

func (c *Collector) tiers() []tierStore { return tiersOf(c.cfg.Blobs, c.cfg.Archive) }

// store returns the blob store of tier t, nil when there is none.
func (c *Collector) store(t index.Tier) blob.Inventory {
	for _, ts := range c.tiers() {
		if ts.tier == t {
			return ts.store
		}
	}
	return nil
}

// Plan is what a collection would do: the output of its mark phase.
type Plan struct {
	// Start is when the collection started; Cutoff is Start minus the grace.
	Start  time.Time `json:"start"`
	Cutoff time.Time `json:"cutoff"`
	// Manifests, Links and BlobRecords are the records walked; Marked is
	// the number of distinct blob digests some manifest references.
	Manifests   int `json:"manifests"`
	Links       int `json:"links"`
	BlobRecords int `json:"blobRecords"`
	Marked      int `json:"marked"`
	// Blobs are the unreferenced blobs older than the grace.
	Blobs []Candidate `json:"blobs"`
	// OrphanFiles are blob files with no record, older than the grace.
	OrphanFiles []OrphanFile `json:"orphanFiles"`
	// OrphanUploads are upload files with no session record, older than
	// the grace.
	OrphanUploads []string `json:"orphanUploads"`
	// StaleUploads are sessions idle longer than the upload TTL.
	StaleUploads []string `json:"staleUploads"`
	// UploadIdleBefore is the cutoff that made them stale: a session
	// used since (as Execute checks again) is kept.
	UploadIdleBefore time.Time `json:"uploadIdleBefore,omitzero"`
	// MarkDuration and PlanDuration time the phases.
	MarkDuration time.Duration `json:"markDuration"`
	PlanDuration time.Duration `json:"planDuration"`
}

// Bytes returns the stored bytes the plan would free (blobs and orphan
// files).
func (p *Plan) Bytes() int64 {
	var n int64
	for _, b := range p.Blobs {
		n += b.StoredSize
	}
	for _, o := range p.OrphanFiles {
		n += o.StoredSize
	}
	return n
}

// WriteText prints the plan for people: one line per item, then totals.
func (p *Plan) WriteText(w io.Writer) error {
	var err error
	pr := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	for _, b := range p.Blobs {
		pr("blob\t%s\t%d bytes\tcreated %s\trepos %v\n", b.Digest, b.StoredSize, b.CreatedAt.Format(time.RFC3339), b.Repos)
	}
	for _, o := range p.OrphanFiles {
		if o.Tier != index.TierHot {
			pr("orphan-file\t%s\t%d bytes\t%s tier\n", o.Digest, o.StoredSize, o.Tier)
			continue
		}
		pr("orphan-file\t%s\t%d bytes\n", o.Digest, o.StoredSize)
	}
	for _, id := range p.OrphanUploads {
		pr("orphan-upload\t%s\n", id)
	}
	for _, id := range p.StaleUploads {
		pr("stale-upload\t%s\n", id)
	}
	pr("total: %d blobs, %d orphan files, %d orphan uploads, %d stale uploads, %d bytes (of %d blob records, %d marked, %d manifests)\n",
		len(p.Blobs), len(p.OrphanFiles), len(p.OrphanUploads), len(p.StaleUploads), p.Bytes(), p.BlobRecords, p.Marked, p.Manifests)
	return err
}

// Report is the outcome of a collection, in numbers a metrics exporter can
// take as they are.
type Report struct {
	// DryRun is set when nothing was changed.
	DryRun bool `json:"dryRun"`
	// Plan is the mark phase's result.
	Plan *Plan `json:"plan"`
	// BlobsSwept and BytesFreed count what the sweep removed (stored bytes).
	BlobsSwept int   `json:"blobsSwept"`
	BytesFreed int64 `json:"bytesFreed"`
	// BlobsSpared counts candidates the write barrier or a re-check saved.
	BlobsSpared int `json:"blobsSpared"`
	// OrphanFilesRemoved and OrphanBytesFreed count orphan blob files.
	OrphanFilesRemoved int   `json:"orphanFilesRemoved"`
	OrphanBytesFreed   int64 `json:"orphanBytesFreed"`
	// OrphanUploadsRemoved counts upload files without a session.
	OrphanUploadsRemoved int `json:"orphanUploadsRemoved"`
	// UploadsExpired counts sessions expired for idleness.
	UploadsExpired int `json:"uploadsExpired"`
	// ShreddedBlobs counts blobs whose every data-key wrap is under a
	// destroyed key (crypto-shredded): removed, or in a dry run, listed.
	// The engine fills it in; the collector knows nothing of keys.
	ShreddedBlobs int `json:"shreddedBlobs"`
	// Errors counts items that failed (logged) and were left for next time.
	Errors int `json:"errors"`
	// MarkDuration, PlanDuration, SweepDuration and Duration time the phases
	// and the whole collection.
	MarkDuration  time.Duration `json:"markDuration"`
	PlanDuration  time.Duration `json:"planDuration"`
	SweepDuration time.Duration `json:"sweepDuration"`
	Duration      time.Duration `json:"duration"`
}

// Run plans and, unless Options.DryRun, executes the collection.
func (c *Collector) Run(ctx context.Context) (Report, error) {
	t0 := time.Now()
	p, err := c.Plan(ctx)
	if err != nil {
		return Report{}, err
	}
	var r Report
	if c.opts.DryRun {
		r = Report{DryRun: true, Plan: p, MarkDuration: p.MarkDuration, PlanDuration: p.PlanDuration}
	} else if r, err = c.Execute(ctx, p); err != nil {
		return r, err
	}
	r.Duration = time.Since(t0)
	c.log.Info("gc finished", "dryRun", r.DryRun, "blobsSwept", r.BlobsSwept, "bytesFreed", r.BytesFreed,
		"candidates", len(p.Blobs), "spared", r.BlobsSpared, "orphanFiles", r.OrphanFilesRemoved,
		"orphanUploads", r.OrphanUploadsRemoved, "uploadsExpired", r.UploadsExpired, "errors", r.Errors,
		"mark", r.MarkDuration, "plan", r.PlanDuration, "sweep", r.SweepDuration, "duration", r.Duration)
	return r, nil
}

// dkey is a compact set key for a digest: its first 32 hash bytes. Two
// digests sharing one only make gc keep more (the marked set) or unlink a
// link that does not exist (the link map), never remove a referenced blob.
type dkey [32]byte

func keyOf(d digest.Digest) dkey {
	var k dkey
	enc := d.Encoded()
	if len(enc) >= 64 {
		if _, err := hex.Decode(k[:], []byte(enc[:64])); err == nil {
			if d.Algorithm() != digest.SHA256 {
				k[0] ^= 0x5a
			}
			return k
		}
	}
	return sha256.Sum256([]byte(d))
}

type linkInfo struct {
	newest time.Time
	repos  []string
}

// Plan runs the mark phase and lists what the sweep would remove; it
// changes nothing.
func (c *Collector) Plan(ctx context.Context) (*Plan, error) {
	start := c.cfg.Now()
	p := &Plan{Start: start, Cutoff: start.Add(-c.opts.grace())}
	t0 := time.Now()

	// 1. Mark: every manifest record of every repository is a root; its
	// config and layers (Blobs) are live. Children and referrers are
	// manifest records themselves, walked in their own right.
	marked := map[dkey]struct{}{}
	err := c.cfg.DB.WalkManifests(func(m *index.Manifest) error {
		p.Manifests++
		for _, d := range m.Blobs {
			marked[keyOf(d)] = struct{}{}
		}
		if p.Manifests%4096 == 0 {
			return ctx.Err()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gc: mark: %w", err)
	}
	// Derived blobs (the FUSE view's uncompressed tars of compressed
	// layers) live as long as their layer.
	err = c.cfg.DB.WalkLayerDerived(func(layer, derived digest.Digest) error {
		if _, ok := marked[keyOf(layer)]; ok {
			marked[keyOf(derived)] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gc: mark derived: %w", err)
	}
	p.Marked = len(marked)

	// 2. Links of unmarked blobs: newest link time and repositories.
	links := map[dkey]*linkInfo{}
	err = c.cfg.DB.WalkLinks(func(repo string, d digest.Digest, at time.Time) error {
		p.Links++
		k := keyOf(d)
		if _, ok := marked[k]; ok {
			return nil
		}
		li := links[k]
		if li == nil {
			li = &linkInfo{}
			links[k] = li
		}
		if at.After(li.newest) {
			li.newest = at
		}
		li.repos = append(li.repos, repo)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gc: mark links: %w", err)
	}
	p.MarkDuration = time.Since(t0)
	t1 := time.Now()

	// 3. Candidates: unmarked records older than the cutoff whose every
	// link is too.
	err = c.cfg.DB.WalkBlobs(func(b *index.Blob) error {
		p.BlobRecords++
		k := keyOf(b.Digest)
		if _, ok := marked[k]; ok {
			return nil
		}
		if !b.CreatedAt.Before(p.Cutoff) {
			return nil
		}
		cand := Candidate{Digest: b.Digest, Size: b.Size, StoredSize: b.StoredSize, CreatedAt: b.CreatedAt}
		if li := links[k]; li != nil {
			if !li.newest.Before(p.Cutoff) {
				return nil
			}
			cand.Repos = li.repos
		}
		p.Blobs = append(p.Blobs, cand)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gc: plan blobs: %w", err)
	}
	marked, links = nil, nil

	// 4. Orphan blob files (a crash between a file's rename and its
	// record, or between a sweep's commit and its file removal), in each
	// tier: a file whose record is missing or names the other tier (a
	// crash in the middle of a move between tiers).
	for _, ts := range c.tiers() {
		err = ts.store.Walk(ctx, func(d digest.Digest, size int64) error {
			rec, err := c.cfg.DB.Blob(d)
			switch {
			case err == nil && rec.Tier == ts.tier:
				return nil
			case err != nil && !errors.Is(err, index.ErrNotFound):
				return err
			}
			if c.fileOlder(ctx, ts.store, d, p.Cutoff) {
				p.OrphanFiles = append(p.OrphanFiles, OrphanFile{Digest: d, StoredSize: size, Tier: ts.tier})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("gc: plan orphan files (%s tier): %w", ts.tier, err)
		}
	}

	// 5. Upload files without a session (nor a live writer), sessions
	// idle past the TTL.
	for _, ts := range c.tiers() {
		ids, err := ts.store.Uploads(ctx)
		if err != nil {
			return nil, fmt.Errorf("gc: plan uploads: %w", err)
		}
		for _, id := range ids {
			if _, err := c.cfg.DB.Upload(id); err == nil {
				continue
			} else if !errors.Is(err, index.ErrNotFound) && !errors.Is(err, index.ErrInvalidKey) {
				return nil, fmt.Errorf("gc: plan uploads: %w", err)
			}
			if c.cfg.UploadLive != nil && c.cfg.UploadLive(id) {
				continue
			}
			if c.uploadOlder(ctx, ts.store, id, p.Cutoff) {
				p.OrphanUploads = append(p.OrphanUploads, id)
			}
		}
	}
	if ttl := c.opts.uploadTTL(); ttl > 0 {
		idle := start.Add(-ttl)
		p.UploadIdleBefore = idle
		err = c.cfg.DB.ListUploads(func(u *index.Upload) error {
			if uploadIdle(u, idle) && (c.cfg.UploadLive == nil || !c.cfg.UploadLive(u.ID)) {
				p.StaleUploads = append(p.StaleUploads, u.ID)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("gc: plan stale uploads: %w", err)
		}
	}
	p.PlanDuration = time.Since(t1)
	return p, nil
}

// fileOlder reports whether blob d was stored before cutoff. A blob whose
// stored header is damaged is aged too (Stat still gives its time).
func (c *Collector) fileOlder(ctx context.Context, s blob.Inventory, d digest.Digest, cutoff time.Time) bool {
	info, err := s.Stat(ctx, d)
	if err != nil && !errors.Is(err, blob.ErrCorrupt) {
		return false
	}
	return !info.ModTime.IsZero() && info.ModTime.Before(cutoff)
}

// uploadOlder reports whether upload id was last written before cutoff.
func (c *Collector) uploadOlder(ctx context.Context, s blob.Inventory, id string, cutoff time.Time) bool {
	t, err := s.UploadModTime(ctx, id)
	return err == nil && t.Before(cutoff)
}

// Execute sweeps what p lists. Each batch of candidates is swept under the
// engine's digest locks: candidates shaded by the write barrier since the
// plan, or whose record changed, are spared; the others lose their record
// and every link (both its keys: the link and its reverse index entry) in
// one synced index batch, then their files. Execute may be given a plan
// made by this collector only.
func (c *Collector) Execute(ctx context.Context, p *Plan) (r Report, err error) {
	r = Report{Plan: p, MarkDuration: p.MarkDuration, PlanDuration: p.PlanDuration}
	t0 := time.Now()
	defer func() { r.SweepDuration = time.Since(t0) }()
	for i := 0; i < len(p.Blobs); {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		n := 1
		if c.cfg.LockDigests != nil {
			n = min(sweepBatch, len(p.Blobs)-i)
		}
		c.sweep(ctx, p, p.Blobs[i:i+n], &r)
		i += n
	}
	for _, o := range p.OrphanFiles {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		c.removeOrphan(ctx, p, o, &r)
	}
	for _, id := range p.OrphanUploads {
		if _, err := c.cfg.DB.Upload(id); err == nil || (c.cfg.UploadLive != nil && c.cfg.UploadLive(id)) {
			continue
		}
		for _, ts := range c.tiers() {
			if !c.uploadOlder(ctx, ts.store, id, p.Cutoff) {
				continue
			}
			if err := ts.store.RemoveUpload(id); err != nil {
				r.Errors++
				c.log.Warn("gc: removing orphan upload file", "upload", id, "tier", ts.tier, "err", err)
				continue
			}
			r.OrphanUploadsRemoved++
		}
	}
	for _, id := range p.StaleUploads {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		expired, err := c.expireUpload(id, p.UploadIdleBefore)
		if err != nil {
			r.Errors++
			c.log.Warn("gc: expiring upload", "upload", id, "err", err)
			continue
		}
		if expired {
			r.UploadsExpired++
		}
	}
	return r, nil
}

// uploadIdle reports whether session u was last started or written
// before cutoff.
func uploadIdle(u *index.Upload, cutoff time.Time) bool {
	last := u.UpdatedAt
	if u.StartedAt.After(last) {
		last = u.StartedAt
	}
	return last.Before(cutoff)
}

// expireUpload removes session id if it is still idle since before
// cutoff and has no live handle, under the session's lock (see
// Config.LockUpload). It reports whether it removed it.
func (c *Collector) expireUpload(id string, cutoff time.Time) (bool, error) {
	if c.cfg.LockUpload != nil {
		defer c.cfg.LockUpload(id)()
	}
	u, err := c.cfg.DB.Upload(id)
	if errors.Is(err, index.ErrNotFound) || errors.Is(err, index.ErrInvalidKey) {
		return false, nil // finished or cancelled since the plan
	}
	if err != nil {
		return false, err
	}
	if !cutoff.IsZero() && !uploadIdle(u, cutoff) {
		return false, nil // resumed since the plan
	}
	if c.cfg.UploadLive != nil && c.cfg.UploadLive(id) {
		return false, nil
	}
	b := c.cfg.DB.NewBatch()
	defer b.Close()
	if err := b.DeleteUpload(id); err != nil {
		return false, err
	}
	if err := b.Commit(true); err != nil {
		return false, err
	}
	return true, c.cfg.Blobs.RemoveUpload(id)
}

// sweep removes one batch of candidates.
func (c *Collector) sweep(ctx context.Context, p *Plan, batch []Candidate, r *Report) {
	ds := make([]digest.Digest, len(batch))
	for i, b := range batch {
		ds[i] = b.Digest
	}
	var unlock func()
	if len(batch) == 1 || c.cfg.LockDigests == nil {
		unlock = c.cfg.LockDigest(ds[0])
	} else {
		unlock = c.cfg.LockDigests(ds)
	}
	defer unlock()

	// Under the locks: drop the shaded, claim the rest as in flight so
	// that Shade waits for their removal to finish.
	c.mu.Lock()
	var live []Candidate
	for _, b := range batch {
		if _, ok := c.shaded[b.Digest]; ok {
			r.BlobsSpared++
			continue
		}
		c.sweeping[b.Digest] = struct{}{}
		live = append(live, b)
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		for _, b := range live {
			delete(c.sweeping, b.Digest)
		}
		c.cond.Broadcast()
		c.mu.Unlock()
	}()

	// Re-check each record: a blob swept and pushed again since the plan
	// has a new CreatedAt.
	kept := live[:0:0]
	for _, b := range live {
		if c.cfg.Shaded != nil && c.cfg.Shaded(b.Digest) {
			r.BlobsSpared++
			continue
		}
		rec, err := c.cfg.DB.Blob(b.Digest)
		if err != nil || !rec.CreatedAt.Equal(b.CreatedAt) || !rec.CreatedAt.Before(p.Cutoff) {
			r.BlobsSpared++
			continue
		}
		kept = append(kept, b)
	}
	if len(kept) == 0 {
		return
	}
	bt := c.cfg.DB.NewBatch()
	defer bt.Close()
	for _, b := range kept {
		if c.hasLayerTOC(b.Digest) {
			// The layer's table of contents and derived record go with it
			// (the derived blob itself at a later collection).
			if err := bt.DeleteLayerTOC(b.Digest); err != nil {
				r.Errors++
				c.log.Warn("gc: sweep", "digest", b.Digest, "err", err)
				return
			}
		}
		if err := bt.DeleteBlob(b.Digest); err != nil {
			r.Errors++
			c.log.Warn("gc: sweep", "digest", b.Digest, "err", err)
			return
		}
		repos, err := c.linkedRepos(b)
		if err != nil {
			r.Errors++
			c.log.Warn("gc: sweep", "digest", b.Digest, "err", err)
			return
		}
		for _, repo := range repos {
			if err := bt.DeleteLink(repo, b.Digest); err != nil {
				r.Errors++
				c.log.Warn("gc: sweep", "digest", b.Digest, "err", err)
				return
			}
		}
	}
	if err := bt.Commit(true); err != nil {
		r.Errors += len(kept)
		c.log.Warn("gc: sweep commit", "blobs", len(kept), "err", err)
		return
	}
	for _, b := range kept {
		// The file is in the tier the record named; a copy left in the
		// other by a move cut short goes too.
		for _, ts := range c.tiers() {
			if err := ts.store.Delete(ctx, b.Digest); err != nil && !errors.Is(err, blob.ErrNotFound) {
				// The record is gone: the file is an orphan the next
				// collection removes.
				r.Errors++
				c.log.Warn("gc: removing blob file", "digest", b.Digest, "tier", ts.tier, "err", err)
			}
		}
		r.BlobsSwept++
		r.BytesFreed += b.StoredSize
		c.log.Debug("gc: swept", "digest", b.Digest, "bytes", b.StoredSize)
	}
}

// linkedRepos returns the repositories whose links of candidate b go
// with it: those the plan saw, and those the reverse link index names
// now (read under b's lock), so that both keys of every link go, also
// of a link whose one key was lost (fsck's unpaired-link).
func (c *Collector) linkedRepos(b Candidate) ([]string, error) {
	repos := slices.Clone(b.Repos)
	err := c.cfg.DB.LinkedRepositories(b.Digest, func(repo string) error {
		if !slices.Contains(b.Repos, repo) {
			repos = append(repos, repo)
		}
		return nil
	})
	return repos, err
}

// hasLayerTOC reports whether the index holds a table of contents or a
// derived record for blob d (so that sweeping d needs no range deletion
// when it has neither, which is the common case).
func (c *Collector) hasLayerTOC(d digest.Digest) bool {
	if _, err := c.cfg.DB.LayerDerived(d); !errors.Is(err, index.ErrNotFound) {
		return true
	}
	_, err := c.cfg.DB.LayerTOC(d)
	return !errors.Is(err, index.ErrNotFound)
}

// removeOrphan removes one orphan file under its digest lock, after
// checking again that no record names it in its tier and that it is still
// old.
func (c *Collector) removeOrphan(ctx context.Context, p *Plan, o OrphanFile, r *Report) {
	unlock := c.cfg.LockDigest(o.Digest)
	defer unlock()
	s := c.store(o.Tier)
	if s == nil {
		return
	}
	if rec, err := c.cfg.DB.Blob(o.Digest); err == nil && rec.Tier == o.Tier || err != nil && !errors.Is(err, index.ErrNotFound) {
		return
	}
	if !c.fileOlder(ctx, s, o.Digest, p.Cutoff) {
		return
	}
	if err := s.Delete(ctx, o.Digest); err != nil {
		if !errors.Is(err, blob.ErrNotFound) && !errors.Is(err, fs.ErrNotExist) {
			r.Errors++
			c.log.Warn("gc: removing orphan file", "digest", o.Digest, "err", err)
		}
		return
	}
	r.OrphanFilesRemoved++
	r.OrphanBytesFreed += o.StoredSize
}

// SortedDigests returns the digests of the plan's candidates in order (for
// printing and tests).
func (p *Plan) SortedDigests() []digest.Digest {
	out := make([]digest.Digest, len(p.Blobs))
	for i, b := range p.Blobs {
		out[i] = b.Digest
	}
	slices.Sort(out)
	return out
}
