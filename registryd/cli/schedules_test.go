package cli

import (
	"bytes"
	"flag"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// The schedules' settings: defaults, the file, the flags, the bounds,
// and the engine options serve gives them (not the other commands).
func TestScheduleSettings(t *testing.T) {
	c := DefaultConfig()
	require.NoError(t, c.Validate())
	assert.Equal(t, Duration(24*time.Hour), c.LifecycleInterval)
	assert.Equal(t, Duration(24*time.Hour), c.GCInterval)
	assert.True(t, c.GCAfterLifecycle)
	o, err := c.EngineOptions()
	require.NoError(t, err)
	assert.Zero(t, o.LifecycleInterval, "a one-shot command runs no schedule")
	assert.Zero(t, o.GCInterval)
	c.scheduleOptions(o)
	assert.Equal(t, 24*time.Hour, o.LifecycleInterval)
	assert.Equal(t, 24*time.Hour, o.GCInterval)
	assert.True(t, o.GCAfterLifecycle)
	assert.Equal(t, 0.1, o.ScheduleJitter)
	assert.Zero(t, o.GCGrace, "the engine's default")

	c = DefaultConfig()
	require.NoError(t, parseConfig([]byte("lifecycleInterval: 12h\ngcInterval: 0s\ngcAfterLifecycle: false\ngcGrace: 2h\n"), "f", &c))
	require.NoError(t, c.Validate())
	o = &engine.Options{}
	c.scheduleOptions(o)
	assert.Equal(t, 12*time.Hour, o.LifecycleInterval)
	assert.Zero(t, o.GCInterval, "0 is off")
	assert.False(t, o.GCAfterLifecycle)
	assert.Equal(t, 2*time.Hour, o.GCGrace)

	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fc, err := parseFlags(fs, []string{"--lifecycle-interval", "2s", "--short-schedules", "--gc-grace", "1s", "--gc-interval", "0"}, bindServeFlags)
	require.NoError(t, err)
	require.NoError(t, fc.Validate())
	o = &engine.Options{}
	fc.scheduleOptions(o)
	assert.Equal(t, 2*time.Second, o.LifecycleInterval)
	assert.True(t, o.GCAfterLifecycle, "gc still follows each lifecycle run that expired images")
	assert.Zero(t, o.GCInterval)

	bad := DefaultConfig()
	bad.LifecycleInterval, bad.GCInterval, bad.GCGrace = Duration(2*time.Second), Duration(-time.Hour), Duration(-time.Second)
	err = bad.Validate()
	require.ErrorIs(t, err, ErrConfig)
	for _, s := range []string{"lifecycleInterval 2s is under 1m0s: set shortSchedules", "gcInterval -1h0m0s", "gcGrace -1s"} {
		assert.Contains(t, err.Error(), s)
	}
}

// The daemon says at start when cleanup runs, and when it does not.
func TestScheduleLogged(t *testing.T) {
	for name, tt := range map[string]struct {
		lifecycle, gc Duration
		want          []string
	}{
		"both":   {Duration(24 * time.Hour), Duration(12 * time.Hour), []string{"lifecycle schedule: every repository's policy is applied", "interval=24h0m0s", "gc schedule: online garbage collection", "interval=12h0m0s", "grace=1h0m0s"}},
		"off":    {0, 0, []string{"lifecycle schedule off", "gc schedule off", "gcAfterLifecycle=false"}},
		"gc off": {Duration(time.Hour), 0, []string{"lifecycle schedule: every", "gc schedule off", "gcAfterLifecycle=true"}},
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			c.Data = t.TempDir()
			c.LifecycleInterval, c.GCInterval = tt.lifecycle, tt.gc
			o, err := c.EngineOptions()
			require.NoError(t, err)
			c.scheduleOptions(o)
			e, err := engine.Open(c.Data, o)
			require.NoError(t, err)
			defer e.Close()
			var buf bytes.Buffer
			logSchedules(slog.New(slog.NewTextHandler(&buf, nil)), &c, e)
			for _, w := range tt.want {
				assert.Contains(t, buf.String(), w)
			}
			assert.Equal(t, len(e.Schedules()), strings.Count(buf.String(), "nextRun="))
		})
	}
}
