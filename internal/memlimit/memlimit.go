// Package memlimit chooses the Go runtime's soft memory limit
// (runtime/debug.SetMemoryLimit) for a process: from GOMEMLIMIT when the
// environment sets it, else from an explicit setting, else from the memory
// limit of the cgroup the process runs in (cgroup v2 memory.max, v1
// memory.limit_in_bytes), else none.
//
// It imports nothing of Berth.
package memlimit

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// CgroupShare is the part of the cgroup's memory limit taken as the soft
// limit: the rest is headroom for what the Go runtime does not count
// (C allocations such as pebble's block cache, thread stacks, the page
// tables) before the kernel's limit kills the process.
const CgroupShare = 0.9

// ErrCgroup reports cgroup files that exist but cannot be understood.
var ErrCgroup = errors.New("memlimit: cgroup")

// Source says where a soft memory limit came from.
type Source string

// The sources, strongest first.
const (
	// FromEnv: GOMEMLIMIT is set; the runtime applied it at start and
	// Apply leaves it alone.
	FromEnv Source = "GOMEMLIMIT"
	// FromSetting: the configuration or a flag asked for a limit, or for
	// none.
	FromSetting Source = "setting"
	// FromCgroup: CgroupShare of the cgroup's memory limit.
	FromCgroup Source = "cgroup"
	// NoLimit: nothing asked for one and the cgroup has none.
	NoLimit Source = "none"
)

// Decision is the soft memory limit chosen and why.
type Decision struct {
	// Limit is the soft limit in bytes; 0 means none. Meaningless when
	// Source is FromEnv.
	Limit int64
	// Source is where the limit came from.
	Source Source
	// Cgroup is the cgroup's memory limit in bytes when it was read and
	// is set; 0 otherwise.
	Cgroup int64
}

// Decide picks the soft limit. gomemlimit is the GOMEMLIMIT environment
// variable: when not empty it wins over all. Otherwise an explicit setting
// wins (setting > 0: that many bytes; 0 or less: none). Otherwise (explicit
// false) CgroupShare of cgroup, the cgroup's memory limit in bytes (0: no
// limit), or none.
func Decide(gomemlimit string, explicit bool, setting, cgroup int64) Decision {
	d := Decision{Cgroup: max(cgroup, 0)}
	switch {
	case gomemlimit != "":
		d.Source = FromEnv
	case explicit:
		d.Source, d.Limit = FromSetting, max(setting, 0)
	case cgroup > 0:
		d.Source, d.Limit = FromCgroup, int64(float64(cgroup)*CgroupShare)
	default:
		d.Source = NoLimit
	}
	return d
}

// Apply sets the runtime's soft memory limit to d (none: math.MaxInt64,
// the runtime's own default) unless GOMEMLIMIT chose it.
func (d Decision) Apply() {
	switch {
	case d.Source == FromEnv:
	case d.Limit > 0:
		debug.SetMemoryLimit(d.Limit)
	default:
		debug.SetMemoryLimit(math.MaxInt64)
	}
}

