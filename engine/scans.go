package engine

// Image scans (docs/scanning.md): a scan takes the inventory of an image
// through its layer tables (ImageFS, scan.TakeInventory) and matches it
// against the current vulnerability database (scan.Match). Scans run from
// a durable queue in the index (Q keys): a push, a manual scan and an
// import under a continuous rule only write a job (in the push's own
// batch for a push); workers, at most Options.ScanWorkers at a time, take
// due jobs, and a job is deleted in the batch that stores its result, so
// a crash at any point leaves the job queued and it runs again after a
// restart. A failed run is retried (Options.ScanRetryDelay, times the
// attempt) up to Options.ScanMaxAttempts runs, then the scan is FAILED.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine/internal/events"
	"github.com/berthstore/berth/engine/internal/manifest"
	"github.com/berthstore/berth/engine/internal/record"
	"github.com/berthstore/berth/index"
	"github.com/berthstore/berth/scan"
)

// ScanFinding is one vulnerability of one installed package (scan.Finding).
type ScanFinding = scan.Finding

// ScanSeverity is a finding's severity in ECR's words (scan.Severity).
type ScanSeverity = scan.Severity

// ScanInventory is an image's software inventory (scan.Inventory).
type ScanInventory = scan.Inventory

// TakeInventory takes the software inventory of fsys as a scan does: an
// image's filesystem (ImageFS), or any other tree (an unpacked image, to
// compare with). The scan package's readers decide what they read.
func TakeInventory(ctx context.Context, fsys fs.FS) (*ScanInventory, error) {
	return scan.TakeInventory(ctx, fsys, scan.Options{})
}

// ScanStatus is an image scan's status, as ECR names them.
type ScanStatus string

// The statuses of a scan.
const (
	ScanInProgress         ScanStatus = "IN_PROGRESS"
	ScanComplete           ScanStatus = "COMPLETE"
	ScanFailed             ScanStatus = "FAILED"
	ScanUnsupportedImage   ScanStatus = "UNSUPPORTED_IMAGE"
	ScanEligibilityExpired ScanStatus = "SCAN_ELIGIBILITY_EXPIRED"
)

// ManualScanInterval is ECR's limit on manual scans: one per image per
// 24 hours.
const ManualScanInterval = 24 * time.Hour

// Errors of scans.
var (
	// ErrScanNotFound: the image has never been scanned (ECR
	// ScanNotFoundException).
	ErrScanNotFound = errors.New("engine: image scan not found")
	// ErrScanLimitExceeded: a manual scan of the image was started less
	// than ManualScanInterval ago (ECR LimitExceededException).
	ErrScanLimitExceeded = errors.New("engine: the scan quota per image has been exceeded")
	// ErrUnsupportedImageType: the image cannot be scanned (an index or
	// manifest list, an artifact; ECR UnsupportedImageTypeException).
	ErrUnsupportedImageType = errors.New("engine: unsupported image type")
)

// Descriptions of statuses, as ECR words them.
const (
	unsupportedDescription = "UnsupportedImageError: The operating system and/or package manager are not supported."
	completeDescription    = "The scan was completed successfully."
	inProgressDescription  = "The scan is in progress."
	expiredDescription     = "The image's continuous scan duration has expired."
)

// ImageScan is an image's scan: its status and, once complete, its
// findings.
type ImageScan struct {
	Repository string
	Digest     digest.Digest
	Status     ScanStatus
	// Description explains the status.
	Description string
	// StartedAt is when the last scan was asked for.
	StartedAt time.Time
	// CompletedAt is when the last scan or re-match completed (zero
	// before the first).
	CompletedAt time.Time
	// DatabaseVersion and DatabaseUpdatedAt name the vulnerability
	// database the findings were matched against (zero: none).
	DatabaseVersion   uint64
	DatabaseUpdatedAt time.Time
	// Counts are the findings by severity.
	Counts map[scan.Severity]int
	// Findings are the findings, most severe first (only when asked).
	Findings []scan.Finding
	// Inventory is the image's software (only when asked).
	Inventory *scan.Inventory
}

