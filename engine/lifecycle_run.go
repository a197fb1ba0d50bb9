package engine

// Scheduled lifecycle runs: every repository with a lifecycle policy, in
// name order, each applied in one batch that also records the run's
// progress, so that a run a crash cuts short resumes after the last
// repository it finished (applying a policy again is harmless: what it
// expired is gone, and it expires what is due now). docs/gc.md,
// "Schedules".

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/berthstore/berth/engine/internal/audit"
	"github.com/berthstore/berth/engine/internal/record"
	"github.com/berthstore/berth/gc"
	"github.com/berthstore/berth/index"
)

// Audit actions of lifecycle runs.
const (
	// ActionApplyLifecycle is the action of a lifecycle run's records (at
	// its start and its end), as of the admin API's lifecycle apply.
	ActionApplyLifecycle = "berth:ApplyLifecycle"
	// ActionPolicyExecution is the action of the record of each image a
	// scheduled run expires or transitions to the archive: ECR's
	// CloudTrail event for lifecycle policy actions (eventSource
	// ecr.amazonaws.com, eventName PolicyExecutionEvent).
	ActionPolicyExecution = "ecr:PolicyExecutionEvent"
)

// lifecycleRunPage is how many repository names a run lists at a time.
const lifecycleRunPage = 512

// testHookLifecycleRepo, when set (tests only), is called after each
// repository a scheduled lifecycle run has finished.
var testHookLifecycleRepo func(repo string)

// LifecycleRunReport is the outcome of a scheduled lifecycle run.
type LifecycleRunReport struct {
	// ID names the run; its audit records carry it as their request id.
	// A resumed run keeps the ID of the run it resumes.
	ID string `json:"id"`
	// Trigger is TriggerSchedule or TriggerResume.
	Trigger string `json:"trigger"`
	// Result is RunOK or RunFailed.
	Result RunResult `json:"result"`
	// Started and Finished bound the run (the engine's clock); Duration
	// is its length on the system's monotonic clock.
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Duration time.Duration `json:"duration"`
	// ResumedAfter is the last repository the run that this one resumes
	// had finished ("" when it started from the first).
	ResumedAfter string `json:"resumedAfter,omitempty"`
	// Repositories counts the repositories whose policy was applied;
	// Failed those left for the next run (each logged).
	Repositories int `json:"repositories"`
	Failed       int `json:"failed"`
	// ImagesExpired counts the images expired; ManifestsDeleted the
	// manifests that went (the images, their referrers, their index
	// children that nothing kept lists).
	ImagesExpired    int `json:"imagesExpired"`
	ManifestsDeleted int `json:"manifestsDeleted"`
	// ImagesArchived counts the images moved to the archive storage
	// class by transition rules.
	ImagesArchived int `json:"imagesArchived"`
	// Error says why a failed run failed.
	Error string `json:"error,omitempty"`
}

// lifecycleRun is a scheduled lifecycle run under way: what applying a
// repository's policy records for it.
type lifecycleRun struct {
	e  *Engine
	id string
	st record.Schedule
}

// recordAction records in the audit log, durably, that the run acts on x
// in repo: its action (EXPIRE, or TRANSITION with the target storage
// class), naming the rule.
func (r *lifecycleRun) recordAction(ctx context.Context, repo string, x Expiry) error {
	p := map[string]string{
		"schedule": ScheduleLifecycle, "imageDigest": string(x.Digest), "action": x.Action.Type,
		"rulePriority": strconv.Itoa(x.RulePriority), "imagePushedAt": x.PushedAt.UTC().Format(time.RFC3339Nano),
		"storageClass": string(x.StorageClass),
	}
	if x.Action.TargetStorageClass != "" {
		p["targetStorageClass"] = string(x.Action.TargetStorageClass)
	}
	if len(x.Tags) > 0 {
		p["imageTags"] = strings.Join(x.Tags, ",")
	}
	if x.Description != "" {
		p["ruleDescription"] = x.Description
	}
	return r.e.recordSystem(ctx, r.id, ActionPolicyExecution, repo, p)
}

// advance adds to b the run's progress: repo is finished (gcState.schedMu
// held).
func (r *lifecycleRun) advance(b *index.Batch, repo string) error {
	r.st.Cursor = repo
	return r.e.putSchedule(b, ScheduleLifecycle, r.st)
}

