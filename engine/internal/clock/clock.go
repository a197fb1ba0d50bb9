// Package clock holds the engine's two clocks: Real, the system's, and
// Manual, which moves only when told to (Advance), for tests that make
// hours pass without waiting for them. Both satisfy engine.Clock.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Real is the system clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// AfterFunc calls f in its own goroutine once d has passed (time.AfterFunc)
// and returns the timer's Stop.
func (Real) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	return time.AfterFunc(d, f).Stop
}

// Manual is a clock that stands still until Advance moves it. It is safe
// for concurrent use.
type Manual struct {
	mu      sync.Mutex
	changed *sync.Cond // broadcast when a timer is added or removed
	now     time.Time
	seq     uint64
	timers  map[uint64]*timer
}

type timer struct {
	id  uint64
	due time.Time
	f   func()
}

// NewManual returns a manual clock reading start.
func NewManual(start time.Time) *Manual {
	m := &Manual{now: start, timers: map[uint64]*timer{}}
	m.changed = sync.NewCond(&m.mu)
	return m
}

// Now returns the clock's time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// AfterFunc calls f once the clock has been advanced by d. With d <= 0,
// f runs at once in its own goroutine, as with time.AfterFunc.
func (m *Manual) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	if d <= 0 {
		go f()
		return func() bool { return false }
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	t := &timer{id: m.seq, due: m.now.Add(d), f: f}
	m.timers[t.id] = t
	m.changed.Broadcast()
	return func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.timers[t.id]; !ok {
			return false
		}
		delete(m.timers, t.id)
		m.changed.Broadcast()
		return true
	}
}

// Advance moves the clock forward by d. The functions of the timers that
// fall due run one by one, in due order, on the caller's goroutine, each
// seeing Now() at its due time; Advance returns when they have. A
// function that arms a new timer due within the advance (a ticker) runs
// again before Advance returns.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	target := m.now.Add(d)
	for {
		t := m.nextDueLocked(target)
		if t == nil {
			break
		}
		delete(m.timers, t.id)
		if t.due.After(m.now) {
			m.now = t.due
		}
		m.changed.Broadcast()
		m.mu.Unlock()
		t.f()
		m.mu.Lock()
	}
	if target.After(m.now) {
		m.now = target
	}
	m.mu.Unlock()
}

// nextDueLocked returns the earliest timer due at or before target (the
// first armed among equals), or nil.
func (m *Manual) nextDueLocked(target time.Time) *timer {
	var due []*timer
	for _, t := range m.timers {
		if !t.due.After(target) {
			due = append(due, t)
		}
	}
	if len(due) == 0 {
		return nil
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].due.Equal(due[j].due) {
			return due[i].due.Before(due[j].due)
		}
		return due[i].id < due[j].id
	})
	return due[0]
}

// Timers returns the number of timers armed and not yet due.
func (m *Manual) Timers() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.timers)
}

// WaitTimers blocks until at least n timers are armed: a test's way of
// knowing that background work has armed its timer before it advances
// the clock.
func (m *Manual) WaitTimers(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.timers) < n {
		m.changed.Wait()
	}
}
