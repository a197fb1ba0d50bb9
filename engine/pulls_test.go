package engine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPullTimeRecorded: a pull's time, on the engine's clock, reaches the
// manifest's record at the next flush; push times come from the clock too.
func TestPullTimeRecorded(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	o := quietOptions()
	o.Clock = clk
	e := openTestEngine(t, o)
	pushed := clk.Now()
	d, _ := pushImage(t, e, "p/a", "v1", rnd(10))
	clk.Advance(time.Hour)
	m, err := e.GetManifest(ctx, "p/a", "v1")
	require.NoError(t, err)
	require.True(t, m.LastPulledAt.IsZero())
	require.True(t, pushed.Equal(m.PushedAt), "pushed at %v, want %v", m.PushedAt, pushed)
	e.flushPulls()
	m, err = e.GetManifest(ctx, "p/a", string(d))
	require.NoError(t, err)
	require.True(t, pushed.Add(time.Hour).Equal(m.LastPulledAt), "pulled at %v", m.LastPulledAt)
	// A pull recorded for a manifest deleted before the flush is dropped.
	require.NoError(t, e.DeleteManifest(ctx, "p/a", d))
	e.flushPulls()
	ok, err := e.db.HasManifest("p/a", d)
	require.NoError(t, err)
	require.False(t, ok)
}