// scheduledLifecycle makes one scheduled lifecycle run: the policy of
// every repository that has one, after the cursor of a run it resumes,
// then a collection when it expired or archived anything and
// Options.GCAfterLifecycle is set. The run is recorded in the audit log at
// its start and its end, and each image it expires or archives before it
// is acted on.
func (e *Engine) scheduledLifecycle(ctx context.Context, trigger string) RunResult {
	ctx, end, res, ok := e.beginScheduled(ctx, &e.gcs.lifecycleMu, leaseLifecycle, ScheduleLifecycle, e.opts.LifecycleInterval, "lifecycle run", trigger)
	if !ok {
		return res
	}
	defer end()
	began := time.Now()
	rep := LifecycleRunReport{Trigger: trigger, Started: e.now()}
	run := &lifecycleRun{e: e}
	fail := func(err error) RunResult {
		rep.Result, rep.Error = RunFailed, err.Error()
		e.finishLifecycleRun(&rep, began)
		e.log.Warn("scheduled lifecycle run failed", "run", rep.ID, "err", err)
		return RunFailed
	}
	e.gcs.schedMu.Lock()
	st, err := e.loadSchedule(ScheduleLifecycle)
	e.gcs.schedMu.Unlock()
	if err != nil {
		return fail(err)
	}
	if st.Running && st.RunID != "" {
		rep.ID, rep.ResumedAfter = st.RunID, st.Cursor
		rep.Trigger = TriggerResume
	} else {
		rep.ID, st.Cursor = audit.NewEventID(), ""
	}
	run.id = rep.ID
	params := map[string]string{"schedule": ScheduleLifecycle, "trigger": rep.Trigger, "phase": "start"}
	if rep.ResumedAfter != "" {
		params["resumedAfter"] = rep.ResumedAfter
	}
	if err := e.recordSystem(ctx, rep.ID, ActionApplyLifecycle, "", params); err != nil {
		return fail(err)
	}
	st.RunID, st.StartedAt, st.Running = rep.ID, rep.Started, true
	e.gcs.schedMu.Lock()
	// The state as the run goes on: the schedule's timer writes only
	// NextDue, after the run, so the run's copy is the state.
	err = e.saveSchedule(ScheduleLifecycle, st, true)
	e.gcs.schedMu.Unlock()
	if err != nil {
		return fail(err)
	}
	run.st = st
	e.log.Info("scheduled lifecycle run started", "run", rep.ID, "trigger", rep.Trigger, "resumedAfter", rep.ResumedAfter)

	after := rep.ResumedAfter
	for {
		names, err := e.db.ListRepositories(after, lifecycleRunPage)
		if err != nil {
			return fail(storageErr(err))
		}
		for _, name := range names {
			if ctx.Err() != nil {
				// Closing: the state says where to go on.
				e.log.Info("scheduled lifecycle run interrupted; it resumes after the next start", "run", rep.ID, "after", run.st.Cursor)
				return RunFailed
			}
			e.lifecycleRunRepo(ctx, run, name, &rep)
		}
		if len(names) < lifecycleRunPage {
			break
		}
		after = names[len(names)-1]
	}
	rep.Result = RunOK
	e.gcs.schedMu.Lock()
	run.st.FinishedAt, run.st.Result, run.st.Cursor, run.st.Running = e.now(), string(RunOK), "", false
	err = e.saveSchedule(ScheduleLifecycle, run.st, true)
	e.gcs.schedMu.Unlock()
	if err != nil {
		return fail(err)
	}
	e.finishLifecycleRun(&rep, began)
	e.log.Info("scheduled lifecycle run finished", "run", rep.ID, "repositories", rep.Repositories, "failed", rep.Failed,
		"imagesExpired", rep.ImagesExpired, "imagesArchived", rep.ImagesArchived, "manifestsDeleted", rep.ManifestsDeleted,
		"duration", rep.Duration)
	if e.opts.GCAfterLifecycle && rep.ImagesExpired+rep.ImagesArchived > 0 && ctx.Err() == nil {
		e.scheduledGC(ctx, TriggerLifecycle)
	}
	return RunOK
}

// lifecycleRunRepo applies repo's policy, if it has one, for run.
func (e *Engine) lifecycleRunRepo(ctx context.Context, run *lifecycleRun, repo string, rep *LifecycleRunReport) {
	r, err := e.loadRepo(repo)
	if errors.Is(err, ErrNameUnknown) {
		return // deleted since it was listed
	}
	if err == nil && r.LifecyclePolicy == "" {
		return
	}
	var out lifecycleOutcome
	if err == nil {
		var p *gc.Policy
		if p, err = gc.ParsePolicy(r.LifecyclePolicy); err != nil {
			err = policyErr(err)
		} else {
			out, err = e.applyLifecycle(ctx, repo, p, run)
		}
	}
	if err != nil {
		rep.Failed++
		e.log.Warn("scheduled lifecycle: repository left for the next run", "run", rep.ID, "repository", repo, "err", err)
		return
	}
	rep.Repositories++
	rep.ImagesExpired += out.Expired()
	rep.ManifestsDeleted += out.Manifests
	rep.ImagesArchived += out.Archived
	if testHookLifecycleRepo != nil {
		testHookLifecycleRepo(repo)
	}
}

// finishLifecycleRun completes rep, counts it, keeps it as the last, and
// records its end in the audit log.
func (e *Engine) finishLifecycleRun(rep *LifecycleRunReport, began time.Time) {
	rep.Finished, rep.Duration = e.now(), time.Since(began)
	e.countRuns(ScheduleLifecycle, rep.Result, 1)
	e.gcs.statsMu.Lock()
	last := *rep
	e.gcs.stats.LastLifecycleRun = &last
	e.gcs.statsMu.Unlock()
	if rep.ID == "" {
		return
	}
	p := map[string]string{
		"schedule": ScheduleLifecycle, "trigger": rep.Trigger, "phase": "end", "result": string(rep.Result),
		"repositories": strconv.Itoa(rep.Repositories), "failed": strconv.Itoa(rep.Failed),
		"imagesExpired": strconv.Itoa(rep.ImagesExpired), "imagesArchived": strconv.Itoa(rep.ImagesArchived),
		"manifestsDeleted": strconv.Itoa(rep.ManifestsDeleted), "duration": rep.Duration.String(),
	}
	if rep.Error != "" {
		p["error"] = rep.Error
	}
	if err := e.recordSystem(context.Background(), rep.ID, ActionApplyLifecycle, "", p); err != nil {
		e.log.Warn("audit record of a lifecycle run's end not written", "run", rep.ID, "err", err)
	}
}
