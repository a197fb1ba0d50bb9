package engine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPullTimeRecorded(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	d, _ := pushImage(t, e, "p/a", "v1", rnd(10))
	m, err := e.GetManifest(ctx, "p/a", "v1")
	require.NoError(t, err)
	require.True(t, m.LastPulledAt.IsZero())
	e.flushPulls()
	m, err = e.GetManifest(ctx, "p/a", string(d))
	require.NoError(t, err)
	require.False(t, m.LastPulledAt.IsZero())
	require.WithinDuration(t, time.Now(), m.LastPulledAt, time.Minute)
	// A pull recorded for a manifest deleted before the flush is dropped.
	require.NoError(t, e.DeleteManifest(ctx, "p/a", d))
	e.flushPulls()
	ok, err := e.db.HasManifest("p/a", d)
	require.NoError(t, err)
	require.False(t, ok)
}
