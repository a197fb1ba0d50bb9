package engine

// Clients' writes in flight, for background work that yields to them.
// A scan competes with pushes for the CPU; ECR's scan on push is
// asynchronous, so the scan worker waits for a quiet moment (no write in
// flight and none ended within Options.ScanQuietPeriod) before it takes
// a job, for at most Options.ScanMaxYield in a row (scans.go).

import (
	"context"
	"sync/atomic"
	"time"
)

// pushActivity counts the clients' writes (uploads, mounts, manifests)
// in flight and when the last one ended. Times are the monotonic wall
// clock, not the engine's clock: this is scheduling, and a test that
// holds the engine's clock still must not hold scans back with it.
type pushActivity struct {
	inflight atomic.Int64
	lastEnd  atomic.Int64 // nanoseconds since activityEpoch
}

// activityEpoch makes pushActivity's times monotonic durations.
var activityEpoch = time.Now()

func activityNow() int64 { return int64(time.Since(activityEpoch)) }

// begin counts a write in flight until the returned function is called.
func (a *pushActivity) begin() func() {
	a.inflight.Add(1)
	return func() {
		a.lastEnd.Store(activityNow())
		a.inflight.Add(-1)
	}
}

// quiet returns how long no write has been in flight (0 while one is).
func (a *pushActivity) quiet() time.Duration {
	if a.inflight.Load() > 0 {
		return 0
	}
	last := a.lastEnd.Load()
	if last == 0 {
		return time.Duration(activityNow()) // no write since the start
	}
	return time.Duration(activityNow() - last)
}

// PushesInFlight is the number of clients' writes (blob uploads and
// their chunks, mounts, manifest puts) being served now.
func (e *Engine) PushesInFlight() int { return int(e.pushes.inflight.Load()) }

// awaitQuiet waits, before a scan takes a job, until no client write has
// been in flight for Options.ScanQuietPeriod, or until scans have yielded
// for Options.ScanMaxYield in a row (then scans run alongside the
// writes until the next quiet moment), or until ctx ends or the engine
// stops (then it returns false). A negative quiet period does not wait.
func (e *Engine) awaitQuiet(ctx context.Context) bool {
	quiet, capTotal := e.opts.ScanQuietPeriod, e.opts.ScanMaxYield
	if quiet < 0 {
		return true
	}
	for {
		q := e.pushes.quiet()
		if q >= quiet {
			e.scans.mu.Lock()
			e.scans.yieldingSince = 0
			e.scans.mu.Unlock()
			return true
		}
		now := activityNow()
		e.scans.mu.Lock()
		if e.scans.yieldingSince == 0 {
			e.scans.yieldingSince = now
		}
		left := capTotal - time.Duration(now-e.scans.yieldingSince)
		e.scans.mu.Unlock()
		if left <= 0 {
			return true // yielded long enough: run now, whatever the load
		}
		t := time.NewTimer(min(quiet-q, left))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		case <-e.stop:
			t.Stop()
			return false
		}
	}
}