// scanState is the queue's in-memory side: the jobs being run and the
// signal that new jobs are due.
type scanState struct {
	wake     chan struct{}
	mu       sync.Mutex
	inflight map[string]bool
	running  sync.WaitGroup
	// idle is signalled when a run ends.
	idle *sync.Cond
	// yieldingSince is when workers began waiting for a quiet moment
	// (pushactivity.go; activityNow's time), zero when they are not.
	yieldingSince int64
}

func scanKey(repo string, d digest.Digest) string { return repo + "@" + string(d) }

// startScanner starts the dispatcher of the scan queue.
func (e *Engine) startScanner() {
	e.scans.wake = make(chan struct{}, 1)
	e.scans.inflight = map[string]bool{}
	e.scans.idle = sync.NewCond(&e.scans.mu)
	if e.opts.ScanWorkers < 0 {
		return
	}
	sem := make(chan struct{}, e.opts.ScanWorkers)
	ctx, cancel := context.WithCancel(context.Background())
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer e.scans.running.Wait()
		defer cancel()
		for {
			next, err := e.dispatchScans(ctx, sem)
			if err != nil && !errors.Is(err, ErrClosed) {
				e.log.Warn("scan queue", "err", err)
			}
			var stopTimer func() bool
			if !next.IsZero() {
				stopTimer = e.clock.AfterFunc(max(next.Sub(e.now()), 0), e.wakeScanner)
			}
			select {
			case <-e.stop:
				if stopTimer != nil {
					stopTimer()
				}
				return
			case <-e.scans.wake:
			}
			if stopTimer != nil {
				stopTimer()
			}
		}
	}()
}

// wakeScanner tells the dispatcher that jobs may be due.
func (e *Engine) wakeScanner() {
	if e.scans.wake == nil {
		return
	}
	select {
	case e.scans.wake <- struct{}{}:
	default:
	}
}

// dispatchScans starts every due job not running yet, waiting for a
// worker slot for each, and returns when the next delayed job is due
// (zero: none).
func (e *Engine) dispatchScans(ctx context.Context, sem chan struct{}) (time.Time, error) {
	type due struct {
		repo string
		d    digest.Digest
	}
	var (
		jobs []due
		next time.Time
	)
	now := e.now()
	err := e.db.WalkScanJobs(func(repo string, d digest.Digest, v []byte) error {
		j, err := record.DecodeScanJob(v)
		if err != nil {
			e.log.Warn("scan job unreadable: dropped", "repository", repo, "digest", d, "err", err)
			b := e.db.NewBatch()
			defer b.Close()
			if err := b.DeleteScanJob(repo, d); err != nil {
				return err
			}
			return b.Commit(false)
		}
		if j.NotBefore.After(now) {
			if next.IsZero() || j.NotBefore.Before(next) {
				next = j.NotBefore
			}
			return nil
		}
		jobs = append(jobs, due{repo, d})
		return nil
	})
	if err != nil {
		return next, storageErr(err)
	}
	for _, j := range jobs {
		k := scanKey(j.repo, j.d)
		e.scans.mu.Lock()
		busy := e.scans.inflight[k]
		if !busy {
			e.scans.inflight[k] = true
		}
		e.scans.mu.Unlock()
		if busy {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-e.stop:
			e.finishRun(k)
			return next, nil
		}
		e.scans.running.Add(1)
		go func() {
			defer e.scans.running.Done()
			defer func() { <-sem }()
			defer e.finishRun(k)
			if !e.awaitQuiet(ctx) {
				return // stopping: the job stays queued for the next start
			}
			// One replica runs a job: the others skip it while it runs
			// (and find it gone after); the lease goes with a dead
			// holder, whose job the next poll runs again.
			jctx, release, err := e.tryLease(ctx, "job\x00scan\x00"+k)
			if err != nil {
				if !errors.Is(err, errLeaseHeld) {
					e.log.Warn("scan job not claimed", "repository", j.repo, "digest", j.d, "err", err)
				}
				return
			}
			defer release()
			if err := e.runScanJob(jctx, j.repo, j.d); err != nil {
				e.log.Warn("scan job", "repository", j.repo, "digest", j.d, "err", err)
			}
		}()
	}
	return next, nil
}

