//go:build unix

package engine

// Crash in the middle of a scheduled lifecycle run: a child process (this
// test binary run again with BERTH_LIFECYCLE_CRASH_CHILD set, which
// TestMain dispatches) runs the lifecycle schedule's run over a store of
// many repositories and stops after the k-th repository (it says so and
// waits); the parent SIGKILLs it there, reopens the store, and checks that
// nothing was lost, that the run stopped where it was killed, and that
// the next run (the resumed one) finishes the work: exactly what the
// previews listed is expired, fsck is clean, and the collection after it
// leaves no unreferenced blob.

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	lifecycleCrashChildEnv = "BERTH_LIFECYCLE_CRASH_CHILD"
	lifecycleCrashAfterEnv = "BERTH_LIFECYCLE_CRASH_AFTER"
)

func init() { testChildren[lifecycleCrashChildEnv] = runLifecycleCrashChild }

// runLifecycleCrashChild runs one scheduled lifecycle run over the store
// in dir and stops after the repository numbered by
// BERTH_LIFECYCLE_CRASH_AFTER has been applied, until it is killed.
func runLifecycleCrashChild(dir string) int {
	after, err := strconv.Atoi(os.Getenv(lifecycleCrashAfterEnv))
	if err != nil {
		return childFailed(err)
	}
	e, err := Open(dir, quietOptions())
	if err != nil {
		return childFailed(err)
	}
	time.AfterFunc(gcCrashChildLimit, func() {
		fmt.Printf("error: not killed after %v\n", gcCrashChildLimit)
		os.Exit(5)
	})
	n := 0
	testHookLifecycleRepo = func(repo string) {
		n++
		if n == after {
			fmt.Printf("stopped after %s\n", repo)
			select {} // until the parent's SIGKILL
		}
	}
	e.scheduledLifecycle(context.Background(), TriggerSchedule)
	fmt.Println("error: the run finished")
	return 4
}

// TestLifecycleRunCrash kills a lifecycle run after the first, a middle
// and the last but one repository of twelve.
func TestLifecycleRunCrash(t *testing.T) {
	const repos = 12
	for _, after := range []int{1, 6, repos - 1} {
		t.Run(fmt.Sprintf("after %d", after), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			e, err := Open(dir, quietOptions())
			require.NoError(t, err)
			names := make([]string, repos)
			expected := map[string][]digest.Digest{}
			seeded := map[string]scheduleRepo{}
			total := 0
			for i := range names {
				names[i] = fmt.Sprintf("crash/r%02d", i)
				seeded[names[i]] = seedScheduleRepo(t, e, nil, names[i])
				require.NoError(t, e.PutLifecyclePolicy(ctx, names[i], awsKeepOneUntagged))
				exp, err := e.LifecyclePreview(ctx, names[i], "")
				require.NoError(t, err)
				for _, x := range exp {
					expected[names[i]] = append(expected[names[i]], x.Digest)
				}
				require.Len(t, expected[names[i]], 2)
				total += 2
			}
			before := map[string]map[digest.Digest]bool{}
			for _, n := range names {
				before[n] = manifestSet(t, e, n)
			}
			require.NoError(t, e.Close())

			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), lifecycleCrashChildEnv+"="+dir, lifecycleCrashAfterEnv+"="+strconv.Itoa(after))
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			cmd.Stderr = os.Stderr
			require.NoError(t, cmd.Start())
			sc := bufio.NewScanner(out)
			require.True(t, sc.Scan(), "the child said nothing")
			require.Equal(t, "stopped after "+names[after-1], sc.Text())
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			_ = cmd.Wait()
			ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
			require.True(t, ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL, "the child ended on its own")

			// Nothing lost: the repositories the run finished lost exactly
			// what their previews listed, the others nothing.
			clk := manualClock()
			o := quietOptions()
			o.Clock, o.LifecycleInterval, o.GCAfterLifecycle, o.GCGrace = clk, 24*time.Hour, true, -1
			e, err = Open(dir, o)
			require.NoError(t, err)
			defer e.Close()
			requireFsckClean(t, e, false)
			for i, n := range names {
				want := maps.Clone(before[n])
				if i < after {
					for _, d := range expected[n] {
						delete(want, d)
					}
				}
				assert.Equal(t, want, manifestSet(t, e, n), "%s after the kill", n)
			}
			recorded := auditOf(t, e, ActionPolicyExecution)
			assert.Len(t, recorded, 2*after, "each image expired before the kill was recorded before it went")

			info := e.Schedules()[0]
			require.True(t, info.Resume, "the run was cut short")
			clk.Advance(scheduleResumeDelay)
			r := e.GCStats().LastLifecycleRun
			require.NotNil(t, r)
			assert.Equal(t, TriggerResume, r.Trigger)
			assert.Equal(t, names[after-1], r.ResumedAfter)
			assert.Equal(t, repos-after, r.Repositories)
			assert.Equal(t, RunOK, r.Result)
			for _, n := range names {
				want := maps.Clone(before[n])
				for _, d := range expected[n] {
					delete(want, d)
				}
				assert.Equal(t, want, manifestSet(t, e, n), "%s: exactly what the preview listed is gone", n)
				require.NoError(t, pullAll(ctx, e, n, "release"))
				require.NoError(t, pullAll(ctx, e, n, "v1"))
			}
			recorded = auditOf(t, e, ActionPolicyExecution)
			require.Len(t, recorded, total)
			for _, rec := range recorded {
				assert.Equal(t, r.ID, rec.RequestID, "the resumed run is the run that was cut short")
			}
			assert.Empty(t, unreferencedBlobs(t, e), "the collection after the resumed run")
			requireFsckClean(t, e, false)
		})
	}
}
