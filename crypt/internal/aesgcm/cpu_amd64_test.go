//go:build amd64 && !purego

package aesgcm

import (
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/testenv"
)

// What each assembly path needs, as /proc/cpuinfo names the CPU flags
// (which the kernel reports only when it also saves the registers they
// use, so avx512f there means the OS supports AVX-512).
var (
	vaesFlags     = []string{"aes", "pclmulqdq", "avx2", "avx512f", "avx512bw", "avx512vl", "vaes", "vpclmulqdq"}
	vaesAVX2Flags = []string{"aes", "pclmulqdq", "avx", "avx2", "vaes", "vpclmulqdq"}
)

// sysCPUName is golang.org/x/sys/cpu's GODEBUG name (cpu.NAME=off) for a
// /proc/cpuinfo flag.
func sysCPUName(flag string) string {
	switch flag {
	case "vaes", "vpclmulqdq":
		return "avx512" + flag
	}
	return flag
}

// expectAsm returns which assembly paths detection must report for a CPU
// with the /proc/cpuinfo flags and a process started with godebug (the
// GODEBUG variable), following golang.org/x/sys/cpu: cpu.NAME=off turns a
// feature off, cpu.NAME=on can only keep one the CPU has, cpu.all applies
// to every feature, and a later setting wins. hasAsm reads every feature
// from x/sys/cpu; hasAsmAVX2 reads VAES and VPCLMULQDQ from CPUID itself,
// so GODEBUG does not turn those two off for it.
func expectAsm(flags []string, godebug string) (vaes, vaesAVX2 bool) {
	off := map[string]bool{}
	for field := range strings.SplitSeq(godebug, ",") {
		key, value, ok := strings.Cut(field, "=")
		name, isCPU := strings.CutPrefix(key, "cpu.")
		if !ok || !isCPU || (value != "on" && value != "off") {
			continue
		}
		if name == "all" {
			for _, f := range slices.Concat(vaesFlags, vaesAVX2Flags) {
				off[sysCPUName(f)] = value == "off"
			}
			continue
		}
		off[name] = value == "off"
	}
	has := func(f string, viaSys bool) bool {
		return slices.Contains(flags, f) && !(viaSys && off[sysCPUName(f)])
	}
	vaes, vaesAVX2 = true, true
	for _, f := range vaesFlags {
		vaes = vaes && has(f, true)
	}
	for _, f := range vaesAVX2Flags {
		vaesAVX2 = vaesAVX2 && has(f, f != "vaes" && f != "vpclmulqdq")
	}
	return vaes, vaesAVX2
}

// procCPUFlags returns the flags of the first CPU in /proc/cpuinfo, read
// once; ok is false where there is no /proc/cpuinfo (not Linux).
var procCPUFlags = sync.OnceValues(func() (flags []string, err error) {
	if runtime.GOOS != "linux" {
		return nil, nil
	}
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return nil, err
	}
	for line := range strings.Lines(string(info)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			return strings.Fields(v), nil
		}
	}
	return nil, nil
})

// cpuFlags returns the CPU flags of /proc/cpuinfo, stopping tb (Missing)
// where there is none to read.
func cpuFlags(tb testing.TB) []string {
	tb.Helper()
	if runtime.GOOS != "linux" {
		testenv.Missing(tb, "/proc/cpuinfo to check the CPU feature detection against (Linux)")
	}
	flags, err := procCPUFlags()
	require.NoError(tb, err)
	require.NotEmpty(tb, flags, "no flags line in /proc/cpuinfo")
	return flags
}

// checkDetection fails tb if the assembly paths detection reports differ
// from what /proc/cpuinfo and GODEBUG say (expectAsm): a CPU with VAES
// whose path is reported unavailable would otherwise leave that path
// untested. Without /proc/cpuinfo (not Linux) there is nothing to check
// against; TestCPUDetection reports that.
func checkDetection(tb testing.TB) {
	tb.Helper()
	flags, err := procCPUFlags()
	if err != nil || len(flags) == 0 {
		return
	}
	vaes, vaesAVX2 := expectAsm(flags, os.Getenv("GODEBUG"))
	if hasAsm != vaes || hasAsmAVX2 != vaesAVX2 {
		tb.Fatalf("CPU feature detection is wrong: /proc/cpuinfo with GODEBUG=%q says %s %v and %s %v, detection says %v and %v",
			os.Getenv("GODEBUG"), ImplVAES, vaes, ImplVAESAVX2, vaesAVX2, hasAsm, hasAsmAVX2)
	}
}

