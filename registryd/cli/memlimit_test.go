package cli

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"net"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/memlimit"
)

func TestMemoryLimitSetting(t *testing.T) {
	tests := []struct {
		name string
		text string
		want MemoryLimit
	}{
		{"absent: auto", "addr: 127.0.0.1:6000", MemoryLimitAuto},
		{"auto", "memoryLimit: auto", MemoryLimitAuto},
		{"none", "memoryLimit: none", 0},
		{"zero", "memoryLimit: 0", 0},
		{"negative number: none", "memoryLimit: -5", 0},
		{"bytes", "memoryLimit: 83886080", 80 << 20},
		{"MiB", "memoryLimit: 512MiB", 512 << 20},
		{"GiB in JSON", `{"memoryLimit":"2GiB"}`, 2 << 30},
		{"B", `{"memoryLimit":"4096B"}`, 4096},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			require.NoError(t, parseConfig([]byte(tc.text), "f", &c))
			assert.Equal(t, tc.want, c.MemoryLimit)
		})
	}
	for _, bad := range []string{"memoryLimit: lots", "memoryLimit: 80MB", "memoryLimit: -1MiB", "memoryLimit: [1]", "memoryLimit: 99999999TiB"} {
		c := DefaultConfig()
		require.ErrorIs(t, parseConfig([]byte(bad), "f", &c), ErrConfig, bad)
	}
}

func TestMemoryLimitFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want MemoryLimit
	}{
		{nil, MemoryLimitAuto},
		{[]string{"--memory-limit", "80MiB"}, 80 << 20},
		{[]string{"--memory-limit=none"}, 0},
		{[]string{"--memory-limit=auto"}, MemoryLimitAuto},
		{[]string{"--memory-limit=1048576"}, 1 << 20},
	} {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		c, err := parseFlags(fs, tc.args, bindServeFlags)
		require.NoError(t, err, tc.args)
		assert.Equal(t, tc.want, c.MemoryLimit, tc.args)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	_, err := parseFlags(fs, []string{"--memory-limit=huge"}, bindServeFlags)
	require.Error(t, err)

	for _, m := range []MemoryLimit{MemoryLimitAuto, 0, 80 << 20} {
		var back MemoryLimit
		require.NoError(t, back.Set(m.String()), m)
		assert.Equal(t, m, back)
	}
}

func TestDecideMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	d, err := DecideMemoryLimit(80 << 20)
	require.NoError(t, err)
	assert.Equal(t, memlimit.Decision{Limit: 80 << 20, Source: memlimit.FromSetting}, d)

	d, err = DecideMemoryLimit(0)
	require.NoError(t, err)
	assert.Equal(t, memlimit.FromSetting, d.Source)
	assert.Zero(t, d.Limit)

	// auto: whatever this machine's cgroup says.
	cg, err := memlimit.CgroupLimit("/")
	require.NoError(t, err)
	d, err = DecideMemoryLimit(MemoryLimitAuto)
	require.NoError(t, err)
	assert.Equal(t, memlimit.Decide("", false, 0, cg), d)

	t.Setenv("GOMEMLIMIT", "100MiB")
	d, err = DecideMemoryLimit(80 << 20)
	require.NoError(t, err)
	assert.Equal(t, memlimit.FromEnv, d.Source, "GOMEMLIMIT wins over an explicit setting")
}

// Serve applies the configured limit to the process and logs it.
func TestServeAppliesMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Data = filepath.Join(t.TempDir(), "store")
	cfg.AccessLog = false
	cfg.MemoryLimit = 123 << 20
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, &cfg, log, ready) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("serve did not start within a minute")
	}
	assert.Equal(t, int64(123<<20), debug.SetMemoryLimit(-1))
	cancel()
	require.NoError(t, <-done)
	assert.Contains(t, logs.String(), "soft memory limit")
	assert.Contains(t, logs.String(), "123.0 MiB (set)")
}