func (e *Engine) finishRun(k string) {
	e.scans.mu.Lock()
	delete(e.scans.inflight, k)
	e.scans.idle.Broadcast()
	e.scans.mu.Unlock()
	e.wakeScanner() // a job queued again while it ran
}

// ScanQueue returns the number of queued scan jobs (running ones
// included).
func (e *Engine) ScanQueue(ctx context.Context) (int, error) {
	n := 0
	err := e.db.WalkScanJobs(func(string, digest.Digest, []byte) error {
		n++
		return ctx.Err()
	})
	return n, storageErr(err)
}

// loadScan reads the scan record of repo@d (ok false when none).
func (e *Engine) loadScan(repo string, d digest.Digest) (record.Scan, bool, error) {
	b, err := e.db.Scan(repo, d)
	if errors.Is(err, index.ErrNotFound) {
		return record.Scan{}, false, nil
	}
	if err != nil {
		return record.Scan{}, false, storageErr(err)
	}
	s, err := record.DecodeScan(b)
	if err != nil {
		return record.Scan{}, false, fmt.Errorf("%w: scan of %s@%s: %v", ErrCorrupt, repo, d, err)
	}
	return s, true, nil
}

// putScanJob adds to b a job for repo@d and, for a scan, its record as
// IN_PROGRESS (keeping what the record holds).
func (e *Engine) putScanJob(b *index.Batch, repo string, d digest.Digest, kind string, rec record.Scan) error {
	now := e.now()
	jv, err := record.EncodeScanJob(record.ScanJob{Kind: kind, QueuedAt: now})
	if err != nil {
		return err
	}
	if err := b.PutScanJob(repo, d, jv); err != nil {
		return storageErr(err)
	}
	if kind != "scan" {
		return nil
	}
	rec.Status, rec.Description, rec.StartedAt = string(ScanInProgress), inProgressDescription, now
	rv, err := record.EncodeScan(rec)
	if err != nil {
		return err
	}
	return storageErr(b.PutScan(repo, d, rv))
}

// scannable reports whether a pushed manifest is an image that a scan
// can read: an image manifest whose config is an image config.
func scannable(pm *manifest.Parsed) bool {
	if pm.Index || pm.Config == nil {
		return false
	}
	switch pm.Config.MediaType {
	case "application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json":
		return true
	}
	return false
}

// StartImageScan starts a manual scan of the image reference names, as
// ECR's StartImageScan: at most one per image per ManualScanInterval
// (ErrScanLimitExceeded), images only (ErrUnsupportedImageType). The scan
// runs from the queue; the status returned is IN_PROGRESS.
func (e *Engine) StartImageScan(ctx context.Context, repo, reference string) (*ImageScan, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	m, err := e.manifestRecord(ctx, repo, reference, true)
	if err != nil {
		return nil, err
	}
	pm, err := manifest.Parse(m.MediaType, m.Payload, 0)
	if err != nil || !scannable(pm) {
		return nil, fmt.Errorf("%w: %s@%s is not an image", ErrUnsupportedImageType, repo, m.Digest)
	}
	unlock := e.repoLocks.Lock(repo)
	defer unlock()
	rec, _, err := e.loadScan(repo, m.Digest)
	if err != nil {
		return nil, err
	}
	now := e.now()
	if !rec.ManualAt.IsZero() && now.Sub(rec.ManualAt) < ManualScanInterval {
		return nil, fmt.Errorf("%w: %s@%s was scanned on request at %s; the next manual scan is allowed at %s",
			ErrScanLimitExceeded, repo, m.Digest, rec.ManualAt.Format(time.RFC3339), rec.ManualAt.Add(ManualScanInterval).Format(time.RFC3339))
	}
	rec.ManualAt = now
	b := e.db.NewBatch()
	defer b.Close()
	if err := e.putScanJob(b, repo, m.Digest, "scan", rec); err != nil {
		return nil, err
	}
	if err := b.Commit(true); err != nil {
		return nil, storageErr(err)
	}
	e.wakeScanner()
	return &ImageScan{Repository: repo, Digest: m.Digest, Status: ScanInProgress, Description: inProgressDescription, StartedAt: now}, nil
}

