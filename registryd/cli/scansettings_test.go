package cli

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// The scan settings serve gives the engine: the flags, the file, the
// defaults, and a negative scanMaxYield refused.
func TestScanSettings(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c, err := parseFlags(fs, []string{"--scan-workers", "2", "--scan-quiet-period", "-1ms", "--scan-max-yield", "5s"}, bindServeFlags)
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	o := &engine.Options{}
	c.scanOptions(o)
	assert.Equal(t, 2, o.ScanWorkers)
	assert.Equal(t, -time.Millisecond, o.ScanQuietPeriod, "scans do not wait")
	assert.Equal(t, 5*time.Second, o.ScanMaxYield)

	fc := DefaultConfig()
	require.NoError(t, parseConfig([]byte("scanQuietPeriod: 200ms\n"), "f", &fc))
	o = &engine.Options{}
	fc.scanOptions(o)
	assert.Equal(t, 200*time.Millisecond, o.ScanQuietPeriod)
	assert.Zero(t, o.ScanMaxYield, "the engine's default")

	bad := DefaultConfig()
	bad.ScanMaxYield = Duration(-time.Second)
	require.ErrorIs(t, bad.Validate(), ErrConfig)
}
