package clock

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func TestManualAdvanceRunsDueTimersInOrder(t *testing.T) {
	m := NewManual(t0)
	var got []string
	var at []time.Time
	add := func(d time.Duration, name string) func() bool {
		return m.AfterFunc(d, func() { got = append(got, name); at = append(at, m.Now()) })
	}
	add(3*time.Second, "c")
	add(time.Second, "a")
	add(2*time.Second, "b1")
	add(2*time.Second, "b2")
	stop := add(time.Hour, "never")
	add(10*time.Second, "later")

	assert.Equal(t, t0, m.Now(), "a manual clock stands still")
	m.Advance(5 * time.Second)
	assert.Equal(t, []string{"a", "b1", "b2", "c"}, got)
	assert.Equal(t, []time.Time{t0.Add(time.Second), t0.Add(2 * time.Second), t0.Add(2 * time.Second), t0.Add(3 * time.Second)}, at,
		"each function sees the time it fell due")
	assert.Equal(t, t0.Add(5*time.Second), m.Now())
	assert.Equal(t, 2, m.Timers())
	assert.True(t, stop())
	assert.False(t, stop(), "stopped once")
	m.Advance(time.Hour)
	assert.Equal(t, []string{"a", "b1", "b2", "c", "later"}, got)
	assert.Equal(t, 0, m.Timers())
}

// TestManualTicker: a function that re-arms itself ticks once per period
// within one Advance.
func TestManualTicker(t *testing.T) {
	m := NewManual(t0)
	n := 0
	var tick func()
	tick = func() { n++; m.AfterFunc(time.Minute, tick) }
	m.AfterFunc(time.Minute, tick)
	m.Advance(10*time.Minute + time.Second)
	assert.Equal(t, 10, n)
	assert.Equal(t, 1, m.Timers())
}

func TestManualAfterFuncNow(t *testing.T) {
	m := NewManual(t0)
	done := make(chan struct{})
	m.AfterFunc(0, func() { close(done) })
	<-done // runs at once, without an Advance
}

func TestManualWaitTimers(t *testing.T) {
	m := NewManual(t0)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.AfterFunc(time.Second, func() {})
		m.AfterFunc(time.Second, func() {})
	}()
	m.WaitTimers(2)
	require.Equal(t, 2, m.Timers())
	wg.Wait()
}

func TestReal(t *testing.T) {
	var r Real
	assert.WithinDuration(t, time.Now(), r.Now(), time.Second)
	done := make(chan struct{})
	r.AfterFunc(time.Millisecond, func() { close(done) })
	<-done
	stop := r.AfterFunc(time.Hour, func() { t.Error("ran") })
	assert.True(t, stop())
}
