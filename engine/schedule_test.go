package engine

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/clock"
	"github.com/berthstore/berth/engine/internal/record"
)

// awsKeepOneUntagged is the policy of the ECR user guide's "Examples of
// lifecycle policies", "Filtering on image count", as it is printed there.
const awsKeepOneUntagged = `{
    "rules": [
        {
            "rulePriority": 1,
            "description": "Keep only one untagged image, expire all others",
            "selection": {
                "tagStatus": "untagged",
                "countType": "imageCountMoreThan",
                "countNumber": 1
            },
            "action": {
                "type": "expire"
            }
        }
    ]
}`

// scheduleRepo is what seedScheduleRepo pushed into a repository.
type scheduleRepo struct {
	// index is a tagged multi-platform index; children its two untagged
	// platform manifests (never expired while the index is kept).
	index    digest.Digest
	children []digest.Digest
	// untagged are three untagged images, oldest first; the example
	// policy expires the first two.
	untagged []digest.Digest
	// tagged is a tagged image the policy does not select.
	tagged digest.Digest
}

// seedScheduleRepo pushes a repository for the example policy, a minute
// of clk between pushes (clk may be nil: the system clock's own order).
func seedScheduleRepo(t testing.TB, e *Engine, clk *clock.Manual, repo string) scheduleRepo {
	t.Helper()
	ctx := context.Background()
	tick := func() {
		if clk != nil {
			clk.Advance(time.Minute)
		}
	}
	var s scheduleRepo
	kids := map[digest.Digest]int{}
	for _, arch := range []string{"amd64", "arm64"} {
		d, p := pushImage(t, e, repo, "tmp-"+arch, rnd(2000))
		require.NoError(t, e.DeleteTag(ctx, repo, "tmp-"+arch))
		kids[d] = len(p)
		s.children = append(s.children, d)
		tick()
	}
	s.index = pushIndex(t, e, repo, "release", kids)
	tick()
	for i := range 3 {
		d, _ := pushImage(t, e, repo, fmt.Sprintf("tmp-%d", i), rnd(3000))
		require.NoError(t, e.DeleteTag(ctx, repo, fmt.Sprintf("tmp-%d", i)))
		s.untagged = append(s.untagged, d)
		tick()
	}
	s.tagged, _ = pushImage(t, e, repo, "v1", rnd(1000))
	tick()
	return s
}

// auditOf returns the audit records of action, oldest first.
func auditOf(t testing.TB, e *Engine, action string) []AuditRecord {
	t.Helper()
	var out []AuditRecord
	require.NoError(t, e.AuditRecords(context.Background(), AuditQuery{Action: action, OldestFirst: true}, func(r AuditRecord) error {
		out = append(out, r)
		return nil
	}))
	return out
}

