//go:build linux

package audit

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The crash test: a child process (this test binary, run again) appends
// records from several goroutines and prints the event id of each record
// it has been acknowledged, after Append returns; the parent kills it
// with SIGKILL at a random moment, reopens the log and checks that every
// acknowledged record is there, once, and that the log reads without a
// damaged line. The same directory serves every run, so each run also
// recovers what the previous kill left, and small segments make the
// writer rotate while it is killed.

const (
	crashChildEnv = "BERTH_AUDIT_CRASH_CHILD" // the log's directory
	crashSeedEnv  = "BERTH_AUDIT_CRASH_SEED"
	crashKillsEnv = "BERTH_AUDIT_CRASH_KILLS" // overrides the number of runs
)

// crashOptions are the child's and the parent's: 64 KiB segments, so
// that rotations happen within a run.
func crashOptions() *Options {
	return &Options{SegmentBytes: 64 << 10, Logger: quietLogger()}
}

// TestCrashChild is the child: it does nothing unless run by TestCrash.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		return // not a child: the parent is TestCrash
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	if err := crashChild(dir, seed); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
}

func crashChild(dir string, seed uint64) error {
	l, err := Open(dir, crashOptions())
	if err != nil {
		return err
	}
	var out sync.Mutex
	say := func(s string) {
		out.Lock()
		defer out.Unlock()
		// One write(2) of less than PIPE_BUF bytes: the parent never
		// reads half a line.
		os.Stdout.WriteString(s + "\n")
	}
	say("ready")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(g)))
			for i := 0; ; i++ {
				rec := sample(i, fmt.Sprintf("repo-%d", g))
				rec.EventID = NewEventID()
				// User agents up to 1 KiB, and one record in 16 of 16 to
				// 64 KiB (parameters of 4 KiB): a write spans pages, and a
				// kill can stop it between two (a torn line).
				rec.UserAgent = strings.Repeat("u", r.IntN(1<<10))
				if r.IntN(16) == 0 {
					rec.Parameters = map[string]string{}
					for k := range 4 + r.IntN(MaxParameters-4) {
						rec.Parameters[fmt.Sprint("p", k)] = strings.Repeat("v", MaxTextBytes)
					}
				}
				durable := r.IntN(4) == 0
				if durable {
					rec.Decision = ExplicitDeny
				}
				if err := l.Append(rec, durable); err != nil {
					say("error " + err.Error())
					return
				}
				say("ack " + rec.EventID)
			}
		})
	}
	wg.Wait()
	return fmt.Errorf("an append failed")
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs 40 child processes (a few seconds); -short leaves it out")
	}
	kills := 40
	if s := os.Getenv(crashKillsEnv); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		kills = n
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(2026, 11)) // deterministic: the same kill delays every run
	acked := map[string]bool{}
	var torn, tornRuns int64
	start := time.Now()
	var childTime, checkTime time.Duration
	for run := range kills {
		t1 := time.Now()
		ids := crashRun(t, dir, r.Uint64(), time.Duration(5+r.IntN(60))*time.Millisecond)
		for _, id := range ids {
			acked[id] = true
		}

		t2 := time.Now()
		childTime += t2.Sub(t1)
		var logged lockedBuffer
		opts := crashOptions()
		opts.Logger = slogTo(&logged)
		l, err := Open(dir, opts)
		require.NoError(t, err)
		st := l.Status()
		if st.DroppedAtOpen > 0 {
			torn += st.DroppedAtOpen
			tornRuns++
		}
		seen := make(map[string]bool, len(acked))
		require.NoError(t, l.Records(context.Background(), Query{Order: OldestFirst}, func(rec Record) error {
			if seen[rec.EventID] {
				return fmt.Errorf("event %s twice", rec.EventID)
			}
			seen[rec.EventID] = true
			return nil
		}))
		require.NotContains(t, logged.String(), "not records", "run %d: the log has damaged lines", run)
		for id := range acked {
			require.True(t, seen[id], "run %d: acknowledged record %s lost", run, id)
		}
		require.NoError(t, l.Close())
		checkTime += time.Since(t2)
	}
	t.Logf("children %v, checks %v", childTime, checkTime)
	t.Logf("%d kills in %v: %d acknowledged records, all present; torn lines cut at open after %d kills (%d bytes)",
		kills, time.Since(start).Round(time.Millisecond), len(acked), tornRuns, torn)
	require.Greater(t, len(acked), kills*10)
}

// crashRun starts a child on dir, kills it delay after it is ready, and
// returns the event ids it acknowledged.
func crashRun(t *testing.T, dir string, seed uint64, delay time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashSeedEnv+"="+strconv.FormatUint(seed, 10))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())

	ready := make(chan struct{})
	var ids []string
	var childErr string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "ready":
				close(ready)
			case strings.HasPrefix(line, "ack "):
				ids = append(ids, strings.TrimPrefix(line, "ack "))
			case strings.HasPrefix(line, "error "):
				childErr = line
			}
		}
	}()
	select {
	case <-ready:
	case <-done:
		cmd.Wait()
		t.Fatalf("the child ended before it was ready: %s", stderr.String())
	}
	// A real sleep: the kill must land at an arbitrary moment of a real
	// process's real work (inside a write(2), between a write and its
	// acknowledgement, in a rotation). A fake clock moves only the log's
	// idea of time; it cannot choose where the kernel stops the child.
	time.Sleep(delay)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	<-done
	err = cmd.Wait()
	require.Error(t, err, "the child must die by the signal")
	require.Empty(t, childErr, "the child's appends failed: %s", stderr.String())
	return ids
}
