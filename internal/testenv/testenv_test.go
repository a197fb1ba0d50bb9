package testenv

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStrict(t *testing.T) {
	for _, tc := range []struct {
		ci, all string
		want    bool
	}{
		{"", "", false},
		{"true", "", true},
		{"false", "", false},
		{"", "1", true},
		{"", "0", false},
	} {
		t.Setenv("CI", tc.ci)
		t.Setenv("BERTH_REQUIRE_ALL", tc.all)
		require.Equal(t, tc.want, Strict(), "CI=%q BERTH_REQUIRE_ALL=%q", tc.ci, tc.all)
	}
}

// recorder is a testing.TB that records how Missing stopped it.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Skipf(string, ...any)  { r.skipped = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestMissingSkipsOrFails(t *testing.T) {
	t.Setenv("BERTH_REQUIRE_ALL", "")
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	Missing(r, "a tool")
	require.True(t, r.skipped)
	require.False(t, r.failed)

	t.Setenv("CI", "true")
	r = &recorder{TB: t}
	Missing(r, "a tool")
	require.True(t, r.failed)
	require.False(t, r.skipped)
}

func TestLookTool(t *testing.T) {
	_, ok := LookTool("go")
	require.True(t, ok)
	_, ok = LookTool("no-such-tool-berth-testenv")
	require.False(t, ok)
}