// TestScheduledLifecycleRun: the lifecycle schedule applies every
// repository's policy when it falls due, with nobody asking: it expires
// exactly what a preview listed, never an index's children, then a
// collection brings the bytes back; figures, audit records and the
// schedule's next run follow.
func TestScheduledLifecycleRun(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	o := quietOptions()
	o.Clock, o.LifecycleInterval, o.GCAfterLifecycle, o.GCGrace = clk, 24*time.Hour, true, -1
	e := openTestEngine(t, o)
	start := clk.Now()
	require.Equal(t, []ScheduleInfo{{Name: ScheduleLifecycle, Interval: 24 * time.Hour, NextRun: start.Add(24 * time.Hour).UTC()}}, e.Schedules())

	a := seedScheduleRepo(t, e, clk, "team/a")
	b := seedScheduleRepo(t, e, clk, "team/b")
	seedScheduleRepo(t, e, clk, "team/no-policy")
	require.NoError(t, e.PutLifecyclePolicy(ctx, "team/a", awsKeepOneUntagged))
	require.NoError(t, e.PutLifecyclePolicy(ctx, "team/b", awsKeepOneUntagged))

	preview := map[string][]digest.Digest{}
	for _, repo := range []string{"team/a", "team/b"} {
		p, err := e.StartLifecyclePolicyPreview(ctx, repo, "")
		require.NoError(t, err)
		require.Equal(t, PreviewComplete, p.Status)
		_, err = e.LifecyclePolicyPreview(ctx, repo, "", func(r LifecyclePreviewResult) error {
			assert.Equal(t, 1, r.RulePriority)
			assert.Equal(t, PreviewActionExpire, r.Action)
			preview[repo] = append(preview[repo], r.Digest)
			return nil
		})
		require.NoError(t, err)
	}
	require.ElementsMatch(t, a.untagged[:2], preview["team/a"], "the two older untagged images; the index's children are no images")
	require.ElementsMatch(t, b.untagged[:2], preview["team/b"])
	before := len(manifestSet(t, e, "team/a"))

	clk.Advance(start.Add(24 * time.Hour).Sub(clk.Now()))

	for repo, s := range map[string]scheduleRepo{"team/a": a, "team/b": b} {
		now := manifestSet(t, e, repo)
		assert.Len(t, now, before-2, repo)
		for _, d := range preview[repo] {
			assert.False(t, now[d], "%s: %s was previewed, and expired", repo, d)
		}
		for _, d := range append([]digest.Digest{s.index, s.tagged, s.untagged[2]}, s.children...) {
			assert.True(t, now[d], "%s: %s stays", repo, d)
		}
		require.NoError(t, pullAll(ctx, e, repo, "release"))
	}
	assert.Len(t, manifestSet(t, e, "team/no-policy"), before, "no policy, nothing expires")
	assert.Empty(t, unreferencedBlobs(t, e), "the collection after the run took the expired images' blobs")
	requireFsckClean(t, e, false)

	st := e.GCStats()
	assert.Equal(t, map[RunResult]int64{RunOK: 1}, st.LifecycleRuns)
	assert.Equal(t, map[RunResult]int64{RunOK: 1}, st.GCRuns)
	assert.Equal(t, map[int]int64{1: 4}, st.ImagesExpired)
	assert.Positive(t, st.BytesFreed)
	assert.Equal(t, RunOK, st.LastGCResult)
	assert.False(t, st.LastGCRun.IsZero())
	require.NotNil(t, st.LastLifecycleRun)
	r := *st.LastLifecycleRun
	assert.Equal(t, RunOK, r.Result)
	assert.Equal(t, TriggerSchedule, r.Trigger)
	assert.Equal(t, 2, r.Repositories)
	assert.Equal(t, 4, r.ImagesExpired)
	assert.Equal(t, 4, r.ManifestsDeleted)
	assert.Zero(t, r.ImagesArchived)
	assert.Zero(t, r.Failed)
	assert.Equal(t, start.Add(24*time.Hour).UTC(), r.Started)

	// The audit log: the run at its start and end, each image before it
	// went, naming the rule, and the collection after it; all the
	// engine's own (principal type Local, user system).
	runs := auditOf(t, e, ActionApplyLifecycle)
	require.Len(t, runs, 2)
	assert.Equal(t, "start", runs[0].Parameters["phase"])
	assert.Equal(t, "end", runs[1].Parameters["phase"])
	assert.Equal(t, "4", runs[1].Parameters["imagesExpired"])
	assert.Equal(t, "ok", runs[1].Parameters["result"])
	images := auditOf(t, e, ActionPolicyExecution)
	require.Len(t, images, 4)
	var expired []digest.Digest
	for _, rec := range append(runs, images...) {
		assert.Equal(t, AuditLocal, rec.PrincipalType)
		assert.Equal(t, AuditSystemUser, rec.UserName)
		assert.Equal(t, AuditAPIEngine, rec.API)
		assert.True(t, rec.Mutating)
		assert.Equal(t, r.ID, rec.RequestID, "one run, one request id")
	}
	for _, rec := range images {
		assert.Equal(t, "1", rec.Parameters["rulePriority"])
		assert.Equal(t, "Keep only one untagged image, expire all others", rec.Parameters["ruleDescription"])
		assert.Equal(t, e.RepositoryARN(rec.Repository), rec.Resource)
		assert.True(t, slices.Contains(preview[rec.Repository], digest.Digest(rec.Parameters["imageDigest"])))
		expired = append(expired, digest.Digest(rec.Parameters["imageDigest"]))
	}
	assert.ElementsMatch(t, append(preview["team/a"], preview["team/b"]...), expired)
	gcs := auditOf(t, e, ActionCollectGarbage)
	require.Len(t, gcs, 2)
	assert.Equal(t, TriggerLifecycle, gcs[0].Parameters["trigger"])
	assert.Equal(t, "ok", gcs[1].Parameters["result"])
	assert.NotEqual(t, "0", gcs[1].Parameters["bytesFreed"])

	// The next run is a day after this one's due time; it finds nothing
	// more to expire (a run is idempotent) and so collects nothing.
	require.Equal(t, start.Add(48*time.Hour).UTC(), e.Schedules()[0].NextRun)
	clk.Advance(24 * time.Hour)
	st = e.GCStats()
	assert.Equal(t, map[RunResult]int64{RunOK: 2}, st.LifecycleRuns)
	assert.Equal(t, map[RunResult]int64{RunOK: 1}, st.GCRuns, "nothing expired, no collection after it")
	assert.Equal(t, 0, st.LastLifecycleRun.ImagesExpired)
	assert.Equal(t, 2, st.LastLifecycleRun.Repositories)
}

