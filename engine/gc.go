package engine

// Garbage collection: the engine's side of package gc (see docs/gc.md).
// The engine owns the write barrier (shade, gcEnter), the digest locks a
// sweep takes, and the schedulers of collections and lifecycle policies.

import (
	"context"
	"errors"
	"io"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/gc"
	"github.com/berthstore/berth/index"
)

// ErrGCRunning is returned when a collection is asked for while another
// runs.
var ErrGCRunning = errors.New("engine: a collection is already running")

// Defaults of GCOptions.
const (
	// DefaultGCGrace is how old an unreferenced blob (its record and its
	// newest link) must be before a collection removes it.
	DefaultGCGrace = time.Hour
	// DefaultUploadTTL is how long an upload session may stay idle before
	// a collection expires it.
	DefaultUploadTTL = 7 * 24 * time.Hour
)

// GCOptions tune one collection.
type GCOptions struct {
	// Grace spares unreferenced blobs whose record or newest link is
	// younger than this, and orphan files younger than this. Zero means
	// DefaultGCGrace (1 h); a negative value means no grace at all
	// (offline use and tests).
	Grace time.Duration
	// DryRun plans only: the report tells what would go; nothing changes.
	DryRun bool
	// UploadTTL expires upload sessions idle longer than this. Zero means
	// Options.UploadTTL, else DefaultUploadTTL (7 days); negative
	// disables expiry.
	UploadTTL time.Duration
}

// GCReport is the outcome of a collection, in numbers a metrics exporter
// can take as they are.
type GCReport struct {
	// DryRun is set when nothing was changed.
	DryRun bool `json:"dryRun"`
	// Plan is the mark phase's result.
	Plan *GCPlan `json:"plan"`
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
	ShreddedBlobs int `json:"shreddedBlobs"`
	// LayerRecords counts the layer tables of contents and derived
	// records of blobs the store no longer holds (SweepLayerRecords):
	// removed, or in a dry run, counted. The engine's own: package gc's
	// report has no such field, so it is left out when zero.
	LayerRecords int `json:"layerRecords,omitempty"`
	// Errors counts items that failed (logged) and were left for next time.
	Errors int `json:"errors"`
	// MarkDuration, PlanDuration, SweepDuration and Duration time the phases
	// and the whole collection.
	MarkDuration  time.Duration `json:"markDuration"`
	PlanDuration  time.Duration `json:"planDuration"`
	SweepDuration time.Duration `json:"sweepDuration"`
	Duration      time.Duration `json:"duration"`
}

// GCPlan is what a collection would do: the output of its mark phase.
type GCPlan struct {
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
	Blobs []GCCandidate `json:"blobs"`
	// OrphanFiles are blob files with no record, older than the grace.
	OrphanFiles []GCOrphanFile `json:"orphanFiles"`
	// OrphanUploads are upload files with no session record, older than
	// the grace.
	OrphanUploads []string `json:"orphanUploads"`
	// StaleUploads are sessions idle longer than the upload TTL.
	StaleUploads []string `json:"staleUploads"`
	// UploadIdleBefore is the cutoff that made them stale: a session
	// used since is kept.
	UploadIdleBefore time.Time `json:"uploadIdleBefore,omitzero"`
	// MarkDuration and PlanDuration time the phases.
	MarkDuration time.Duration `json:"markDuration"`
	PlanDuration time.Duration `json:"planDuration"`
}

// GCCandidate is an unreferenced blob a plan would sweep.
type GCCandidate struct {
	Digest digest.Digest `json:"digest"`
	// Size is the blob's logical size; StoredSize its file's size.
	Size       int64 `json:"size"`
	StoredSize int64 `json:"storedSize"`
	// CreatedAt is the record's time.
	CreatedAt time.Time `json:"createdAt"`
	// Repos are the repositories that link it (their links go with it).
	Repos []string `json:"repos,omitempty"`
}

// GCOrphanFile is a blob file without a blob record, or in the tier its
// record does not name.
type GCOrphanFile struct {
	Digest     digest.Digest `json:"digest"`
	StoredSize int64         `json:"storedSize"`
	// Archive tells that the file is in the archive tier.
	Archive bool `json:"archive,omitempty"`
}

// Bytes returns the stored bytes the plan would free (blobs and orphan
// files).
func (p *GCPlan) Bytes() int64 { return p.gc().Bytes() }

// SortedDigests returns the digests of the plan's candidates in order
// (for printing and tests).
func (p *GCPlan) SortedDigests() []digest.Digest { return p.gc().SortedDigests() }