// ImageScan returns the scan of the image reference names, with its
// findings when findings is set (ErrScanNotFound when it was never
// scanned).
func (e *Engine) ImageScan(ctx context.Context, repo, reference string, findings bool) (*ImageScan, error) {
	d, err := e.resolve(ctx, repo, reference)
	if err != nil {
		return nil, err
	}
	if ok, err := e.db.HasManifest(repo, d); err != nil {
		return nil, storageErr(err)
	} else if !ok {
		if _, err := e.loadRepo(repo); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s@%s", ErrManifestUnknown, repo, d)
	}
	rec, ok, err := e.loadScan(repo, d)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s@%s", ErrScanNotFound, repo, d)
	}
	out := &ImageScan{
		Repository: repo, Digest: d, Status: ScanStatus(rec.Status), Description: rec.Description,
		StartedAt: rec.StartedAt, CompletedAt: rec.CompletedAt,
		DatabaseVersion: rec.Database, DatabaseUpdatedAt: rec.DatabaseUpdatedAt,
		Counts: map[scan.Severity]int{},
	}
	for k, v := range rec.Counts {
		out.Counts[scan.Severity(k)] = v
	}
	if findings && len(rec.Findings) > 0 {
		if err := json.Unmarshal(rec.Findings, &out.Findings); err != nil {
			return nil, fmt.Errorf("%w: findings of %s@%s: %v", ErrCorrupt, repo, d, err)
		}
	}
	if findings && len(rec.Inventory) > 0 {
		out.Inventory = new(scan.Inventory)
		if err := json.Unmarshal(rec.Inventory, out.Inventory); err != nil {
			return nil, fmt.Errorf("%w: inventory of %s@%s: %v", ErrCorrupt, repo, d, err)
		}
	}
	return out, nil
}

// scanStarted, when set (by a test), is called when a run has counted
// its attempt and is about to read the image.
var scanStarted func(repo string, d digest.Digest)

