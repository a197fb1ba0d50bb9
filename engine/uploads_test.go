package engine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIdleUploadParked: a live upload nobody uses for IdleUploadTimeout,
// on the engine's clock, is parked (checkpointed, its handle closed) and
// resumes from where it was; one used meanwhile stays live.
func TestIdleUploadParked(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	o := quietOptions()
	o.Clock, o.IdleUploadTimeout = clk, 10*time.Minute
	e := openTestEngine(t, o)
	live := func(id string) bool {
		e.upMu.Lock()
		defer e.upMu.Unlock()
		return e.uploads[id] != nil
	}
	idle, err := e.BeginUpload(ctx, "u/a")
	require.NoError(t, err)
	_, err = idle.Write(rnd(1000))
	require.NoError(t, err)
	require.NoError(t, idle.Close())
	busy, err := e.BeginUpload(ctx, "u/a")
	require.NoError(t, err)
	require.NoError(t, busy.Close())

	clk.Advance(9 * time.Minute)
	u, err := e.ResumeUpload(ctx, "u/a", busy.ID()) // used: its idle time starts again
	require.NoError(t, err)
	require.NoError(t, u.Close())
	assert.True(t, live(idle.ID()), "not idle long enough yet")

	clk.Advance(5 * time.Minute) // idle is 14 minutes idle, busy 5
	require.Eventually(t, func() bool { return !live(idle.ID()) }, 10*time.Second, 5*time.Millisecond)
	assert.True(t, live(busy.ID()))
	u, err = e.ResumeUpload(ctx, "u/a", idle.ID())
	require.NoError(t, err, "a parked upload resumes")
	assert.EqualValues(t, 1000, u.Size())
	require.NoError(t, u.Cancel(ctx))
}
