package engine

// The replication queue: a job per destination and pushed reference,
// queued in the push's own batch (an acknowledged push is never lost),
// claimed by a replicator (package replicate) one at a time per
// reference, finished or retried with backoff, and each image's status
// per destination. docs/replication.md.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine/internal/events"
	"github.com/berthstore/berth/engine/internal/record"
	"github.com/berthstore/berth/index"
)

// The replication statuses of an image at a destination (ECR's
// ImageReplicationStatus.status).
const (
	ReplicationInProgress = "IN_PROGRESS"
	ReplicationComplete   = "COMPLETE"
	ReplicationFailed     = "FAILED"
)

// The failure codes of a FAILED replication.
const (
	// ReplicationAccessDenied: the destination refused the replicator's
	// identity (its registry policy grants no ecr:ReplicateImage, or no
	// ecr:CreateRepository for a new repository).
	ReplicationAccessDenied = "ACCESS_DENIED"
	// ReplicationDestinationRefused: the destination refused what was
	// sent (an immutable tag moved, a manifest it does not accept).
	ReplicationDestinationRefused = "DESTINATION_REFUSED"
	// ReplicationDestinationUnavailable: the destination could not be
	// reached, or kept failing, until the replication's maximum age.
	ReplicationDestinationUnavailable = "DESTINATION_UNAVAILABLE"
	// ReplicationSourceImageMissing: the image was deleted at the source
	// before it could be sent.
	ReplicationSourceImageMissing = "SOURCE_IMAGE_NOT_FOUND"
	// ReplicationNoEndpoint: no endpoint is configured for the
	// destination any more.
	ReplicationNoEndpoint = "DESTINATION_NOT_CONFIGURED"
)

// replState is the engine's replication machinery.
type replState struct {
	config atomic.Pointer[ReplicationConfiguration]
	// seq numbers jobs; Open starts it after the highest stored.
	seq   atomic.Uint64
	mu    sync.Mutex
	dests map[ReplicationDestination]*replQueue
}

// replQueue is the in-memory schedule of one destination's jobs: their
// keys (repository and reference), never their records, which are read
// from the index at each claim.
type replQueue struct {
	ready    []replKey             // due, in queue order
	queued   map[replKey]bool      // in ready
	delayed  map[replKey]time.Time // waiting for their next attempt
	inflight map[replKey]bool      // claimed
	again    map[replKey]bool      // put again while claimed
	failed   int                   // given up, kept until a retry
	wake     chan struct{}
	// counters since Open
	completed, failures, givenUp atomic.Uint64
}

type replKey struct{ repo, ref string }

func newReplQueue() *replQueue {
	return &replQueue{queued: map[replKey]bool{}, delayed: map[replKey]time.Time{}, inflight: map[replKey]bool{},
		again: map[replKey]bool{}, wake: make(chan struct{}, 1)}
}

// queue returns the schedule of dest, made on first use. Under repl.mu.
func (s *replState) queue(dest ReplicationDestination) *replQueue {
	q := s.dests[dest]
	if q == nil {
		q = newReplQueue()
		s.dests[dest] = q
	}
	return q
}