// String describes d for a log line ("75.5 MiB (90% of the cgroup's 83.9
// MiB)", "none", "from GOMEMLIMIT").
func (d Decision) String() string {
	switch {
	case d.Source == FromEnv:
		return "from GOMEMLIMIT"
	case d.Limit <= 0:
		return "none"
	case d.Source == FromCgroup:
		return fmt.Sprintf("%.1f MiB (%.0f%% of the cgroup's %.1f MiB)", mib(d.Limit), CgroupShare*100, mib(d.Cgroup))
	}
	return fmt.Sprintf("%.1f MiB (set)", mib(d.Limit))
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// v1Unlimited is the least memory.limit_in_bytes taken as "no limit":
// cgroup v1 writes its largest page count times the page size
// (9223372036854771712 with 4 KiB pages).
const v1Unlimited = 1 << 62

// CgroupLimit returns the memory limit, in bytes, of the cgroup this
// process runs in, reading the files under root ("/" on a live system;
// another directory in tests): proc/self/cgroup names the process's
// cgroup, proc/self/mountinfo where each hierarchy is mounted. The limit
// is the least one set on the cgroup or any cgroup above it up to the
// mount's root (memory.max for cgroup v2, memory.limit_in_bytes for v1,
// used when the memory controller is on a v1 hierarchy). It returns 0 when
// no limit is set or the process is in no cgroup (no such files: not
// Linux), and an error wrapping ErrCgroup when a file exists but cannot
// be understood.
func CgroupLimit(root string) (int64, error) {
	v1Path, v2Path, err := readProcCgroup(filepath.Join(root, "proc", "self", "cgroup"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	v1Mount, v2Mount, err := readMountinfo(filepath.Join(root, "proc", "self", "mountinfo"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	switch {
	case v1Path != "" && v1Mount.point != "":
		return walkUp(root, v1Mount, v1Path, "memory.limit_in_bytes")
	case v2Path != "" && v2Mount.point != "":
		return walkUp(root, v2Mount, v2Path, "memory.max")
	}
	return 0, nil
}

// mount is where a cgroup hierarchy is mounted: the cgroup path shown at
// the mount point (root) and the mount point.
type mount struct{ root, point string }

// readProcCgroup returns the process's cgroup path on the v1 hierarchy
// that has the memory controller and on the v2 hierarchy ("" when absent).
func readProcCgroup(p string) (v1, v2 string, err error) {
	f, err := os.Open(p)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		fields := strings.SplitN(sc.Text(), ":", 3)
		if len(fields) != 3 {
			continue
		}
		switch {
		case fields[0] == "0" && fields[1] == "":
			v2 = fields[2]
		case hasItem(fields[1], "memory"):
			v1 = fields[2]
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("%w: %s: %v", ErrCgroup, p, err)
	}
	return v1, v2, nil
}

// readMountinfo finds the mounts of the v1 memory hierarchy and of the v2
// hierarchy (the first of each).
func readMountinfo(p string) (v1, v2 mount, err error) {
	f, err := os.Open(p)
	if err != nil {
		return v1, v2, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mount-point options [optional...] - fstype source super-options
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 1 {
			continue
		}
		m := mount{root: unescapeOctal(a[3]), point: unescapeOctal(a[4])}
		switch {
		case b[0] == "cgroup2" && v2.point == "":
			v2 = m
		case b[0] == "cgroup" && len(b) >= 3 && hasItem(b[2], "memory") && v1.point == "":
			v1 = m
		}
	}
	if err := sc.Err(); err != nil {
		return v1, v2, fmt.Errorf("%w: %s: %v", ErrCgroup, p, err)
	}
	return v1, v2, nil
}

// walkUp reads file in the cgroup's directory and in each directory above
// it up to the mount point, and returns the least limit set (0: none).
func walkUp(root string, m mount, cgroupPath, file string) (int64, error) {
	rel := cgroupPath
	if m.root != "/" {
		// The mount shows the hierarchy from m.root down (a container
		// without a cgroup namespace): the process's cgroup is at or
		// below it, or, when it is not, the mount point is the nearest
		// directory this process can see.
		if r, ok := strings.CutPrefix(cgroupPath, m.root); ok && (r == "" || strings.HasPrefix(r, "/")) {
			rel = r
		} else {
			rel = "/"
		}
	}
	rel = path.Clean("/" + rel)
	var least int64
	for {
		dir := filepath.Join(root, m.point, filepath.FromSlash(rel))
		v, err := readLimit(filepath.Join(dir, file))
		if err != nil {
			return 0, err
		}
		if v > 0 && (least == 0 || v < least) {
			least = v
		}
		if rel == "/" {
			return least, nil
		}
		rel = path.Dir(rel)
	}
}

// readLimit reads one limit file: a number of bytes, "max" (v2) or a
// number at or above v1Unlimited (v1) for none. A missing file (the root
// cgroup of v2 has no memory.max) is no limit.
func readLimit(p string) (int64, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrCgroup, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %q is not a number of bytes or \"max\"", ErrCgroup, p, s)
	}
	if v >= v1Unlimited {
		return 0, nil
	}
	return int64(v), nil
}

// hasItem reports whether the comma-separated list has item.
func hasItem(list, item string) bool {
	for _, x := range strings.Split(list, ",") {
		if x == item {
			return true
		}
	}
	return false
}

// unescapeOctal undoes mountinfo's escapes of space, tab, newline and
// backslash (\040, \011, \012, \134).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
