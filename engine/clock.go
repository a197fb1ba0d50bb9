package engine

// The engine's clock (Options.Clock) and the timers built on it.

import (
	"context"
	"sync"
	"time"
)

// Clock is the engine's source of time. It decides when things happened
// (push and pull times, creation and update times of repositories,
// templates and rules, blob and link times that the collector's grace
// period reads, upload session times), when they expire (idle uploads,
// upload sessions at a collection, unwrapped data keys, lifecycle ages
// such as sinceImagePushed), and when scheduled work runs (collections,
// lifecycle policies, pull-time flushes, the parking of idle uploads,
// retries of a paused rewrap). Tests pass a manual clock
// (enginetest.Clock) to make hours pass without waiting for them.
//
// How long work took (a collection's phases, a rewrap) is measured on the
// system's monotonic clock whatever the Clock, and so are the mtimes of
// files the collector compares its cutoff with: a manual clock should not
// run behind the system's.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f, in its own goroutine, once d has passed, unless
	// stop is called first; stop reports whether it prevented the call.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// now is the engine clock's time in UTC, as records store it.
func (e *Engine) now() time.Time { return e.clock.Now().UTC() }

// ticker delivers a tick every period of the engine's clock; ticks the
// receiver is not ready for are dropped, as time.Ticker drops them.
type ticker struct {
	C chan struct{}

	mu      sync.Mutex
	stopped bool
	stop    func() bool
}

func newTicker(c Clock, period time.Duration) *ticker {
	t := &ticker{C: make(chan struct{}, 1)}
	var arm func()
	arm = func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.stopped {
			return
		}
		t.stop = c.AfterFunc(period, func() {
			select {
			case t.C <- struct{}{}:
			default:
			}
			arm()
		})
	}
	arm()
	return t
}

// Stop ends the ticks.
func (t *ticker) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	if t.stop != nil {
		t.stop()
	}
}

// sleep waits d on the engine's clock, or until ctx ends; it reports
// whether d passed.
func (e *Engine) sleep(ctx context.Context, d time.Duration) bool {
	done := make(chan struct{})
	stop := e.clock.AfterFunc(d, func() { close(done) })
	defer stop()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
