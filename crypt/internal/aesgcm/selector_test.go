package aesgcm

import (
	"bytes"
	"crypto/cipher"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// setFIPS makes fipsEnabled report on for the duration of the test.
func setFIPS(t *testing.T, on bool) {
	old := fipsEnabled
	fipsEnabled = func() bool { return on }
	t.Cleanup(func() { fipsEnabled = old })
}

// requireStdlib checks that a is crypto/cipher's AES-GCM.
func requireStdlib(t *testing.T, a cipher.AEAD) {
	t.Helper()
	std, err := newStdlib(make([]byte, 32))
	require.NoError(t, err)
	require.IsType(t, std, a)
}

// wantDefault is what Current chooses when nothing turns the assembly off.
func wantDefault() string {
	if asmPath == "" {
		return ImplStdlib
	}
	return asmPath
}

func TestEnvStdlib(t *testing.T) {
	setFIPS(t, false)
	t.Setenv(EnvVar, "stdlib")
	c, err := Current()
	require.NoError(t, err)
	require.Equal(t, Choice{ImplStdlib, "BERTH_AESGCM=stdlib"}, c)
	a, err := New(make([]byte, 32))
	require.NoError(t, err)
	requireStdlib(t, a)

	for _, v := range []string{"auto", ""} {
		t.Setenv(EnvVar, v)
		c, err = Current()
		require.NoError(t, err)
		require.Equal(t, wantDefault(), c.Impl, "%s=%q: %s", EnvVar, v, c.Reason)
	}
}

func TestEnvInvalid(t *testing.T) {
	for _, v := range []string{"off", "STDLIB", "stdlib ", "vaes", "0"} {
		t.Setenv(EnvVar, v)
		_, err := Current()
		require.ErrorIs(t, err, ErrInvalidSetting, "%q", v)
		require.ErrorContains(t, err, `want "stdlib"`)
		a, err := New(make([]byte, 32))
		require.ErrorIs(t, err, ErrInvalidSetting, "%q", v)
		require.Nil(t, a)
	}
}

func TestForceStdlib(t *testing.T) {
	setFIPS(t, false)
	t.Setenv(EnvVar, "")
	t.Cleanup(func() { ForceStdlib(false) })
	ForceStdlib(true)
	c, err := Current()
	require.NoError(t, err)
	require.Equal(t, ImplStdlib, c.Impl)
	require.Contains(t, c.Reason, "forced")
	a, err := New(make([]byte, 32))
	require.NoError(t, err)
	requireStdlib(t, a)

	ForceStdlib(false)
	c, err = Current()
	require.NoError(t, err)
	require.Equal(t, wantDefault(), c.Impl, c.Reason)
}

// TestFIPSPredicate checks New's choice when fipsEnabled reports FIPS
// 140-3 mode, whatever else is set; TestFIPSMode checks the real thing.
func TestFIPSPredicate(t *testing.T) {
	setFIPS(t, true)
	for _, v := range []string{"", "auto", "stdlib"} {
		t.Setenv(EnvVar, v)
		c, err := Current()
		require.NoError(t, err)
		require.Equal(t, ImplStdlib, c.Impl)
		require.Contains(t, c.Reason, "FIPS 140-3")
		a, err := New(make([]byte, 32))
		require.NoError(t, err)
		requireStdlib(t, a)
	}
}

// TestFIPSMode starts this test binary in FIPS 140-3 mode (GODEBUG
// fips140=on, and only) and checks that New returns the standard
// library's AES-GCM there, or, with fips140=only, refuses as cipher.NewGCM
// does (caller-chosen nonces are not allowed; crypt uses
// cipher.NewGCMWithRandomNonce then). Without FIPS mode the same child
// picks the assembly path of this CPU, if it has one. A purego build
// cannot start in FIPS 140-3 mode at all.
func TestFIPSMode(t *testing.T) {
	r := runChild(t, "GODEBUG=fips140=off")
	require.False(t, r.FIPS)
	require.Empty(t, r.CurrentErr)
	want := ImplStdlib
	if r.AsmPath != "" {
		want = r.AsmPath
	}
	require.Equal(t, want, r.Impl, r.Reason)
	t.Logf("without FIPS 140-3 mode: %s (%s), New returns %s", r.Impl, r.Reason, r.NewType)

	for _, mode := range []string{"on", "only"} {
		if puregoBuild {
			_, stderr, err := startChild("GODEBUG=fips140=" + mode)
			require.Error(t, err)
			require.Contains(t, string(stderr), "FIPS 140-3 mode is incompatible with the purego build tag")
			t.Logf("fips140=%s: Go refuses to start a purego build in FIPS 140-3 mode", mode)
			continue
		}
		r := runChild(t, "GODEBUG=fips140="+mode)
		require.True(t, r.FIPS, "fips140=%s", mode)
		require.Empty(t, r.CurrentErr)
		require.Equal(t, ImplStdlib, r.Impl, "fips140=%s", mode)
		require.Contains(t, r.Reason, "FIPS 140-3")
		require.NotEqual(t, "*aesgcm.gcmAsm", r.NewType)
		if mode == "on" {
			require.Empty(t, r.NewErr)
			require.NotEmpty(t, r.StdType)
			require.Equal(t, r.StdType, r.NewType, "New returns crypto/cipher's AES-GCM")
		} else {
			require.NotEmpty(t, r.StdErr, "cipher.NewGCM refuses caller-chosen nonces with fips140=only")
			require.Equal(t, r.StdErr, r.NewErr, "New refuses as cipher.NewGCM does")
		}
		t.Logf("fips140=%s: %s; New returns %q, error %q", mode, r.Reason, r.NewType, r.NewErr)
	}
}

// passthrough is an AEAD the selector tests inject as an "assembly path".
type passthrough struct{ cipher.AEAD }

func TestSelectorUsesPassingPath(t *testing.T) {
	setFIPS(t, false)
	t.Setenv(EnvVar, "")
	var thresholds []int
	s := &selector{path: "test-path", newAsm: func(key []byte, threshold int) (cipher.AEAD, error) {
		thresholds = append(thresholds, threshold)
		std, err := newStdlib(key)
		return passthrough{std}, err
	}}
	a, err := s.new(make([]byte, 32))
	require.NoError(t, err)
	require.IsType(t, passthrough{}, a)
	c, err := s.choose()
	require.NoError(t, err)
	require.Equal(t, "test-path", c.Impl)
	require.NotZero(t, s.selfTestDur)
	// Three keys with threshold 0 for the self-test, then New's.
	require.Equal(t, []int{0, 0, 0, asmThreshold}, thresholds)

	a, err = s.new(make([]byte, 16))
	require.NoError(t, err)
	requireStdlib(t, a)
}

// TestSelfTestFailureFallsBack injects an implementation the self-test
// rejects: New returns crypto/cipher's AES-GCM from then on, and the
// failure is logged once, however many AEADs are made, concurrently too.
func TestSelfTestFailureFallsBack(t *testing.T) {
	setFIPS(t, false)
	t.Setenv(EnvVar, "")
	var logs bytes.Buffer
	var mu sync.Mutex
	s := &selector{
		path: "broken-path",
		newAsm: func(key []byte, threshold int) (cipher.AEAD, error) {
			std, err := newStdlib(key)
			return flipAt{AEAD: std, length: 4096 + 7}, err
		},
		logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil)),
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			a, err := s.new(make([]byte, 32))
			require.NoError(t, err)
			requireStdlib(t, a)
		})
	}
	wg.Wait()
	c, err := s.choose()
	require.NoError(t, err)
	require.Equal(t, ImplStdlib, c.Impl)
	require.Contains(t, c.Reason, "self-test of broken-path failed: key 0, 4103-byte message")
	require.Equal(t, 1, strings.Count(logs.String(), "\n"), logs.String())
	require.Contains(t, logs.String(), "level=ERROR")
	require.Contains(t, logs.String(), "path=broken-path")
	require.Contains(t, logs.String(), "4103-byte message")
	t.Log(strings.TrimSpace(logs.String()))
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