// WriteText prints the plan for people: one line per item, then totals.
func (p *GCPlan) WriteText(w io.Writer) error { return p.gc().WriteText(w) }

func (o GCOptions) gc() gc.Options {
	return gc.Options{Grace: o.Grace, DryRun: o.DryRun, UploadTTL: o.UploadTTL}
}

func gcReportOf(r gc.Report) GCReport {
	return GCReport{
		DryRun: r.DryRun, Plan: gcPlanOf(r.Plan),
		BlobsSwept: r.BlobsSwept, BytesFreed: r.BytesFreed, BlobsSpared: r.BlobsSpared,
		OrphanFilesRemoved: r.OrphanFilesRemoved, OrphanBytesFreed: r.OrphanBytesFreed,
		OrphanUploadsRemoved: r.OrphanUploadsRemoved, UploadsExpired: r.UploadsExpired,
		ShreddedBlobs: r.ShreddedBlobs, Errors: r.Errors,
		MarkDuration: r.MarkDuration, PlanDuration: r.PlanDuration, SweepDuration: r.SweepDuration, Duration: r.Duration,
	}
}

func gcPlanOf(p *gc.Plan) *GCPlan {
	if p == nil {
		return nil
	}
	out := &GCPlan{
		Start: p.Start, Cutoff: p.Cutoff, Manifests: p.Manifests, Links: p.Links, BlobRecords: p.BlobRecords, Marked: p.Marked,
		OrphanUploads: p.OrphanUploads, StaleUploads: p.StaleUploads, UploadIdleBefore: p.UploadIdleBefore,
		MarkDuration: p.MarkDuration, PlanDuration: p.PlanDuration,
	}
	if p.Blobs != nil {
		out.Blobs = make([]GCCandidate, len(p.Blobs))
		for i, b := range p.Blobs {
			out.Blobs[i] = GCCandidate(b)
		}
	}
	if p.OrphanFiles != nil {
		out.OrphanFiles = make([]GCOrphanFile, len(p.OrphanFiles))
		for i, o := range p.OrphanFiles {
			out.OrphanFiles[i] = GCOrphanFile{Digest: o.Digest, StoredSize: o.StoredSize, Archive: o.Tier == index.TierArchive}
		}
	}
	return out
}

// gc is p as package gc has it, for the functions it has already.
func (p *GCPlan) gc() *gc.Plan {
	out := &gc.Plan{
		Start: p.Start, Cutoff: p.Cutoff, Manifests: p.Manifests, Links: p.Links, BlobRecords: p.BlobRecords, Marked: p.Marked,
		OrphanUploads: p.OrphanUploads, StaleUploads: p.StaleUploads, UploadIdleBefore: p.UploadIdleBefore,
		MarkDuration: p.MarkDuration, PlanDuration: p.PlanDuration,
	}
	for _, b := range p.Blobs {
		out.Blobs = append(out.Blobs, gc.Candidate(b))
	}
	for _, o := range p.OrphanFiles {
		of := gc.OrphanFile{Digest: o.Digest, StoredSize: o.StoredSize}
		if o.Archive {
			of.Tier = index.TierArchive
		}
		out.OrphanFiles = append(out.OrphanFiles, of)
	}
	return out
}

// gcState is the engine's gc and lifecycle machinery.
type gcState struct {
	// running is the collection in progress (nil: none); the write
	// barrier shades through it.
	running atomic.Pointer[gc.Collector]
	// barrier is held for reading by every operation that may add a
	// reference to a blob, from its shade to its commit. A collection
	// takes it for writing once after publishing itself in running, so
	// that every operation that started before (and may not have seen
	// it) has finished before the mark begins.
	barrier sync.RWMutex
	// runMu serialises collections.
	runMu sync.Mutex

	pullMu sync.Mutex
	pulls  map[pullKey]time.Time
	// flushMu serialises flushes of the pull times, so that a flush
	// returns only once every pull noted before it is written, also when
	// another flush (the periodic one) took them first.
	flushMu sync.Mutex

	statsMu sync.Mutex
	stats   GCStats

	// lifecycleSched and gcSched are the schedules the options turned
	// on (nil: off); schedMu orders the read-modify-writes of their
	// stored state (schedule.go). lifecycleMu is held by a lifecycle run
	// (lifecycle_run.go).
	lifecycleSched, gcSched *scheduler
	schedMu                 sync.Mutex
	lifecycleMu             sync.Mutex
	// previews are the lifecycle policy previews under way (previews.go).
	previews previewState
}

