package engine

// The engine's schedules: lifecycle policies of every repository
// (lifecycle_run.go) and online garbage collection (gc_run.go), each run
// at its interval of the engine's clock, jittered, never two runs of one
// schedule at once. Each schedule's state is kept in the index
// (record.Schedule, key S 0 <name>), so that a restart neither postpones a
// run (the next one stays due when it was) nor forgets one a crash cut
// short (it resumes soon after the next Open). docs/gc.md, "Schedules".

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/berthstore/berth/engine/internal/record"
	"github.com/berthstore/berth/index"
)

// The engine's schedules, by name (ScheduleInfo.Name, audit records).
const (
	ScheduleLifecycle = "lifecycle"
	ScheduleGC        = "gc"
)

// RunResult is how a scheduled run ended.
type RunResult string

// The results of a scheduled run.
const (
	// RunOK: the run finished (a lifecycle run may have left some
	// repositories for the next, LifecycleRunReport.Failed says).
	RunOK RunResult = "ok"
	// RunFailed: the run could not be made or stopped on an error.
	RunFailed RunResult = "failed"
	// RunSkipped: the run fell due while the previous one (or a
	// collection someone asked for) was still going; it was not made.
	RunSkipped RunResult = "skipped"
)

// Triggers of a run, as reports and audit records name them.
const (
	// TriggerSchedule: the schedule fell due.
	TriggerSchedule = "schedule"
	// TriggerResume: the first run after an Open that found the last run
	// cut short; it goes on where that one stopped.
	TriggerResume = "resume"
	// TriggerLifecycle: a collection run after a lifecycle run that
	// expired images (Options.GCAfterLifecycle).
	TriggerLifecycle = "lifecycle"
)

// scheduleResumeDelay is how soon after Open a run that is overdue, or
// that a crash cut short, starts (or the interval, if shorter): the
// daemon settles first, and the run is not lost to a restart.
const scheduleResumeDelay = time.Minute

// AuditSystemUser is the user name of the audit records of the engine's
// own work (schedules): principal type AuditLocal, API AuditAPIEngine.
const AuditSystemUser = "system"

// ScheduleInfo describes one of the engine's schedules (registryd logs
// them at start).
type ScheduleInfo struct {
	// Name is ScheduleLifecycle or ScheduleGC.
	Name string
	// Interval is the time between runs; each is moved by up to Jitter
	// (a fraction of Interval) either way at random.
	Interval time.Duration
	Jitter   float64
	// NextRun is when the next run is due on the engine's clock.
	NextRun time.Time
	// Resume is set when the last run was cut short: the next one goes on
	// where it stopped.
	Resume bool
}

// Schedules describes the schedules the options turned on (none: nil).
func (e *Engine) Schedules() []ScheduleInfo {
	var out []ScheduleInfo
	for _, s := range []*scheduler{e.gcs.lifecycleSched, e.gcs.gcSched} {
		if s == nil {
			continue
		}
		s.mu.Lock()
		out = append(out, ScheduleInfo{Name: s.name, Interval: s.interval, Jitter: s.jitter, NextRun: s.next.UTC(), Resume: s.resume})
		s.mu.Unlock()
	}
	return out
}

// scheduler runs one schedule: run at each due time of the engine's
// clock, one at a time (the next due time is set when a run ends; the
// times that passed meanwhile are skipped and counted).
type scheduler struct {
	e        *Engine
	name     string
	interval time.Duration
	jitter   float64
	// run makes one run; it returns how it ended.
	run func(ctx context.Context, trigger string) RunResult

	mu        sync.Mutex
	next      time.Time
	resume    bool
	stopTimer func() bool
	stopped   bool
}

