package enginetest

import (
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/engine/internal/clock"
)

// Clock is a manual clock for tests: it stands still until Advance moves
// it, and the engine's timers (scheduled collections and lifecycle runs,
// the parking of idle uploads, pull-time flushes, rewrap retries) fire
// only then. Pass it as Options.Clock. It is safe for concurrent use.
type Clock struct{ m *clock.Manual }

var _ engine.Clock = (*Clock)(nil)

// NewClock returns a manual clock reading the system's current time, so
// that files the store writes now (which the collector judges by their
// mtimes) are as old as the clock says once it is advanced.
func NewClock() *Clock { return NewClockAt(time.Now().Round(0)) }

// NewClockAt returns a manual clock reading t.
func NewClockAt(t time.Time) *Clock { return &Clock{m: clock.NewManual(t)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return c.m.Now() }

// AfterFunc calls f once the clock has been advanced by d (at once, in
// its own goroutine, when d <= 0).
func (c *Clock) AfterFunc(d time.Duration, f func()) (stop func() bool) { return c.m.AfterFunc(d, f) }

// Advance moves the clock forward by d and runs, in due order, the timers
// that fall due. The engine's work they start runs in its own goroutines:
// wait for its effect (require.Eventually) rather than for Advance.
func (c *Clock) Advance(d time.Duration) { c.m.Advance(d) }

// Timers returns the number of timers armed and not yet due.
func (c *Clock) Timers() int { return c.m.Timers() }

// WaitTimers blocks until at least n timers are armed, so that a test
// advances the clock only once the work it waits for has armed its timer.
func (c *Clock) WaitTimers(n int) { c.m.WaitTimers(n) }