// GCStats are cumulative gc and lifecycle figures since Open, for metrics
// (registryd exports them).
type GCStats struct {
	// Collections counts finished collections (dry runs excluded).
	Collections int64
	// BlobsSwept, BytesFreed, OrphanFilesRemoved and UploadsExpired sum
	// the collections' reports.
	BlobsSwept, OrphanFilesRemoved, UploadsExpired int64
	BytesFreed                                     int64
	// Last is the last collection's report (nil before the first).
	Last *GCReport
	// ImagesExpired counts images expired by lifecycle, by rule priority.
	ImagesExpired map[int]int64
	// ImagesArchived counts images archived by lifecycle transition
	// rules, by rule priority (on demand and scheduled runs alike).
	ImagesArchived map[int]int64

	// GCRuns counts collections by result: every collection (dry runs
	// excluded) that finished (RunOK) or failed (RunFailed), and the
	// scheduled ones that fell due while one ran (RunSkipped).
	GCRuns map[RunResult]int64
	// LastGCRun is when the last collection that ended (ok or failed)
	// started, and LastGCResult how it ended; zero before the first.
	LastGCRun    time.Time
	LastGCResult RunResult
	// LifecycleRuns counts the scheduled lifecycle runs by result.
	LifecycleRuns map[RunResult]int64
	// LastLifecycleRun is the report of the last scheduled lifecycle run
	// that ended (nil before the first).
	LastLifecycleRun *LifecycleRunReport
}

// GCStats returns a copy of the cumulative gc and lifecycle figures.
func (e *Engine) GCStats() GCStats {
	e.gcs.statsMu.Lock()
	defer e.gcs.statsMu.Unlock()
	s := e.gcs.stats
	s.ImagesExpired = maps.Clone(e.gcs.stats.ImagesExpired)
	if s.ImagesExpired == nil {
		s.ImagesExpired = map[int]int64{}
	}
	s.GCRuns = maps.Clone(e.gcs.stats.GCRuns)
	s.LifecycleRuns = maps.Clone(e.gcs.stats.LifecycleRuns)
	if r := s.LastLifecycleRun; r != nil {
		c := *r
		s.LastLifecycleRun = &c
	}
	s.ImagesArchived = maps.Clone(e.gcs.stats.ImagesArchived)
	if s.ImagesArchived == nil {
		s.ImagesArchived = map[int]int64{}
	}
	return s
}

// gcEnter opens a write-barrier section (see gcState.barrier); call the
// returned function when the operation's index batch is committed or
// abandoned.
func (e *Engine) gcEnter() func() {
	e.gcs.barrier.RLock()
	return e.gcs.barrier.RUnlock
}

// shade tells a running collection that ds are about to be referenced.
// No-op when no collection runs.
func (e *Engine) shade(ds ...digest.Digest) {
	if c := e.gcs.running.Load(); c != nil {
		c.Shade(ds...)
	}
}

func (e *Engine) collectorConfig() gc.Config {
	return gc.Config{
		DB:         e.db,
		Blobs:      e.hot,
		Archive:    e.archive,
		LockDigest: func(d digest.Digest) func() { return e.digestLocks.Lock(digestKey(d)) },
		LockDigests: func(ds []digest.Digest) func() {
			keys := make([]string, len(ds))
			for i, d := range ds {
				keys[i] = digestKey(d)
			}
			return e.digestLocks.LockMany(keys)
		},
		LockUpload: func(id string) func() { return e.digestLocks.Lock(uploadLockKey(id)) },
		UploadLive: func(id string) bool {
			e.tiers.mu.Lock()
			moving := e.tiers.live[id]
			e.tiers.mu.Unlock()
			e.upMu.Lock()
			defer e.upMu.Unlock()
			return moving || e.uploads[id] != nil
		},
		Logger: e.log,
		Now:    e.clock.Now,
	}
}

// CollectGarbage runs one online mark-and-sweep collection (docs/gc.md):
// pushes and pulls go on meanwhile. With opts.DryRun it only plans and the
// report's Plan lists what would go. A second call while one runs fails
// with ErrGCRunning.
func (e *Engine) CollectGarbage(ctx context.Context, opts GCOptions) (GCReport, error) {
	if err := e.checkOpen(); err != nil {
		return GCReport{}, err
	}
	if !e.gcs.runMu.TryLock() {
		return GCReport{}, ErrGCRunning
	}
	defer e.gcs.runMu.Unlock()
	if !opts.DryRun {
		// One collection across the replicas sharing the store.
		lctx, release, err := e.tryLease(ctx, leaseGC)
		if errors.Is(err, errLeaseHeld) {
			e.countRuns(ScheduleGC, RunSkipped, 1)
			e.log.Info("collection refused: another replica runs one")
			return GCReport{}, ErrGCRunning
		}
		if err != nil {
			return GCReport{}, err
		}
		defer release()
		ctx = lctx
	}
	return e.collectGarbageLocked(ctx, opts)
}

