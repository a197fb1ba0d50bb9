//go:build unix

package engine

// Crash safety of the archive tier: a child process (this test binary run
// again with BERTH_ARCHIVE_CHILD set) archives and restores the images of
// a store over and over; the parent SIGKILLs it at random moments, in the
// middle of blob moves and tier jobs, then reopens the store and checks
// that the jobs left pending finish, every image is ACTIVE (and pulls
// bit-exact) or ARCHIVED (its blobs in the archive tier), and fsck finds
// nothing wrong.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/index"
)

const (
	// archiveChildEnv names the store directory of a child process.
	archiveChildEnv = "BERTH_ARCHIVE_CHILD"
	// archiveKillsEnv overrides the number of kills (default 12).
	archiveKillsEnv = "BERTH_ARCHIVE_KILLS"
	// archiveImages is the number of images the child moves.
	archiveImages = 6
)

func init() { testChildren[archiveChildEnv] = runArchiveChild }

// archiveLayer is the layer of image i: compressible text of 1.5 MiB,
// so that a move recompresses for a while.
func archiveLayer(i int) []byte { return crashData(uint64(3*(i+1)), 3<<19) }

// runArchiveChild flips the storage class of random images and waits for
// the tier jobs, until it is killed.
func runArchiveChild(dir string) int {
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	e, err := Open(dir, crashOptions())
	if err != nil {
		return childFailed(err)
	}
	fmt.Println("ready")
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 1))
	for {
		tag := fmt.Sprint("v", r.IntN(archiveImages))
		im, err := e.Image(ctx, "crash/arch", tag)
		if err != nil {
			return childFailed(err)
		}
		to := StorageArchive
		if im.Status != ImageActive {
			to = StorageStandard
		}
		// The worker may finish a restore between the read and the call
		// (ACTIVATING read, ACTIVE now): the update is then refused, and
		// the next round reads the new status.
		if _, err := e.UpdateImageStorageClass(ctx, "crash/arch", tag, to); err != nil && !errors.Is(err, ErrStorageClassUpdate) {
			return childFailed(err)
		}
		if r.IntN(3) == 0 {
			if err := e.WaitTierJobs(ctx); err != nil {
				return childFailed(err)
			}
		}
	}
}

// TestArchiveCrash kills a child moving images between the tiers with
// SIGKILL at random moments (12 times, or $BERTH_ARCHIVE_KILLS) and checks
// the store after each kill.
func TestArchiveCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	kills := 12
	if s := os.Getenv(archiveKillsEnv); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, archiveKillsEnv)
		kills = n
	}
	dir := t.TempDir()
	e, err := Open(dir, crashOptions())
	require.NoError(t, err)
	payloads := map[string][]byte{}
	for i := range archiveImages {
		_, p := pushImage(t, e, "crash/arch", fmt.Sprint("v", i), archiveLayer(i))
		payloads[fmt.Sprint("v", i)] = p
	}
	require.NoError(t, e.Close())

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	resumed := 0
	for i := range kills {
		c := startTestChild(t, archiveChildEnv+"="+dir, crashSeedEnv+"="+strconv.FormatUint(seed+uint64(i), 10))
		// The kill must land at a random point of the child's real work
		// (another process, on the system's clock): a clock cannot serve.
		time.Sleep(time.Duration(20+r.IntN(400)) * time.Millisecond)
		require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
		err := c.cmd.Wait()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "child %d:\n%s", i, c.output())
		ws, ok := ee.Sys().(syscall.WaitStatus)
		require.True(t, ok)
		require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL,
			"child %d ended by itself (%v) instead of being killed:\n%s", i, err, c.output())
		resumed += verifyArchiveStore(t, dir, payloads)
	}
	t.Logf("archive crash: %d kills, %d tier jobs resumed after a kill", kills, resumed)
}

// verifyArchiveStore reopens the store, lets the pending tier jobs finish
// and checks every image, then collects garbage (the orphans a killed
// move left) and checks the store again. It returns the number of jobs
// that were pending.
func verifyArchiveStore(t *testing.T, dir string, payloads map[string][]byte) int {
	t.Helper()
	e, err := Open(dir, crashOptions())
	require.NoError(t, err)
	defer e.Close()
	return checkArchiveStore(t, e, payloads)
}

// checkArchiveStore is verifyArchiveStore on a store opened by the
// caller.
func checkArchiveStore(t *testing.T, e *Engine, payloads map[string][]byte) int {
	t.Helper()
	ctx := context.Background()
	pending, err := e.pendingTierJobs()
	require.NoError(t, err)
	waitTiers(t, e)
	for tag, payload := range payloads {
		im, err := e.Image(ctx, "crash/arch", tag)
		require.NoError(t, err)
		blobs := manifestBlobs(t, payload)
		switch im.Status {
		case ImageActive:
			m, err := e.GetManifest(ctx, "crash/arch", tag)
			require.NoError(t, err)
			require.Equal(t, payload, m.Payload)
			i, _ := strconv.Atoi(tag[1:])
			require.True(t, bytes.Equal(archiveLayer(i), readArchived(t, e, "crash/arch", blobs[1])), "%s pulls bit-exact", tag)
		case ImageArchived:
			for _, d := range blobs {
				require.Equal(t, index.TierArchive, tierOf(t, e, d), "%s: blob %s", tag, d)
			}
		default:
			t.Fatalf("%s is %s once the tier jobs are done", tag, im.Status)
		}
	}
	r, err := e.Fsck(ctx, FsckOptions{Verify: true})
	require.NoError(t, err)
	require.True(t, r.Clean(), "%v", r.Corrupt)
	_, err = e.CollectGarbage(ctx, noGrace)
	require.NoError(t, err)
	r, err = e.Fsck(ctx, FsckOptions{})
	require.NoError(t, err)
	assert.True(t, r.Clean(), "%v", r.Corrupt)
	assert.Empty(t, r.Orphans, "gc removes what a killed move left")
	return pending
}