// newScheduler reads the schedule's state, decides when its first run is
// due, records that (so that a restart keeps it) and arms the timer.
func (e *Engine) newScheduler(ctx context.Context, name string, interval time.Duration, run func(context.Context, string) RunResult) *scheduler {
	s := &scheduler{e: e, name: name, interval: interval, jitter: e.opts.ScheduleJitter, run: run}
	e.gcs.schedMu.Lock()
	defer e.gcs.schedMu.Unlock()
	st, err := e.loadSchedule(name)
	if err != nil {
		e.log.Warn("schedule state unreadable; starting afresh", "schedule", name, "err", err)
		st = record.Schedule{}
	}
	now := e.clock.Now()
	soon := now.Add(min(scheduleResumeDelay, interval))
	switch {
	case st.Running:
		// A run was cut short: resume it soon.
		s.next, s.resume = soon, true
	case st.NextDue.IsZero() || st.NextDue.After(now.Add(s.maxInterval())):
		// Never armed, or armed with a longer interval than now set.
		s.next = now.Add(s.jittered())
	case st.NextDue.Before(soon):
		// Overdue (the daemon was down when it fell due).
		s.next = soon
	default:
		s.next = st.NextDue
	}
	if st.NextDue != s.next {
		st.NextDue = s.next
		if err := e.saveSchedule(name, st, true); err != nil {
			e.log.Warn("schedule state not saved", "schedule", name, "err", err)
		}
	}
	s.mu.Lock()
	s.armLocked(ctx)
	s.mu.Unlock()
	return s
}

// jittered is the interval moved by up to jitter either way, at random.
func (s *scheduler) jittered() time.Duration {
	if s.jitter <= 0 {
		return s.interval
	}
	f := 1 + s.jitter*(2*rand.Float64()-1)
	return time.Duration(float64(s.interval) * f)
}

// maxInterval is the longest a jittered interval can be.
func (s *scheduler) maxInterval() time.Duration {
	return time.Duration(float64(s.interval) * (1 + max(s.jitter, 0)))
}

// armLocked arms the timer for s.next (s.mu held).
func (s *scheduler) armLocked(ctx context.Context) {
	if s.stopped {
		return
	}
	s.stopTimer = s.e.clock.AfterFunc(s.next.Sub(s.e.clock.Now()), func() { s.fire(ctx) })
}

// fire makes the run that fell due, then sets and arms the next due
// time: a jittered interval after this one's, past every due time the run
// outlasted (each counted as skipped).
func (s *scheduler) fire(ctx context.Context) {
	if !s.e.enterBackground() {
		return
	}
	defer s.e.wg.Done()
	s.mu.Lock()
	due, trigger := s.next, TriggerSchedule
	if s.resume {
		trigger, s.resume = TriggerResume, false
	}
	s.mu.Unlock()

	s.run(ctx, trigger)

	now := s.e.clock.Now()
	next := due.Add(s.jittered())
	skipped := 0
	for !next.After(now) {
		skipped++
		next = next.Add(s.interval)
	}
	if skipped > 0 {
		s.e.countRuns(s.name, RunSkipped, skipped)
		s.e.log.Warn("scheduled run outlasted its interval; the runs that fell due meanwhile are skipped",
			"schedule", s.name, "interval", s.interval, "skipped", skipped)
	}
	if ctx.Err() != nil {
		return // closing: the state says where to go on
	}
	if _, err := s.e.updateSchedule(s.name, false, func(st *record.Schedule) { st.NextDue = next }); err != nil {
		s.e.log.Warn("schedule state not saved", "schedule", s.name, "err", err)
	}
	s.mu.Lock()
	s.next = next
	s.armLocked(ctx)
	s.mu.Unlock()
}

// stop disarms the schedule for good.
func (s *scheduler) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.stopTimer != nil {
		s.stopTimer()
	}
}

// enterBackground counts a background task that Close waits for; false
// (nothing counted) when the engine is closed.
func (e *Engine) enterBackground() bool {
	e.upMu.Lock()
	defer e.upMu.Unlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	return true
}