// runScanJob runs the job of repo@d once.
func (e *Engine) runScanJob(ctx context.Context, repo string, d digest.Digest) error {
	job, ok, err := e.startScanJob(repo, d)
	if err != nil || !ok {
		return err
	}
	if scanStarted != nil {
		scanStarted(repo, d)
	}
	rec, _, err := e.loadScan(repo, d)
	if err != nil {
		return err
	}
	res, runErr := e.scanImage(ctx, repo, d, job.Kind, &rec)
	if ctx.Err() != nil {
		return ctx.Err() // stopping: the job stays queued for the next start
	}
	unlock := e.repoLocks.Lock(repo)
	defer unlock()
	// The job may have been queued again while this run went on (a
	// manual scan, an import): then this run's result stands, the job
	// stays for the next run.
	cur, err := e.db.ScanJob(repo, d)
	if errors.Is(err, index.ErrNotFound) {
		return nil // the image was deleted
	}
	if err != nil {
		return storageErr(err)
	}
	curJob, _ := record.DecodeScanJob(cur)
	requeued := !curJob.QueuedAt.Equal(job.QueuedAt)
	if requeued {
		// Keep what the new request wrote: its manual scan's time and,
		// for a scan, its IN_PROGRESS.
		now, _, err := e.loadScan(repo, d)
		if err != nil {
			return err
		}
		if now.ManualAt.After(rec.ManualAt) {
			rec.ManualAt = now.ManualAt
		}
		if curJob.Kind == "scan" {
			rec.Status, rec.Description, rec.StartedAt = now.Status, now.Description, now.StartedAt
		}
	}
	b := e.db.NewBatch()
	defer b.Close()
	if runErr != nil && res == nil {
		if errors.Is(runErr, ErrManifestUnknown) || errors.Is(runErr, ErrNameUnknown) {
			// Gone (a job queued as it was deleted): nothing to scan.
			if err := b.DeleteScanJob(repo, d); err != nil {
				return storageErr(err)
			}
			if err := b.DeleteScan(repo, d); err != nil {
				return storageErr(err)
			}
			return storageErr(b.Commit(false))
		}
		if job.Attempts < e.opts.ScanMaxAttempts && !requeued {
			job.LastError = runErr.Error()
			job.NotBefore = e.now().Add(time.Duration(job.Attempts) * e.opts.ScanRetryDelay)
			jv, err := record.EncodeScanJob(job)
			if err != nil {
				return err
			}
			if err := b.PutScanJob(repo, d, jv); err != nil {
				return storageErr(err)
			}
			e.log.Warn("image scan failed, will retry", "repository", repo, "digest", d, "attempt", job.Attempts, "err", runErr)
			return storageErr(b.Commit(true))
		}
		rec.Status, rec.Description = string(ScanFailed), runErr.Error()
		rec.CompletedAt = e.now()
		e.log.Warn("image scan failed", "repository", repo, "digest", d, "attempts", job.Attempts, "err", runErr)
	}
	rv, err := record.EncodeScan(rec)
	if err != nil {
		return err
	}
	if err := b.PutScan(repo, d, rv); err != nil {
		return storageErr(err)
	}
	if !requeued {
		if err := b.DeleteScanJob(repo, d); err != nil {
			return storageErr(err)
		}
	}
	// The scan's end is an event (ECR Image Scan, with the finding counts
	// by severity), queued in the batch that stores the result: a result
	// stored has its event.
	evq := e.events(b)
	if err := e.scanEvent(evq, repo, d, &rec); err != nil {
		return err
	}
	if err := b.Commit(true); err != nil {
		return storageErr(err)
	}
	evq.committed()
	e.log.Info("image scan complete", "repository", repo, "digest", d, "status", rec.Status, "kind", job.Kind,
		"database", rec.Database, "findingSeverityCounts", rec.Counts)
	return nil
}

// scanEvent queues the ECR Image Scan event of the scan of repo@d that
// ended with rec, as ECR sends it to EventBridge: scan-status COMPLETE
// with the finding counts by severity, or FAILED (a scan that failed, or
// an image Berth cannot scan); the image's tags. A re-match that found
// the image's scan eligibility expired emits none: no scan ran.
func (e *Engine) scanEvent(evq *eventQueue, repo string, d digest.Digest, rec *record.Scan) error {
	if !e.eventsEnabled() {
		return nil
	}
	ev := events.ImageScan{RepositoryName: repo, ImageDigest: string(d)}
	switch ScanStatus(rec.Status) {
	case ScanComplete:
		ev.ScanStatus = events.ScanComplete
		if len(rec.Counts) > 0 {
			ev.FindingSeverityCounts = maps.Clone(rec.Counts)
		}
	case ScanFailed, ScanUnsupportedImage:
		ev.ScanStatus = events.ScanFailed
	default:
		return nil
	}
	tags, err := e.db.TagsOf(repo, d)
	if err != nil {
		return storageErr(err)
	}
	ev.ImageTags = tags
	return evq.add(ev, "")
}

