package engine

// Scheduled collections: the gc schedule's runs (Options.GCInterval) and
// the collection after a lifecycle run that expired images
// (Options.GCAfterLifecycle).

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/berthstore/berth/engine/internal/audit"
	"github.com/berthstore/berth/engine/internal/record"
)

// ActionCollectGarbage is the audit action of a collection (the admin
// API's, and a scheduled one's).
const ActionCollectGarbage = "berth:CollectGarbage"

// scheduledGC makes one scheduled collection with Options.GCGrace: skipped
// (and counted) when a collection is running, else recorded in the audit
// log before it starts and when it ends, and in the gc schedule's state (a
// collection a crash cut short is made again soon after the next Open;
// a collection is idempotent).
func (e *Engine) scheduledGC(ctx context.Context, trigger string) RunResult {
	ctx, done, res, ok := e.beginScheduled(ctx, &e.gcs.runMu, leaseGC, ScheduleGC, e.opts.GCInterval, "gc", trigger)
	if !ok {
		return res
	}
	defer done()
	var err error
	runID := audit.NewEventID()
	grace := e.opts.GCGrace
	if grace == 0 {
		grace = DefaultGCGrace
	}
	grace = max(grace, 0) // negative: none
	err = e.recordSystem(ctx, runID, ActionCollectGarbage, "", map[string]string{
		"schedule": ScheduleGC, "trigger": trigger, "phase": "start", "grace": grace.String(),
	})
	if err == nil {
		_, err = e.updateSchedule(ScheduleGC, true, func(st *record.Schedule) {
			st.RunID, st.StartedAt, st.Running = runID, e.now(), true
		})
	}
	if err != nil {
		e.countRuns(ScheduleGC, RunFailed, 1)
		e.log.Warn("scheduled gc not started", "trigger", trigger, "err", err)
		return RunFailed
	}
	e.log.Info("scheduled gc started", "trigger", trigger, "grace", grace, "run", runID)
	r, err := e.collectGarbageLocked(ctx, GCOptions{Grace: e.opts.GCGrace})
	if err != nil && ctx.Err() != nil {
		// Closing: the state says the run was cut short; the next Open
		// makes it again.
		e.log.Info("scheduled gc interrupted; it runs again after the next start", "run", runID)
		return RunFailed
	}
	result := RunOK
	end := map[string]string{
		"schedule": ScheduleGC, "trigger": trigger, "phase": "end",
		"blobsSwept": strconv.Itoa(r.BlobsSwept), "bytesFreed": strconv.FormatInt(r.BytesFreed+r.OrphanBytesFreed, 10),
		"orphanFilesRemoved": strconv.Itoa(r.OrphanFilesRemoved), "uploadsExpired": strconv.Itoa(r.UploadsExpired),
		"duration": r.Duration.String(),
	}
	if err != nil {
		result = RunFailed
		end["error"] = err.Error()
		e.log.Warn("scheduled gc failed", "trigger", trigger, "run", runID, "err", err)
	} else {
		e.log.Info("scheduled gc finished", "trigger", trigger, "run", runID, "blobsSwept", r.BlobsSwept,
			"bytesFreed", r.BytesFreed+r.OrphanBytesFreed, "duration", r.Duration)
	}
	end["result"] = string(result)
	if _, serr := e.updateSchedule(ScheduleGC, true, func(st *record.Schedule) {
		st.FinishedAt, st.Result, st.Running = e.now(), string(result), false
	}); serr != nil {
		e.log.Warn("schedule state not saved", "schedule", ScheduleGC, "err", serr)
	}
	if aerr := e.recordSystem(ctx, runID, ActionCollectGarbage, "", end); aerr != nil {
		e.log.Warn("audit record of a scheduled gc's end not written", "run", runID, "err", aerr)
	}
	return result
}

// beginScheduled starts a scheduled run of schedule (named what in the
// log) when no run holds mu in this process, no replica holds its lease
// and no replica made this interval's run; ok false: skipped or failed
// (counted and logged), with the result to return. end releases what
// beginScheduled took.
func (e *Engine) beginScheduled(ctx context.Context, mu *sync.Mutex, lease, schedule string, interval time.Duration, what, trigger string) (_ context.Context, end func(), _ RunResult, ok bool) {
	if !mu.TryLock() {
		e.countRuns(schedule, RunSkipped, 1)
		e.log.Info("scheduled "+what+" skipped: a run is under way", "trigger", trigger)
		return ctx, nil, RunSkipped, false
	}
	ctx, release, err := e.tryLease(ctx, lease)
	if errors.Is(err, errLeaseHeld) {
		mu.Unlock()
		e.countRuns(schedule, RunSkipped, 1)
		e.log.Info("scheduled "+what+" skipped: another replica runs one", "trigger", trigger)
		return ctx, nil, RunSkipped, false
	}
	if err != nil {
		mu.Unlock()
		e.countRuns(schedule, RunFailed, 1)
		e.log.Warn("scheduled "+what+" not started", "trigger", trigger, "err", err)
		return ctx, nil, RunFailed, false
	}
	end = func() { release(); mu.Unlock() }
	if e.ranElsewhere(schedule, interval) {
		end()
		e.log.Info("scheduled "+what+" skipped: another replica made this run", "trigger", trigger)
		return ctx, nil, RunSkipped, false
	}
	return ctx, end, RunOK, true
}