// loadSchedule reads schedule name's state (zero when it has none).
func (e *Engine) loadSchedule(name string) (record.Schedule, error) {
	b, err := e.db.Schedule(name)
	if errors.Is(err, index.ErrNotFound) {
		return record.Schedule{}, nil
	}
	if err != nil {
		return record.Schedule{}, storageErr(err)
	}
	st, err := record.DecodeSchedule(b)
	if err != nil {
		return record.Schedule{}, fmt.Errorf("%w: schedule %s: %v", ErrCorrupt, name, err)
	}
	return st, nil
}

// updateSchedule changes schedule name's state with fn and writes it,
// synced when sync is set; it returns the state written.
func (e *Engine) updateSchedule(name string, sync bool, fn func(*record.Schedule)) (record.Schedule, error) {
	e.gcs.schedMu.Lock()
	defer e.gcs.schedMu.Unlock()
	if e.coordinated() {
		// Other replicas write the same state.
		defer e.repoLocks.Lock("schedule\x00" + name)()
	}
	st, err := e.loadSchedule(name)
	if err != nil {
		return st, err
	}
	fn(&st)
	return st, e.saveSchedule(name, st, sync)
}

// saveSchedule writes schedule name's state, synced when sync is set
// (gcState.schedMu held).
func (e *Engine) saveSchedule(name string, st record.Schedule, sync bool) error {
	b := e.db.NewBatch()
	defer b.Close()
	if err := e.putSchedule(b, name, st); err != nil {
		return err
	}
	return storageErr(b.Commit(sync))
}

// putSchedule adds schedule name's state to b.
func (e *Engine) putSchedule(b *index.Batch, name string, st record.Schedule) error {
	v, err := record.EncodeSchedule(st)
	if err != nil {
		return err
	}
	return storageErr(b.PutSchedule(name, v))
}

// recordSystem records, durably, a change the engine makes by itself
// (principal type AuditLocal, user AuditSystemUser, API AuditAPIEngine),
// before making it: the caller makes the change only when it returns nil.
func (e *Engine) recordSystem(ctx context.Context, runID, action, repo string, params map[string]string) error {
	rec := AuditRecord{
		RequestID:     runID,
		UserName:      AuditSystemUser,
		PrincipalType: AuditLocal,
		SourceIP:      "local",
		UserAgent:     "berth engine",
		API:           AuditAPIEngine,
		Action:        action,
		Resource:      "*",
		Repository:    repo,
		Parameters:    params,
		Decision:      AuditAllow,
		Statement:     "allowed: the engine's own work: schedules, tier jobs (no policy is evaluated)",
		Mutating:      true,
	}
	if repo != "" {
		rec.Resource = e.RepositoryARN(repo)
	}
	return e.RecordAudit(ctx, rec, true)
}

// countRuns adds n runs of schedule name that ended with r.
func (e *Engine) countRuns(name string, r RunResult, n int) {
	e.gcs.statsMu.Lock()
	defer e.gcs.statsMu.Unlock()
	st := &e.gcs.stats
	m := &st.GCRuns
	if name == ScheduleLifecycle {
		m = &st.LifecycleRuns
	}
	if *m == nil {
		*m = map[RunResult]int64{}
	}
	(*m)[r] += int64(n)
}

// ranElsewhere reports, when replicas share the store, whether another
// one made schedule name's run that fell due now: a run started less than
// half an interval ago, and finished. The schedule's state is in the
// index, so each replica's timer fires for the same due time; the lease
// lets one run at a time, this check lets one of them run. Call it under
// the schedule's lease.
func (e *Engine) ranElsewhere(name string, interval time.Duration) bool {
	if !e.coordinated() || interval <= 0 {
		return false
	}
	e.gcs.schedMu.Lock()
	st, err := e.loadSchedule(name)
	e.gcs.schedMu.Unlock()
	if err != nil || st.Running || st.StartedAt.IsZero() {
		return false
	}
	return e.now().Sub(st.StartedAt) < interval/2
}