// TestScheduleSkipsWhatItOutlasts: a run that outlasts its interval is not
// overlapped by the next: the due times it outlasted are skipped and
// counted, and the schedule goes on at its own cadence. A scheduled
// collection that falls due while another runs is skipped too.
func TestScheduleSkipsWhatItOutlasts(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	o := quietOptions()
	o.Clock, o.LifecycleInterval, o.GCInterval = clk, time.Hour, 90*time.Minute
	e := openTestEngine(t, o)
	start := clk.Now()
	seedScheduleRepo(t, e, nil, "slow/a")
	require.NoError(t, e.PutLifecyclePolicy(ctx, "slow/a", awsKeepOneUntagged))

	// The run takes two and a half hours of the engine's clock.
	testHookLifecycleRepo = func(string) { clk.Advance(150 * time.Minute) }
	t.Cleanup(func() { testHookLifecycleRepo = nil })
	// A collection someone asked for is under way meanwhile.
	e.gcs.runMu.Lock()
	clk.Advance(time.Hour)
	e.gcs.runMu.Unlock()
	testHookLifecycleRepo = nil

	st := e.GCStats()
	assert.Equal(t, map[RunResult]int64{RunOK: 1, RunSkipped: 2}, st.LifecycleRuns, "due at 2h and 3h, outlasted (the run ended at 3h30)")
	assert.Equal(t, map[RunResult]int64{RunSkipped: 2}, st.GCRuns, "due at 1h30 and 3h while a collection ran")
	infos := e.Schedules()
	require.Len(t, infos, 2)
	for _, s := range infos {
		switch s.Name {
		case ScheduleLifecycle:
			assert.Equal(t, start.Add(4*time.Hour).UTC(), s.NextRun)
		case ScheduleGC:
			assert.Equal(t, start.Add(270*time.Minute).UTC(), s.NextRun, "the gc schedule keeps its own cadence")
		}
	}
	clk.Advance(start.Add(270 * time.Minute).Sub(clk.Now()))
	st = e.GCStats()
	assert.Equal(t, int64(2), st.LifecycleRuns[RunOK], "due at 4h")
	assert.Equal(t, int64(1), st.GCRuns[RunOK], "due at 4h30")
}

