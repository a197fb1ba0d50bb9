package engine

import (
	"context"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/record"
)

// yielding reports whether the scan workers are waiting for a quiet
// moment.
func yielding(e *Engine) bool {
	e.scans.mu.Lock()
	defer e.scans.mu.Unlock()
	return e.scans.yieldingSince != 0
}

// jobAttempts is the runs a queued scan job has started (-1: no job).
func jobAttempts(t *testing.T, e *Engine, repo string, d digest.Digest) int {
	b, err := e.db.ScanJob(repo, d)
	if err != nil {
		return -1
	}
	j, err := record.DecodeScanJob(b)
	require.NoError(t, err)
	return j.Attempts
}

// TestScanYieldsToPushes: a scan on push waits while a client's write is
// in flight and runs once the registry has been quiet for the quiet
// period; with writes that never stop, it runs after ScanMaxYield.
func TestScanYieldsToPushes(t *testing.T) {
	ctx := context.Background()
	o := scanOptions(nil)
	o.ScanQuietPeriod = 20 * time.Millisecond
	o.ScanMaxYield = time.Hour
	e := openTestEngine(t, o)
	_, err := e.CreateRepository(ctx, "scanned", RepositorySettings{ScanOnPush: true})
	require.NoError(t, err)
	layer := rootfsLayer(t, "debian")

	writing := e.pushes.begin() // another client's push, in flight
	require.Equal(t, 1, e.PushesInFlight())
	d, _ := pushImage(t, e, "scanned", "v1", layer)
	require.Eventually(t, func() bool { return yielding(e) }, 30*time.Second, time.Millisecond, "the worker waits")
	require.Equal(t, 0, jobAttempts(t, e, "scanned", d), "no scan started while a write is in flight")
	s, err := e.ImageScan(ctx, "scanned", "v1", false)
	require.NoError(t, err)
	require.Equal(t, ScanInProgress, s.Status)
	writing()
	require.Equal(t, 0, e.PushesInFlight())
	waitScans(t, e)
	s, err = e.ImageScan(ctx, "scanned", "v1", false)
	require.NoError(t, err)
	require.Equal(t, ScanComplete, s.Status)
	require.False(t, yielding(e))

	// Writes that never stop hold scans back for ScanMaxYield, no more.
	o = scanOptions(nil)
	o.ScanQuietPeriod = 20 * time.Millisecond
	o.ScanMaxYield = 200 * time.Millisecond
	e = openTestEngine(t, o)
	_, err = e.CreateRepository(ctx, "scanned", RepositorySettings{ScanOnPush: true})
	require.NoError(t, err)
	writing = e.pushes.begin()
	defer writing()
	t0 := time.Now()
	pushImage(t, e, "scanned", "v1", layer)
	waitScans(t, e)
	require.GreaterOrEqual(t, time.Since(t0), 200*time.Millisecond)
	s, err = e.ImageScan(ctx, "scanned", "v1", false)
	require.NoError(t, err)
	require.Equal(t, ScanComplete, s.Status)
	require.Equal(t, 1, e.PushesInFlight())
}

func TestPushActivityQuiet(t *testing.T) {
	var a pushActivity
	require.Positive(t, a.quiet(), "no write yet: quiet since the start")
	end := a.begin()
	end2 := a.begin()
	require.Zero(t, a.quiet())
	end()
	require.Zero(t, a.quiet(), "one write still in flight")
	end2()
	q := a.quiet()
	require.GreaterOrEqual(t, q, time.Duration(0))
	require.Less(t, q, time.Minute)
}