// collectGarbageLocked is CollectGarbage with gcState.runMu held.
func (e *Engine) collectGarbageLocked(ctx context.Context, opts GCOptions) (GCReport, error) {
	started := e.clock.Now()
	if opts.UploadTTL == 0 {
		opts.UploadTTL = e.opts.UploadTTL
	}
	cfg := e.collectorConfig()
	if e.coordinated() && !opts.DryRun {
		// Writers on other replicas mark what they reference in the
		// index (putShades); the sweep reads the marks under each
		// digest's lock. The marks of references the mark phase will
		// read go first.
		if err := e.dropShades(); err != nil {
			return GCReport{}, err
		}
		cfg.Shaded = e.shaded
	}
	c := gc.NewCollector(cfg, opts.gc())
	if !opts.DryRun {
		e.gcs.running.Store(c)
		defer e.gcs.running.Store(nil)
		// Wait for the operations that may have missed the barrier.
		e.gcs.barrier.Lock()
		e.gcs.barrier.Unlock() //nolint:staticcheck // an empty critical section is the point
	}
	// Crypto-shredded blobs (every wrap under a destroyed key) go first:
	// no read can succeed, whatever references them.
	shredded := 0
	if opts.DryRun {
		err := e.ShreddedBlobs(ctx, func(digest.Digest) error { shredded++; return nil })
		if err != nil {
			return GCReport{}, err
		}
	} else {
		n, err := e.SweepShredded(ctx)
		if err != nil {
			return GCReport{}, err
		}
		shredded = n
	}
	gr, err := c.Run(ctx)
	r := gcReportOf(gr)
	r.ShreddedBlobs = shredded
	if err == nil {
		// What the shred sweep or a swept layer left of a layer's file list.
		r.LayerRecords, err = e.SweepLayerRecords(ctx, opts.DryRun)
	}
	if !opts.DryRun && ctx.Err() == nil {
		result := RunOK
		if err != nil {
			result = RunFailed
		}
		e.countRuns(ScheduleGC, result, 1)
		e.gcs.statsMu.Lock()
		e.gcs.stats.LastGCRun, e.gcs.stats.LastGCResult = started, result
		e.gcs.statsMu.Unlock()
	}
	if err == nil && !r.DryRun {
		e.gcs.statsMu.Lock()
		st := &e.gcs.stats
		st.Collections++
		st.BlobsSwept += int64(r.BlobsSwept)
		st.BytesFreed += r.BytesFreed + r.OrphanBytesFreed
		st.OrphanFilesRemoved += int64(r.OrphanFilesRemoved)
		st.UploadsExpired += int64(r.UploadsExpired)
		last := r
		st.Last = &last
		e.gcs.statsMu.Unlock()
	}
	return r, storageErr(err)
}

// startGC starts the background loops: pull-time flushing always, and the
// gc and lifecycle schedulers when their intervals are set.
func (e *Engine) startGC() {
	ctx, cancel := context.WithCancel(context.Background())
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		<-e.stop
		cancel()
	}()
	e.every(pullFlushInterval, e.flushPulls, e.flushPulls)
	e.every(previewSweepInterval, e.sweepPreviews, nil)
	if e.opts.GCInterval > 0 {
		e.gcs.gcSched = e.newScheduler(ctx, ScheduleGC, e.opts.GCInterval, e.scheduledGC)
	}
	if e.opts.LifecycleInterval > 0 {
		e.gcs.lifecycleSched = e.newScheduler(ctx, ScheduleLifecycle, e.opts.LifecycleInterval, e.scheduledLifecycle)
	}
	if e.gcs.gcSched != nil || e.gcs.lifecycleSched != nil {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			<-e.stop
			for _, s := range []*scheduler{e.gcs.gcSched, e.gcs.lifecycleSched} {
				if s != nil {
					s.stop()
				}
			}
		}()
	}
}

// every runs fn every d of the engine's clock until the engine stops,
// then final once. The ticker is armed before every returns.
func (e *Engine) every(d time.Duration, fn, final func()) {
	t := newTicker(e.clock, d)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer t.Stop()
		for {
			select {
			case <-e.stop:
				if final != nil {
					final()
				}
				return
			case <-t.C:
				fn()
			}
		}
	}()
}
