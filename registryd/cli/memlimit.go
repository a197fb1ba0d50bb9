package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berthstore/berth/internal/memlimit"
)

// MemoryLimit is the memoryLimit setting, the Go runtime's soft memory
// limit (runtime/debug.SetMemoryLimit): MemoryLimitAuto, 0 for none, or a
// number of bytes. Written as "auto", "none", or bytes with an optional
// unit as GOMEMLIMIT takes them (B, KiB, MiB, GiB, TiB: "512MiB"); in a
// file also a plain number (0 or negative: none).
type MemoryLimit int64

// MemoryLimitAuto, the default, derives the limit from the cgroup the
// process runs in: memlimit.CgroupShare (90%) of its memory limit when
// one is set, none otherwise.
const MemoryLimitAuto MemoryLimit = -1

// String implements flag.Value.
func (m *MemoryLimit) String() string {
	switch {
	case m == nil || *m == MemoryLimitAuto:
		return "auto"
	case *m <= 0:
		return "none"
	}
	return strconv.FormatInt(int64(*m), 10)
}

// Set implements flag.Value.
func (m *MemoryLimit) Set(s string) error {
	v, err := parseMemoryLimit(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// MarshalJSON implements json.Marshaler: "auto", or a number of bytes
// (0: none).
func (m MemoryLimit) MarshalJSON() ([]byte, error) {
	if m == MemoryLimitAuto {
		return json.Marshal("auto")
	}
	return json.Marshal(max(int64(m), 0))
}

// UnmarshalJSON implements json.Unmarshaler.
func (m *MemoryLimit) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		*m = MemoryLimit(max(n, 0))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("memoryLimit: want a number of bytes, \"auto\", \"none\" or a size such as \"512MiB\": %s", b)
	}
	return m.Set(s)
}

var memoryUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// parseMemoryLimit reads "auto", "none", or a size as GOMEMLIMIT takes
// it: digits with an optional unit.
func parseMemoryLimit(s string) (MemoryLimit, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "auto":
		return MemoryLimitAuto, nil
	case "none", "0":
		return 0, nil
	}
	num, shift := s, uint(0)
	for _, u := range memoryUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = n, u.shift
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 || v > (1<<62)>>shift {
		return 0, fmt.Errorf("%w: memory limit %q: want \"auto\", \"none\" or a size such as 536870912 or \"512MiB\"", ErrConfig, s)
	}
	return MemoryLimit(v << shift), nil
}

// DecideMemoryLimit chooses the soft memory limit for setting m:
// GOMEMLIMIT in the environment wins over all, an explicit setting over
// the cgroup, and MemoryLimitAuto reads the cgroup's memory limit. When
// the cgroup files cannot be understood the decision is none and the
// error says why.
func DecideMemoryLimit(m MemoryLimit) (memlimit.Decision, error) {
	env := os.Getenv("GOMEMLIMIT")
	var cgroup int64
	var err error
	if env == "" && m == MemoryLimitAuto {
		cgroup, err = memlimit.CgroupLimit("/")
	}
	return memlimit.Decide(env, m != MemoryLimitAuto, int64(m), cgroup), err
}
