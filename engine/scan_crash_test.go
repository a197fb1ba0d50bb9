//go:build unix

package engine

// A scan interrupted by SIGKILL: a child process (this test binary again,
// dispatched by TestMain) pushes an image into a repository with
// scanOnPush and is killed while the scan runs; the store, reopened,
// runs the queued scan to completion.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/record"
)

const scanCrashChildEnv = "BERTH_SCAN_CRASH_CHILD"

func init() { testChildren[scanCrashChildEnv] = runScanCrashChild }

// runScanCrashChild imports the fixture advisories, pushes the Debian
// fixture image with scan on push, says "scanning" when the scan has
// started, and waits to be killed.
func runScanCrashChild(dir string) int {
	ctx := context.Background()
	started := make(chan struct{})
	scanStarted = func(string, digest.Digest) {
		close(started)
		select {} // the scan stays under way until the kill
	}
	e, err := Open(dir, quietOptions())
	if err != nil {
		return childFailed(err)
	}
	time.AfterFunc(gcCrashChildLimit, func() {
		fmt.Printf("error: not killed after %v\n", gcCrashChildLimit)
		os.Exit(5)
	})
	if _, err := e.ImportVulnerabilities(ctx, osvFile("transcribed")); err != nil {
		return childFailed(err)
	}
	if _, err := e.CreateRepository(ctx, "r", RepositorySettings{ScanOnPush: true}); err != nil {
		return childFailed(err)
	}
	layer, err := rootfsTar("debian")
	if err != nil {
		return childFailed(err)
	}
	if _, err := tryPushImage(ctx, e, "r", "v1", layer); err != nil {
		return childFailed(err)
	}
	<-started
	fmt.Println("scanning")
	select {}
}

// TestScanSurvivesSIGKILL: the scan the killed child was running is
// IN_PROGRESS with its job queued (one attempt counted) after the
// restart, then completes with the fixture's findings.
func TestScanSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), scanCrashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(out)
	require.True(t, sc.Scan(), "the child said nothing")
	require.Equal(t, "scanning", sc.Text())
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ok && ws.Signaled(), "the child was killed")

	// Reopened without workers first: the state the kill left.
	o := quietOptions()
	o.ScanWorkers = -1
	e, err := Open(dir, o)
	require.NoError(t, err)
	ctx := context.Background()
	s, err := e.ImageScan(ctx, "r", "v1", false)
	require.NoError(t, err)
	require.Equal(t, ScanInProgress, s.Status)
	jb, err := e.db.ScanJob("r", s.Digest)
	require.NoError(t, err)
	job, err := record.DecodeScanJob(jb)
	require.NoError(t, err)
	require.Equal(t, 1, job.Attempts)
	require.NoError(t, e.Close())

	e, err = Open(dir, quietOptions())
	require.NoError(t, err)
	defer e.Close()
	waitScans(t, e)
	s, err = e.ImageScan(ctx, "r", "v1", true)
	require.NoError(t, err)
	require.Equal(t, ScanComplete, s.Status)
	require.Equal(t, expectedFindings(t, "debian"), findingLines(s.Findings))
}