// add makes k due now (or after claimed, when it is).
func (q *replQueue) add(k replKey) {
	switch {
	case q.inflight[k]:
		q.again[k] = true
	case q.queued[k]:
	default:
		delete(q.delayed, k)
		q.ready = append(q.ready, k)
		q.queued[k] = true
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// openReplication reads the queue at Open: the next job number, and
// every job not given up into its destination's schedule.
func (e *Engine) openReplication() error {
	e.repl.dests = map[ReplicationDestination]*replQueue{}
	type loaded struct {
		dest ReplicationDestination
		k    replKey
		seq  uint64
		next time.Time
	}
	var all []loaded
	var last uint64
	err := e.db.WalkReplicationJobs(func(dest, repo, ref string, v []byte) error {
		j, err := record.DecodeReplicationJob(v)
		if err != nil {
			e.log.Error("replication: a queued job does not decode; it is left in place", "destination", dest, "repository", repo, "reference", ref, "err", err)
			return nil
		}
		last = max(last, j.Seq)
		d, err := ParseReplicationDestination(dest)
		if err != nil {
			e.log.Error("replication: a queued job names a destination that does not parse; it is left in place", "destination", dest, "err", err)
			return nil
		}
		if j.Failed {
			e.repl.queue(d).failed++
			return nil
		}
		all = append(all, loaded{d, replKey{repo, ref}, j.Seq, j.NextAttempt})
		return nil
	})
	if err != nil {
		return fmt.Errorf("engine: replication queue: %w", err)
	}
	e.repl.seq.Store(last)
	slices.SortFunc(all, func(a, b loaded) int { return cmp.Compare(a.seq, b.seq) })
	now := e.now()
	for _, l := range all {
		q := e.repl.queue(l.dest)
		if l.next.After(now) {
			q.delayed[l.k] = l.next
		} else {
			q.add(l.k)
		}
	}
	known := map[ReplicationDestination]bool{}
	for _, d := range e.opts.ReplicationDestinations {
		known[d] = true
	}
	for d, q := range e.repl.dests {
		if !known[d] {
			e.log.Warn("replication: the store holds jobs for a destination with no endpoint configured; they stay queued until it has one",
				"destination", d.String(), "jobs", len(q.ready)+len(q.delayed)+q.failed)
		}
	}
	return nil
}

// replicationPlan is what a push queues for replication: its jobs, to
// hand to the schedules once the push's batch committed.
type replicationPlan struct {
	jobs []planned
}

type planned struct {
	dest ReplicationDestination
	ref  string
}

// queueReplication puts in batch b the replication jobs of a push of
// manifest d into repo under tags (by digest when none), one per
// destination the configuration selects for repo and reference, and the
// image's IN_PROGRESS status at each. A tag's job that is still queued
// for another image is replaced, and that image gets a job of its own by
// digest (it was pushed, so it is replicated, without the tag, which is
// the new image's now). Called under the repository's lock.
func (e *Engine) queueReplication(b *index.Batch, repo string, d digest.Digest, tags []string) (*replicationPlan, error) {
	c, err := e.replicationConfig()
	if err != nil {
		return nil, err
	}
	dests := c.destinationsFor(repo)
	if len(dests) == 0 {
		return nil, nil
	}
	refs := tags
	if len(refs) == 0 {
		refs = []string{string(d)}
	}
	now := e.now()
	st, err := record.EncodeReplicationStatus(record.ReplicationStatus{Status: ReplicationInProgress, UpdatedAt: now})
	if err != nil {
		return nil, err
	}
	plan := &replicationPlan{}
	put := func(ds string, dest ReplicationDestination, ref string, j record.ReplicationJob) error {
		v, err := record.EncodeReplicationJob(j)
		if err != nil {
			return err
		}
		if err := b.PutReplicationJob(ds, repo, ref, v); err != nil {
			return storageErr(err)
		}
		plan.jobs = append(plan.jobs, planned{dest, ref})
		return nil
	}
	for _, dest := range dests {
		ds := dest.String()
		for _, ref := range refs {
			if ref != string(d) {
				if err := e.keepReplacedImage(b, ds, dest, repo, ref, d, put); err != nil {
					return nil, err
				}
			}
			if err := put(ds, dest, ref, record.ReplicationJob{Digest: string(d), Seq: e.repl.seq.Add(1), QueuedAt: now}); err != nil {
				return nil, err
			}
		}
		if err := b.PutReplicationStatus(repo, d, ds, st); err != nil {
			return nil, storageErr(err)
		}
	}
	return plan, nil
}

// keepReplacedImage queues by digest the image of the job of tag at dest
// that a push of d is about to replace, unless it is d, given up, or
// already queued by digest.
func (e *Engine) keepReplacedImage(b *index.Batch, ds string, dest ReplicationDestination, repo, tag string, d digest.Digest,
	put func(string, ReplicationDestination, string, record.ReplicationJob) error) error {
	v, err := e.db.ReplicationJob(ds, repo, tag)
	if errors.Is(err, index.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storageErr(err)
	}
	old, err := record.DecodeReplicationJob(v)
	if err != nil || old.Failed || old.Digest == string(d) {
		return nil
	}
	if _, err := e.db.ReplicationJob(ds, repo, old.Digest); err == nil {
		return nil
	} else if !errors.Is(err, index.ErrNotFound) {
		return storageErr(err)
	}
	return put(ds, dest, old.Digest, record.ReplicationJob{Digest: old.Digest, Seq: e.repl.seq.Add(1), QueuedAt: old.QueuedAt})
}

// replicationQueued hands a committed push's jobs to their schedules.
func (e *Engine) replicationQueued(repo string, p *replicationPlan) {
	if p == nil {
		return
	}
	e.repl.mu.Lock()
	defer e.repl.mu.Unlock()
	for _, j := range p.jobs {
		e.repl.queue(j.dest).add(replKey{repo, j.ref})
	}
}

// ReplicationJob is a claimed replication: one reference of a repository
// to send to one destination.
type ReplicationJob struct {
	// Destination is where to.
	Destination ReplicationDestination
	// Repository is the source repository, and the destination's.
	Repository string
	// Tag is the tag pushed ("" for a push by digest).
	Tag string
	// Digest is the image pushed. For a tag, the sender checks that the
	// source's tag still names it when it moves the destination's tag.
	Digest digest.Digest
	// QueuedAt is when the push was committed; Attempts counts the failed
	// attempts before this one.
	QueuedAt time.Time
	Attempts int

	seq uint64
	ref string
	// release ends the job's claim across the replicas (nil: none).
	release func()
}

// ClaimReplication waits until a job of dest is due and returns it,
// claimed: no other claim returns a job of the same reference until this
// one is finished (FinishReplication), so that a tag's replications run
// one after the other, in push order. It returns ctx's error when ctx
// ends first, ErrClosed when the engine closes.
func (e *Engine) ClaimReplication(ctx context.Context, dest ReplicationDestination) (*ReplicationJob, error) {
	for {
		if err := e.checkOpen(); err != nil {
			return nil, err
		}
		e.repl.mu.Lock()
		q := e.repl.queue(dest)
		now := e.now()
		var next time.Time
		for k, at := range q.delayed {
			if !at.After(now) {
				delete(q.delayed, k)
				q.ready = append(q.ready, k)
				q.queued[k] = true
			} else if next.IsZero() || at.Before(next) {
				next = at
			}
		}
		var k replKey
		found := false
		for len(q.ready) > 0 && !found {
			k, q.ready = q.ready[0], q.ready[1:]
			delete(q.queued, k)
			if q.inflight[k] {
				q.again[k] = true
				continue
			}
			found = true
		}
		if found {
			q.inflight[k] = true
		}
		wake := q.wake
		e.repl.mu.Unlock()
		if found {
			// One replica runs a job at a time: another holds it, so it
			// is looked at again after a poll (gone when it succeeded).
			_, release, err := e.tryLease(ctx, "job\x00replication\x00"+dest.String()+"\x00"+k.repo+"\x00"+k.ref)
			if err != nil {
				e.releaseReplication(dest, k, e.now().Add(sharedPollInterval))
				if !errors.Is(err, errLeaseHeld) {
					return nil, err
				}
				continue
			}
			j, err := e.loadReplicationJob(dest, k)
			if err != nil || j == nil {
				release()
				e.releaseReplication(dest, k, time.Time{})
				if err != nil {
					return nil, err
				}
				continue
			}
			j.release = release
			return j, nil
		}
		var timer <-chan time.Time
		var t *time.Timer
		if !next.IsZero() {
			t = time.NewTimer(max(next.Sub(now), time.Millisecond))
			timer = t.C
		}
		var err error
		select {
		case <-wake:
		case <-timer:
		case <-ctx.Done():
			err = ctx.Err()
		case <-e.stop:
			err = ErrClosed
		}
		if t != nil {
			t.Stop()
		}
		if err != nil {
			return nil, err
		}
	}
}

// loadReplicationJob reads the job of k at dest: nil when it is gone or
// given up.
func (e *Engine) loadReplicationJob(dest ReplicationDestination, k replKey) (*ReplicationJob, error) {
	v, err := e.db.ReplicationJob(dest.String(), k.repo, k.ref)
	if errors.Is(err, index.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storageErr(err)
	}
	r, err := record.DecodeReplicationJob(v)
	if err != nil {
		e.log.Error("replication: a queued job does not decode; it is skipped", "destination", dest.String(), "repository", k.repo, "reference", k.ref, "err", err)
		return nil, nil
	}
	if r.Failed {
		return nil, nil
	}
	j := &ReplicationJob{Destination: dest, Repository: k.repo, Digest: digest.Digest(r.Digest),
		QueuedAt: r.QueuedAt, Attempts: r.Attempts, seq: r.Seq, ref: k.ref}
	if !strings.Contains(k.ref, ":") {
		j.Tag = k.ref
	}
	return j, nil
}

// releaseReplication ends the claim of k: due again at retryAt (zero:
// not again, unless it was put again meanwhile).
func (e *Engine) releaseReplication(dest ReplicationDestination, k replKey, retryAt time.Time) {
	e.repl.mu.Lock()
	defer e.repl.mu.Unlock()
	q := e.repl.queue(dest)
	delete(q.inflight, k)
	switch {
	case q.again[k]:
		delete(q.again, k)
		q.add(k)
	case !retryAt.IsZero():
		q.delayed[k] = retryAt
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// AbandonReplication ends the claim of job without recording anything:
// it is due again at once, as it was (a replicator shutting down).
func (e *Engine) AbandonReplication(job *ReplicationJob) {
	e.repl.mu.Lock()
	defer e.repl.mu.Unlock()
	q := e.repl.queue(job.Destination)
	k := replKey{job.Repository, job.ref}
	delete(q.inflight, k)
	delete(q.again, k)
	q.add(k)
	if job.release != nil {
		job.release()
	}
}

// ReplicationResult is how a claimed replication ended.
type ReplicationResult struct {
	// Err is nil when the image (and its tag, unless Stale) reached the
	// destination.
	Err error
	// Permanent: retrying cannot help (access denied, refused): the job
	// is given up at once as FAILED with FailureCode.
	Permanent   bool
	FailureCode string
}

// FinishReplication records how job ended. Success removes the job
// (unless the reference was pushed again meanwhile: then it runs again
// for the new push) and marks the image COMPLETE at the destination. A
// failure is retried after a backoff (Options.ReplicationInitialBackoff
// doubling to ReplicationMaxBackoff, with jitter), or given up, FAILED,
// when permanent or past Options.ReplicationMaxAge. Its writes are not
// synced: a crash before they reach the disk runs the job again, which
// replication allows (it is idempotent at the destination).
func (e *Engine) FinishReplication(ctx context.Context, job *ReplicationJob, res ReplicationResult) error {
	k := replKey{job.Repository, job.ref}
	retryAt, err := e.finishReplication(job, k, res)
	if job.release != nil {
		job.release()
	}
	e.releaseReplication(job.Destination, k, retryAt)
	return err
}

// rescanReplication adds to the schedules the jobs other replicas queued
// (or left behind when they died): the index is the queue, each replica's
// schedule a view of it. Jobs claimed or scheduled here already are left
// as they are.
func (e *Engine) rescanReplication() {
	type found struct {
		dest ReplicationDestination
		k    replKey
		next time.Time
	}
	var all []found
	err := e.db.WalkReplicationJobs(func(dest, repo, ref string, v []byte) error {
		j, err := record.DecodeReplicationJob(v)
		if err != nil || j.Failed {
			return nil
		}
		d, err := ParseReplicationDestination(dest)
		if err != nil {
			return nil
		}
		all = append(all, found{d, replKey{repo, ref}, j.NextAttempt})
		return nil
	})
	if err != nil {
		e.log.Warn("replication: reading the queue", "err", err)
		return
	}
	now := e.now()
	e.repl.mu.Lock()
	defer e.repl.mu.Unlock()
	for _, f := range all {
		q := e.repl.queue(f.dest)
		if q.inflight[f.k] || q.queued[f.k] {
			continue
		}
		if _, ok := q.delayed[f.k]; ok {
			continue
		}
		if f.next.After(now) {
			q.delayed[f.k] = f.next
		} else {
			q.add(f.k)
		}
	}
}

func (e *Engine) finishReplication(job *ReplicationJob, k replKey, res ReplicationResult) (retryAt time.Time, err error) {
	dest := job.Destination.String()
	unlock := e.repoLocks.Lock(job.Repository)
	defer unlock()
	v, err := e.db.ReplicationJob(dest, k.repo, k.ref)
	current := false
	var r record.ReplicationJob
	switch {
	case err == nil:
		if r, err = record.DecodeReplicationJob(v); err != nil {
			return time.Time{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		current = r.Seq == job.seq
	case errors.Is(err, index.ErrNotFound):
	default:
		return time.Time{}, storageErr(err)
	}
	now := e.now()
	b := e.db.NewBatch()
	defer b.Close()
	q := e.repl.queueLocked(job.Destination)
	status := record.ReplicationStatus{Status: ReplicationComplete, UpdatedAt: now}
	var evq *eventQueue
	if res.Err == nil {
		q.completed.Add(1)
		if current {
			if err := b.DeleteReplicationJob(dest, k.repo, k.ref); err != nil {
				return time.Time{}, storageErr(err)
			}
		}
	} else {
		q.failures.Add(1)
		giveUp := res.Permanent || now.Sub(job.QueuedAt) >= e.opts.ReplicationMaxAge
		code := res.FailureCode
		if code == "" {
			code = ReplicationDestinationUnavailable
		}
		if current {
			r.Attempts++
			r.LastError = truncateError(res.Err.Error())
			if giveUp {
				r.Failed, r.FailureCode, r.NextAttempt = true, code, time.Time{}
			} else {
				r.NextAttempt = now.Add(events.Backoff{Initial: e.opts.ReplicationInitialBackoff, Max: e.opts.ReplicationMaxBackoff}.Delay(r.Attempts))
				retryAt = r.NextAttempt
			}
			nv, err := record.EncodeReplicationJob(r)
			if err != nil {
				return time.Time{}, err
			}
			if err := b.PutReplicationJob(dest, k.repo, k.ref, nv); err != nil {
				return time.Time{}, storageErr(err)
			}
		}
		if !giveUp {
			return retryAt, storageErr(b.Commit(false)) // the status stays IN_PROGRESS
		}
		q.givenUp.Add(1)
		if current {
			e.repl.mu.Lock()
			q.failed++
			e.repl.mu.Unlock()
			e.log.Warn("replication: given up", "destination", dest, "repository", k.repo, "reference", k.ref,
				"digest", string(job.Digest), "failureCode", code, "err", res.Err)
		}
		status = record.ReplicationStatus{Status: ReplicationFailed, FailureCode: code, FailureReason: truncateError(res.Err.Error()), UpdatedAt: now}
		if current {
			// The failure as an event at the source: in the audit log and
			// to the webhooks (ECR Replication Action, FAILED).
			evq = e.events(b)
			if err := evq.add(events.ReplicationAction{Result: events.ResultFailed, RepositoryName: job.Repository, ImageDigest: string(job.Digest),
				SourceAccount: e.opts.Account, SourceRegion: e.opts.Region, ActionType: events.ActionReplicate, ImageTag: job.Tag}, ""); err != nil {
				return time.Time{}, err
			}
		}
	}
	if ok, err := e.db.HasManifest(job.Repository, job.Digest); err == nil && ok {
		sv, err := record.EncodeReplicationStatus(status)
		if err != nil {
			return time.Time{}, err
		}
		if err := b.PutReplicationStatus(job.Repository, job.Digest, dest, sv); err != nil {
			return time.Time{}, storageErr(err)
		}
	}
	if err := b.Commit(false); err != nil {
		return time.Time{}, storageErr(err)
	}
	if evq != nil {
		evq.committed()
	}
	return retryAt, nil
}

// queueLocked is queue under repl.mu.
func (s *replState) queueLocked(dest ReplicationDestination) *replQueue {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue(dest)
}

func truncateError(s string) string {
	if len(s) > 1024 {
		return s[:1024]
	}
	return s
}

// RetryReplication queues again every given-up (FAILED) job of dest (of
// every destination when dest is nil), its attempts forgotten and its
// maximum age counted from now. It returns how many.
func (e *Engine) RetryReplication(ctx context.Context, dest *ReplicationDestination) (int, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	type job struct {
		dest ReplicationDestination
		k    replKey
		r    record.ReplicationJob
	}
	var found []job
	err := e.db.WalkReplicationJobs(func(ds, repo, ref string, v []byte) error {
		r, err := record.DecodeReplicationJob(v)
		if err != nil || !r.Failed {
			return nil
		}
		d, err := ParseReplicationDestination(ds)
		if err != nil || dest != nil && d != *dest {
			return nil
		}
		found = append(found, job{d, replKey{repo, ref}, r})
		return nil
	})
	if err != nil {
		return 0, storageErr(err)
	}
	n := 0
	for _, j := range found {
		ok, err := e.retryOne(j.dest, j.k)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

func (e *Engine) retryOne(dest ReplicationDestination, k replKey) (bool, error) {
	unlock := e.repoLocks.Lock(k.repo)
	defer unlock()
	v, err := e.db.ReplicationJob(dest.String(), k.repo, k.ref)
	if errors.Is(err, index.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, storageErr(err)
	}
	r, err := record.DecodeReplicationJob(v)
	if err != nil || !r.Failed {
		return false, nil
	}
	now := e.now()
	r = record.ReplicationJob{Digest: r.Digest, Seq: e.repl.seq.Add(1), QueuedAt: now}
	nv, err := record.EncodeReplicationJob(r)
	if err != nil {
		return false, err
	}
	sv, err := record.EncodeReplicationStatus(record.ReplicationStatus{Status: ReplicationInProgress, UpdatedAt: now})
	if err != nil {
		return false, err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutReplicationJob(dest.String(), k.repo, k.ref, nv); err != nil {
		return false, storageErr(err)
	}
	if ok, err := e.db.HasManifest(k.repo, digest.Digest(r.Digest)); err == nil && ok {
		if err := b.PutReplicationStatus(k.repo, digest.Digest(r.Digest), dest.String(), sv); err != nil {
			return false, storageErr(err)
		}
	}
	if err := b.Commit(true); err != nil {
		return false, storageErr(err)
	}
	e.repl.mu.Lock()
	q := e.repl.queue(dest)
	q.failed--
	q.add(k)
	e.repl.mu.Unlock()
	return true, nil
}

// ImageReplicationStatus is an image's replication to one destination.
type ImageReplicationStatus struct {
	Destination ReplicationDestination
	// Status is ReplicationInProgress, ReplicationComplete or
	// ReplicationFailed; FailureCode and FailureReason say why it failed.
	Status        string
	FailureCode   string
	FailureReason string
	UpdatedAt     time.Time
}

// ImageReplicationStatuses returns the image reference names (a tag or a
// digest) of repo, and its replication status at each destination it was
// queued for, in destination order (none: never replicated). Errors:
// ErrNameUnknown, ErrManifestUnknown, ErrClosed.
func (e *Engine) ImageReplicationStatuses(ctx context.Context, repo, reference string) (digest.Digest, []ImageReplicationStatus, error) {
	if err := e.checkOpen(); err != nil {
		return "", nil, err
	}
	if err := ValidateRepositoryName(repo); err != nil {
		return "", nil, err
	}
	if _, err := e.loadRepo(repo); err != nil {
		return "", nil, err
	}
	d := e.resolvedDigest(repo, reference)
	if ok, err := e.db.HasManifest(repo, d); err != nil && !errors.Is(err, index.ErrInvalidKey) {
		return "", nil, storageErr(err)
	} else if !ok {
		return "", nil, e.unknownManifest(repo, reference)
	}
	var out []ImageReplicationStatus
	err := e.db.WalkReplicationStatuses(repo, d, func(ds string, v []byte) error {
		dest, err := ParseReplicationDestination(ds)
		if err != nil {
			return nil
		}
		s, err := record.DecodeReplicationStatus(v)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		out = append(out, ImageReplicationStatus{Destination: dest, Status: s.Status, FailureCode: s.FailureCode, FailureReason: s.FailureReason, UpdatedAt: s.UpdatedAt})
		return nil
	})
	if err != nil {
		return "", nil, storageErr(err)
	}
	return d, out, nil
}

// resolvedDigest is the digest reference names in repo ("" when none).
func (e *Engine) resolvedDigest(repo, reference string) digest.Digest {
	tag, d, err := ParseReference(reference)
	if err != nil {
		return ""
	}
	if tag == "" {
		return d
	}
	t, err := e.db.Tag(repo, tag)
	if err != nil {
		return ""
	}
	return t
}

// ReplicationJobListing is one queued or given-up replication job.
type ReplicationJobListing struct {
	Destination string    `json:"destination"`
	Repository  string    `json:"repository"`
	Reference   string    `json:"reference"`
	Digest      string    `json:"digest"`
	QueuedAt    time.Time `json:"queuedAt"`
	Attempts    int       `json:"attempts,omitempty"`
	LastError   string    `json:"lastError,omitempty"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	Failed      bool      `json:"failed,omitempty"`
	FailureCode string    `json:"failureCode,omitempty"`
}

// ListReplicationJobs calls fn with each job (of destination dest, "" for
// all; only the given-up ones when failed), in destination, repository
// and reference order, until fn returns an error (returned) or limit
// (0: none) is reached.
func (e *Engine) ListReplicationJobs(ctx context.Context, dest string, failed bool, limit int, fn func(ReplicationJobListing) error) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	n := 0
	err := e.db.WalkReplicationJobs(func(ds, repo, ref string, v []byte) error {
		if dest != "" && ds != dest {
			return nil
		}
		r, err := record.DecodeReplicationJob(v)
		if err != nil {
			return fmt.Errorf("%w: replication job %s %s:%s: %v", ErrCorrupt, ds, repo, ref, err)
		}
		if failed && !r.Failed {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(ReplicationJobListing{Destination: ds, Repository: repo, Reference: ref, Digest: r.Digest, QueuedAt: r.QueuedAt,
			Attempts: r.Attempts, LastError: r.LastError, NextAttempt: r.NextAttempt, Failed: r.Failed, FailureCode: r.FailureCode}); err != nil {
			return err
		}
		n++
		if limit > 0 && n >= limit {
			return errEnough
		}
		return nil
	})
	if errors.Is(err, errEnough) {
		return nil
	}
	return err
}

// ReplicationFigures are one destination's queue figures since Open.
type ReplicationFigures struct {
	Destination ReplicationDestination
	// Pending counts the jobs queued, waiting for a retry or under way;
	// Failed those given up.
	Pending, Failed int
	// Completed, Failures and GivenUp count finished jobs, failed
	// attempts and jobs given up since Open.
	Completed, Failures, GivenUp uint64
}

// ReplicationFigures returns the figures of every destination that has or
// had jobs since Open, in destination order.
func (e *Engine) ReplicationFigures() []ReplicationFigures {
	e.repl.mu.Lock()
	defer e.repl.mu.Unlock()
	out := make([]ReplicationFigures, 0, len(e.repl.dests))
	for d, q := range e.repl.dests {
		pending := len(q.ready) + len(q.delayed) + len(q.inflight)
		for k := range q.again {
			if !q.inflight[k] {
				pending++
			}
		}
		out = append(out, ReplicationFigures{Destination: d, Pending: pending, Failed: q.failed,
			Completed: q.completed.Load(), Failures: q.failures.Load(), GivenUp: q.givenUp.Load()})
	}
	slices.SortFunc(out, func(a, b ReplicationFigures) int {
		return strings.Compare(a.Destination.String(), b.Destination.String())
	})
	return out
}

// ReplicationSourceHeader is the HTTP request header that marks a
// replicated push, "<account>/<region>" of the source registry: package
// replicate sends it, registryd's OCI API honours it only from an
// identity granted ecr:ReplicateImage (docs/replication.md).
const ReplicationSourceHeader = "Berth-Replication-Source"

// ReplicationSource names the registry a replicated push comes from.
type ReplicationSource struct {
	Account, Region string
}

// String is "<account>/<region>", as ReplicationSourceHeader carries it.
func (s ReplicationSource) String() string { return s.Account + "/" + s.Region }

// ParseReplicationSource reads "<account>/<region>". Errors wrap
// ErrInvalidArgument.
func ParseReplicationSource(h string) (ReplicationSource, error) {
	d, err := ParseReplicationDestination(h)
	if err != nil {
		return ReplicationSource{}, fmt.Errorf("%w: replication source %q: <account>/<region>", ErrInvalidArgument, truncateError(h))
	}
	return ReplicationSource{Account: d.RegistryID, Region: d.Region}, nil
}

type replicationSourceKey struct{}

// WithReplicationSource returns ctx marking the operations run with it
// as a replication from src into this registry: a repository they create
// gets the settings of the REPLICATION creation template (longest prefix,
// ROOT; ECR's defaults when none matches, whatever Options.CreateOnPush
// says), and a manifest they put emits ECR Replication Action instead of
// a PUSH. The embedder sets it only for a caller it authorized as a
// replicator (registryd: ecr:ReplicateImage on the repository).
func WithReplicationSource(ctx context.Context, src ReplicationSource) context.Context {
	return context.WithValue(ctx, replicationSourceKey{}, src)
}

// replicationSource returns the source ctx carries.
func replicationSource(ctx context.Context) (ReplicationSource, bool) {
	s, ok := ctx.Value(replicationSourceKey{}).(ReplicationSource)
	return s, ok
}
