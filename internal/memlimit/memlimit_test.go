package memlimit

import (
	"math"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each directory under testdata is a root with the files a process sees:
// proc/self/cgroup, proc/self/mountinfo and the cgroup hierarchies.
func TestCgroupLimit(t *testing.T) {
	tests := []struct {
		dir  string
		want int64
	}{
		{"v2-service-limit", 512 << 20},
		{"v2-parent-tighter", 256 << 20},
		{"v2-unlimited", 0},
		{"v2-container-namespace", 1 << 30},
		{"v2-container-no-namespace", 768 << 20},
		{"v2-escaped-mount", 100 << 20},
		{"v1-unlimited", 0},
		{"v1-limit", 384 << 20}, // the v1 memory hierarchy wins over the unified one
		{"none", 0},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			got, err := CgroupLimit(filepath.Join("testdata", tc.dir))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCgroupLimitRefusesGarbledFiles(t *testing.T) {
	_, err := CgroupLimit(filepath.Join("testdata", "v2-garbled"))
	require.ErrorIs(t, err, ErrCgroup)
	assert.Contains(t, err.Error(), `"lots"`)
}

// The live system's files parse, whatever they say.
func TestCgroupLimitOfThisProcess(t *testing.T) {
	got, err := CgroupLimit("/")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, got, int64(0))
}

func TestDecide(t *testing.T) {
	const cg = 1000 << 20
	tests := []struct {
		name       string
		env        string
		explicit   bool
		setting    int64
		cgroup     int64
		wantSource Source
		wantLimit  int64
	}{
		{"GOMEMLIMIT wins over a setting", "200MiB", true, 80 << 20, cg, FromEnv, 0},
		{"GOMEMLIMIT wins over the cgroup", "off", false, 0, cg, FromEnv, 0},
		{"a setting wins over the cgroup", "", true, 80 << 20, cg, FromSetting, 80 << 20},
		{"a setting of none wins over the cgroup", "", true, 0, cg, FromSetting, 0},
		{"a negative setting is none", "", true, -1, cg, FromSetting, 0},
		{"90% of the cgroup's limit", "", false, 0, cg, FromCgroup, 900 << 20},
		{"no cgroup limit: none", "", false, 0, 0, NoLimit, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.env, tc.explicit, tc.setting, tc.cgroup)
			assert.Equal(t, tc.wantSource, d.Source)
			assert.Equal(t, tc.wantLimit, d.Limit)
			assert.NotEmpty(t, d.String())
		})
	}
}

func TestApply(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	Decide("", true, 123<<20, 0).Apply()
	assert.Equal(t, int64(123<<20), debug.SetMemoryLimit(-1))
	Decide("", false, 0, 0).Apply()
	assert.Equal(t, int64(math.MaxInt64), debug.SetMemoryLimit(-1))
	debug.SetMemoryLimit(77 << 20)
	Decide("77MiB", true, 5<<20, 0).Apply()
	assert.Equal(t, int64(77<<20), debug.SetMemoryLimit(-1), "GOMEMLIMIT's value is left to the runtime")
}
