package enginetest_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/engine/enginetest"
)

// TestPushImageOnAManualClock: an image pushed on a manual clock carries
// the clock's time, and a scheduled collection runs when the clock is
// advanced past its interval, not before.
func TestPushImageOnAManualClock(t *testing.T) {
	ctx := context.Background()
	clk := enginetest.NewClock()
	e := enginetest.Open(t, &engine.Options{CreateOnPush: true, Clock: clk, GCInterval: time.Hour})
	img := enginetest.PushImage(t, e, "team/app", "v1", []byte("layer one"), []byte("layer two"))
	require.Len(t, img.Layers, 2)
	m, err := e.GetManifest(ctx, "team/app", "v1")
	require.NoError(t, err)
	assert.Equal(t, img.Digest, m.Digest)
	assert.Equal(t, img.Manifest, m.Payload)
	assert.True(t, clk.Now().Equal(m.PushedAt), "pushed at %v, clock %v", m.PushedAt, clk.Now())

	other := enginetest.PushImage(t, e, "team/app", "v2", []byte("layer one"))
	assert.NotEqual(t, img.Config.Digest, other.Config.Digest, "configs differ by tag and layers")

	clk.Advance(59 * time.Minute)
	assert.Zero(t, e.GCStats().Collections)
	clk.Advance(time.Minute)
	require.Eventually(t, func() bool { return e.GCStats().Collections == 1 }, 10*time.Second, 5*time.Millisecond)
}

// TestKeysTakenAway: with the test's key provider down, a push that needs
// a new wrap fails retryably; with it back, it succeeds.
func TestKeysTakenAway(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keys := enginetest.NewKeys(t, dir)
	e := enginetest.OpenDir(t, dir, &engine.Options{CreateOnPush: true, KeyProvider: keys})
	keys.SetDown(true)
	_, err := e.PutBlob(ctx, "r", bytes.NewReader([]byte("x")), "")
	require.ErrorIs(t, err, engine.ErrKeyUnavailable)
	keys.SetDown(false)
	_, err = e.PutBlob(ctx, "r", bytes.NewReader([]byte("x")), "")
	require.NoError(t, err)
}