// TestCPUDetection checks hasAsm and hasAsmAVX2 against the CPU flags Linux
// reports and the GODEBUG of this process, so that a detection bug cannot
// silently leave an assembly path untested.
func TestCPUDetection(t *testing.T) {
	if hasAsm {
		require.True(t, hasAsmAVX2, "a CPU with the AVX-512 path also has the AVX2 one")
	}
	flags := cpuFlags(t)
	vaes, vaesAVX2 := expectAsm(flags, os.Getenv("GODEBUG"))
	require.Equal(t, vaes, hasAsm, "hasAsm vs /proc/cpuinfo flags and GODEBUG=%q", os.Getenv("GODEBUG"))
	require.Equal(t, vaesAVX2, hasAsmAVX2, "hasAsmAVX2 vs /proc/cpuinfo flags and GODEBUG=%q", os.Getenv("GODEBUG"))
	t.Logf("%s: %v, %s: %v, asmPath %q (GODEBUG=%q)", ImplVAES, hasAsm, ImplVAESAVX2, hasAsmAVX2, asmPath, os.Getenv("GODEBUG"))
}

func TestExpectAsm(t *testing.T) {
	zen4 := slices.Concat(vaesFlags, vaesAVX2Flags, []string{"sse2", "avx512dq"})
	zen3 := []string{"sse2", "aes", "pclmulqdq", "avx", "avx2", "vaes", "vpclmulqdq"}
	skylake := []string{"sse2", "aes", "pclmulqdq", "avx", "avx2", "avx512f", "avx512bw", "avx512vl"}
	for _, tc := range []struct {
		flags          []string
		godebug        string
		vaes, vaesAVX2 bool
	}{
		{zen4, "", true, true},
		{zen4, "cpu.avx512f=off", false, true},
		{zen4, "cpu.avx512vaes=off", false, true},
		{zen4, "cpu.avx512vpclmulqdq=off,madvdontneed=1", false, true},
		{zen4, "cpu.avx2=off", false, false},
		{zen4, "cpu.aes=off", false, false},
		{zen4, "cpu.all=off", false, false},
		{zen4, "cpu.all=off,cpu.aes=on,cpu.pclmulqdq=on,cpu.avx=on,cpu.avx2=on", false, true},
		{zen4, "cpu.avx2=off,cpu.avx2=on", true, true},
		{zen4, "cpu.avx2=maybe", true, true},
		{zen4, "fips140=on", true, true},
		{zen3, "", false, true},
		{zen3, "cpu.avx512vaes=off", false, true},
		{zen3, "cpu.avx=off", false, false},
		{skylake, "", false, false},
		{nil, "", false, false},
	} {
		vaes, vaesAVX2 := expectAsm(tc.flags, tc.godebug)
		require.Equal(t, [2]bool{tc.vaes, tc.vaesAVX2}, [2]bool{vaes, vaesAVX2}, "%v with GODEBUG=%q", tc.flags, tc.godebug)
	}
}

// TestGODEBUGCPUOverrides starts this test binary with CPU features turned
// off by GODEBUG and checks that each picks what expectAsm says, from the
// real /proc/cpuinfo flags: nothing of this is skipped when GODEBUG is
// set, in this process or in the children.
func TestGODEBUGCPUOverrides(t *testing.T) {
	flags := cpuFlags(t)
	for _, godebug := range []string{"", "cpu.avx512f=off", "cpu.avx512vaes=off", "cpu.avx2=off", "cpu.all=off"} {
		vaes, vaesAVX2 := expectAsm(flags, godebug)
		want := ImplStdlib
		switch {
		case vaes:
			want = ImplVAES
		case vaesAVX2:
			want = ImplVAESAVX2
		}
		r := runChild(t, "GODEBUG="+godebug)
		require.Equal(t, [2]bool{vaes, vaesAVX2}, [2]bool{r.HasAsm, r.HasAsmAVX2}, "GODEBUG=%q: detection", godebug)
		require.Empty(t, r.CurrentErr)
		require.Equal(t, want, r.Impl, "GODEBUG=%q: %s", godebug, r.Reason)
		if want != ImplStdlib {
			require.Equal(t, "*aesgcm.gcmAsm", r.NewType, "GODEBUG=%q", godebug)
		}
		t.Logf("GODEBUG=%q: New uses %s (%s)", godebug, r.Impl, r.Reason)
	}
}

func TestUsesAsm(t *testing.T) {
	t.Setenv(EnvVar, "")
	t.Logf("AVX-512 assembly: %v, AVX2 assembly: %v", hasAsm, hasAsmAVX2)
	checkDetection(t)
	c, err := Current()
	require.NoError(t, err)
	want := asmPath
	if want == "" || fipsEnabled() {
		want = ImplStdlib
	}
	// A path the CPU runs whose self-test fails is a failure here: New
	// would quietly use the standard library.
	require.Equal(t, want, c.Impl, c.Reason)
	if defaultSelector.selfTestDur > 0 {
		t.Logf("self-test of %s: %v", asmPath, defaultSelector.selfTestDur)
	}

	a, err := New(make([]byte, 32))
	require.NoError(t, err)
	g, isAsm := a.(*gcmAsm)
	require.Equal(t, want != ImplStdlib, isAsm)
	if isAsm {
		require.Equal(t, !hasAsm, g.avx2, "AVX-512 preferred over AVX2")
		require.Equal(t, asmThreshold, g.threshold)
	}
	a, err = New(make([]byte, 16))
	require.NoError(t, err)
	_, isAsm = a.(*gcmAsm)
	require.False(t, isAsm)
}