// startScanJob reads the job of repo@d (ok false when there is none any
// more) and counts the attempt it starts, before the run, so that an
// image that crashes the process ends FAILED rather than in a crash
// loop. Under the repository's lock: a deletion does not cross it.
func (e *Engine) startScanJob(repo string, d digest.Digest) (record.ScanJob, bool, error) {
	unlock := e.repoLocks.Lock(repo)
	defer unlock()
	jb, err := e.db.ScanJob(repo, d)
	if errors.Is(err, index.ErrNotFound) {
		return record.ScanJob{}, false, nil
	}
	if err != nil {
		return record.ScanJob{}, false, storageErr(err)
	}
	job, err := record.DecodeScanJob(jb)
	if err != nil {
		return record.ScanJob{}, false, fmt.Errorf("%w: scan job of %s@%s: %v", ErrCorrupt, repo, d, err)
	}
	job.Attempts++
	jv, err := record.EncodeScanJob(job)
	if err != nil {
		return record.ScanJob{}, false, err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutScanJob(repo, d, jv); err != nil {
		return record.ScanJob{}, false, storageErr(err)
	}
	// Synced: the count must survive the crash it is there to count.
	if err := b.Commit(true); err != nil {
		return record.ScanJob{}, false, storageErr(err)
	}
	return job, true, nil
}

// scanImage runs a scan (or a re-match of the stored inventory) of
// repo@d and updates rec. The result is nil when the run failed (err
// then says why); an image that cannot be scanned is a result with
// status UNSUPPORTED_IMAGE.
func (e *Engine) scanImage(ctx context.Context, repo string, d digest.Digest, kind string, rec *record.Scan) (*scan.Result, error) {
	st, err := e.loadVulnDatabase()
	if err != nil {
		return nil, err
	}
	var inv *scan.Inventory
	if kind == "rematch" && len(rec.Inventory) > 0 {
		if e.opts.ScanEligibility > 0 {
			m, err := e.db.ManifestMeta(repo, d)
			if err != nil {
				return nil, storageErr(err)
			}
			last := m.PushedAt
			if m.LastPulledAt.After(last) {
				last = m.LastPulledAt
			}
			if e.now().Sub(last) > e.opts.ScanEligibility {
				rec.Status, rec.Description = string(ScanEligibilityExpired), expiredDescription
				return &scan.Result{}, nil
			}
		}
		inv = new(scan.Inventory)
		if err := json.Unmarshal(rec.Inventory, inv); err != nil {
			return nil, fmt.Errorf("%w: inventory of %s@%s: %v", ErrCorrupt, repo, d, err)
		}
	} else {
		fsys, err := e.ImageFS(ctx, repo, string(d), nil)
		if errors.Is(err, ErrNotAnImage) || errors.Is(err, ErrLayerRefused) || errors.Is(err, ErrImageTreeTooLarge) {
			rec.Status, rec.Description = string(ScanUnsupportedImage), unsupportedDescription
			rec.CompletedAt = e.now()
			rec.Inventory, rec.Findings, rec.Counts = nil, nil, nil
			return &scan.Result{}, nil
		}
		if err != nil {
			return nil, err
		}
		inv, err = TakeInventory(ctx, fsys)
		fsys.Close()
		if err != nil {
			return nil, err
		}
		if len(inv.Packages) == 0 && (inv.OS == nil || inv.OS.Ecosystem == "") {
			rec.Status, rec.Description = string(ScanUnsupportedImage), unsupportedDescription
			rec.CompletedAt = e.now()
			rec.Inventory, rec.Findings, rec.Counts = nil, nil, nil
			return &scan.Result{}, nil
		}
		if rec.Inventory, err = json.Marshal(inv); err != nil {
			return nil, err
		}
	}
	res := &scan.Result{}
	for attempt := 0; ; attempt++ {
		if st.Current == nil {
			res = &scan.Result{}
			rec.Database, rec.DatabaseUpdatedAt = 0, time.Time{}
			break
		}
		res, err = scan.Match(ctx, inv, &vulnView{e: e, ver: st.Current.Version})
		if err != nil {
			return nil, err
		}
		rec.Database, rec.DatabaseUpdatedAt = st.Current.Version, st.Current.ImportedAt
		// A rollback may have deleted the version while it was read:
		// match again against the one now current.
		now, err := e.loadVulnDatabase()
		if err != nil {
			return nil, err
		}
		if now.Current != nil && now.Current.Version == st.Current.Version {
			break
		}
		if attempt == 2 {
			return nil, fmt.Errorf("engine: the vulnerability database changed during three matches of %s@%s", repo, d)
		}
		st = now
	}
	if rec.Findings, err = json.Marshal(res.Findings); err != nil {
		return nil, err
	}
	rec.Counts = map[string]int{}
	for sev, n := range res.Summary() {
		rec.Counts[string(sev)] = n
	}
	rec.Status, rec.Description = string(ScanComplete), completeDescription
	rec.CompletedAt = e.now()
	return res, nil
}

// queueRematches queues, for every repository under a continuous
// scanning rule, a re-match of each scanned image (from its stored
// inventory) and a scan of each image never scanned, and returns how
// many jobs it queued.
func (e *Engine) queueRematches(ctx context.Context) (int, error) {
	cfg, err := e.RegistryScanningConfiguration(ctx)
	if err != nil {
		return 0, err
	}
	byRepo := map[string][]digest.Digest{}
	var repos []string
	err = e.db.WalkManifests(func(m *index.Manifest) error {
		if cfg.frequency(m.Repo) != ScanFrequencyContinuous || !scannableMeta(m) {
			return nil
		}
		if len(byRepo[m.Repo]) == 0 {
			repos = append(repos, m.Repo)
		}
		byRepo[m.Repo] = append(byRepo[m.Repo], m.Digest)
		return ctx.Err()
	})
	if err != nil {
		return 0, storageErr(err)
	}
	n := 0
	for _, repo := range repos {
		k, err := e.queueRematchesOf(repo, byRepo[repo])
		n += k
		if err != nil {
			return n, err
		}
	}
	if n > 0 {
		// The batches were committed without sync: one fsync for all.
		if err := e.db.SyncWAL(); err != nil {
			return n, storageErr(err)
		}
	}
	e.wakeScanner()
	return n, nil
}

// queueRematchesOf queues the jobs of queueRematches for the images ds
// of repo, under the repository's lock (an image deleted since the walk
// gets none).
func (e *Engine) queueRematchesOf(repo string, ds []digest.Digest) (int, error) {
	unlock := e.repoLocks.Lock(repo)
	defer unlock()
	b := e.db.NewBatch()
	defer b.Close()
	n := 0
	for _, d := range ds {
		if ok, err := e.db.HasManifest(repo, d); err != nil {
			return n, storageErr(err)
		} else if !ok {
			continue
		}
		if _, err := e.db.ScanJob(repo, d); err == nil {
			continue // queued already: it matches against the current version when it runs
		} else if !errors.Is(err, index.ErrNotFound) {
			return n, storageErr(err)
		}
		rec, ok, err := e.loadScan(repo, d)
		if err != nil {
			return n, err
		}
		kind := "scan"
		if ok && len(rec.Inventory) > 0 {
			kind = "rematch"
		}
		if err := e.putScanJob(b, repo, d, kind, rec); err != nil {
			return n, err
		}
		n++
	}
	return n, storageErr(b.Commit(false))
}

// scannableMeta is scannable for a stored manifest (its config media
// type is its artifact type).
func scannableMeta(m *index.Manifest) bool {
	if manifest.IsIndex(m.MediaType) {
		return false
	}
	switch m.ArtifactType {
	case "application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json":
		return true
	}
	return false
}