// TestScheduleSurvivesRestart: the next due time is kept in the store, so
// that restarts do not postpone a run; a run that fell due while the store
// was closed runs soon after it opens; a run that a crash cut short
// resumes after the last repository it finished.
func TestScheduleSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := manualClock()
	o := quietOptions()
	o.Clock, o.LifecycleInterval = clk, 24*time.Hour
	open := func() *Engine {
		e, err := Open(dir, o)
		require.NoError(t, err)
		return e
	}
	start := clk.Now()
	e := open()
	repos := map[string]scheduleRepo{}
	for _, r := range []string{"r/a", "r/b", "r/c"} {
		repos[r] = seedScheduleRepo(t, e, clk, r) // a minute between pushes: the order is the push order
		require.NoError(t, e.PutLifecyclePolicy(ctx, r, awsKeepOneUntagged))
	}
	require.NoError(t, e.Close())

	clk.Advance(5 * time.Hour)
	e = open()
	require.Equal(t, start.Add(24*time.Hour).UTC(), e.Schedules()[0].NextRun, "a restart does not postpone the run")
	require.NoError(t, e.Close())

	clk.Advance(30 * time.Hour) // the store was closed when the run fell due
	e = open()
	require.Equal(t, clk.Now().Add(scheduleResumeDelay).UTC(), e.Schedules()[0].NextRun, "overdue: soon after the start")
	require.False(t, e.Schedules()[0].Resume)
	// As a crash would leave it: a run under way that had finished r/a.
	_, err := e.updateSchedule(ScheduleLifecycle, true, func(st *record.Schedule) {
		st.Running, st.RunID, st.Cursor, st.StartedAt = true, "cut-short-run", "r/a", e.now()
	})
	require.NoError(t, err)
	require.NoError(t, e.Close())

	e = open()
	t.Cleanup(func() { e.Close() })
	info := e.Schedules()[0]
	require.True(t, info.Resume)
	require.Equal(t, clk.Now().Add(scheduleResumeDelay).UTC(), info.NextRun)
	clk.Advance(scheduleResumeDelay)
	r := e.GCStats().LastLifecycleRun
	require.NotNil(t, r)
	assert.Equal(t, TriggerResume, r.Trigger)
	assert.Equal(t, "cut-short-run", r.ID, "a resumed run keeps its id")
	assert.Equal(t, "r/a", r.ResumedAfter)
	assert.Equal(t, 2, r.Repositories, "r/b and r/c")
	assert.True(t, manifestSet(t, e, "r/a")[repos["r/a"].untagged[0]], "r/a was done before the crash (here: it was not, and waits for the next run)")
	assert.False(t, manifestSet(t, e, "r/c")[repos["r/c"].untagged[0]])
	assert.False(t, e.Schedules()[0].Resume)

	clk.Advance(24 * time.Hour)
	r = e.GCStats().LastLifecycleRun
	assert.Equal(t, TriggerSchedule, r.Trigger)
	assert.Equal(t, 3, r.Repositories)
	assert.Equal(t, 2, r.ImagesExpired, "r/a's turn")
	assert.False(t, manifestSet(t, e, "r/a")[repos["r/a"].untagged[0]])
}

// TestScheduleJitter: each interval is moved by at most the jitter, and
// the moves spread.
func TestScheduleJitter(t *testing.T) {
	s := &scheduler{interval: time.Hour, jitter: 0.1}
	lo, hi := time.Hour, time.Hour
	for range 2000 {
		d := s.jittered()
		require.GreaterOrEqual(t, d, 54*time.Minute)
		require.LessOrEqual(t, d, 66*time.Minute)
		lo, hi = min(lo, d), max(hi, d)
	}
	assert.Less(t, lo, 55*time.Minute)
	assert.Greater(t, hi, 65*time.Minute)
	assert.Equal(t, 66*time.Minute, s.maxInterval())
	s.jitter = 0
	assert.Equal(t, time.Hour, s.jittered())

	for _, j := range []float64{-0.1, 0.6} {
		_, err := Open(t.TempDir(), &Options{ScheduleJitter: j})
		require.ErrorIs(t, err, ErrInvalidArgument, "jitter %v", j)
	}
	_, err := Open(t.TempDir(), &Options{LifecycleInterval: -time.Second})
	require.ErrorIs(t, err, ErrInvalidArgument)
}
