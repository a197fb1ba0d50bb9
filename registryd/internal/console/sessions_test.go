package console

import (
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestSessionsExpire(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := newSessions(30*time.Minute, 12*time.Hour, 10, clk.now)
	id, ss, err := s.create("alice", true)
	require.NoError(t, err)
	require.Len(t, id, 43)
	require.NotEqual(t, id, ss.csrf)
	got, ok := s.get(id)
	require.True(t, ok)
	require.Same(t, ss, got)

	// Used every 20 minutes, it lives until the absolute bound.
	for range 35 {
		clk.t = clk.t.Add(20 * time.Minute)
		_, ok = s.get(id)
		require.True(t, ok)
	}
	clk.t = clk.t.Add(20 * time.Minute) // 12 h 0 min after its creation
	_, ok = s.get(id)
	require.False(t, ok, "12 hours after sign-in")

	// Idle for 30 minutes: gone.
	id, _, err = s.create("alice", true)
	require.NoError(t, err)
	clk.t = clk.t.Add(30 * time.Minute)
	_, ok = s.get(id)
	require.False(t, ok, "idle")

	// Ended: gone.
	id, _, err = s.create("alice", true)
	require.NoError(t, err)
	s.end(id)
	_, ok = s.get(id)
	require.False(t, ok)
	_, ok = s.get("")
	require.False(t, ok)
}

func TestSessionsBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := newSessions(time.Minute, time.Hour, 3, clk.now)
	for range 3 {
		_, _, err := s.create("u", true)
		require.NoError(t, err)
	}
	_, _, err := s.create("u", true)
	require.ErrorIs(t, err, errSessionsFull)
	clk.t = clk.t.Add(2 * time.Minute) // all idle: swept for the next one
	_, _, err = s.create("u", true)
	require.NoError(t, err)
}

func TestCSRFCompare(t *testing.T) {
	ss := &session{csrf: randomToken()}
	require.True(t, ss.validCSRF(ss.csrf))
	require.False(t, ss.validCSRF(""))
	require.False(t, ss.validCSRF(ss.csrf[:42]))
	require.False(t, ss.validCSRF(strings.ToUpper(ss.csrf)+"x"))
}

func TestFsPath(t *testing.T) {
	for in, want := range map[string]string{
		"": ".", "/": ".", "/etc/os-release": "etc/os-release", "etc": "etc", "/../../etc": "etc",
		"/usr/lib/../bin": "usr/bin", "//a//b/": "a/b", "/.": ".",
	} {
		got, err := fsPath(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"/a\x00b", "a\\b"} {
		_, err := fsPath(in)
		require.ErrorIs(t, err, errBadRequest, in)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/console/image?repo=a&ref=b": "/console/image?repo=a&ref=b",
		"//evil.example/":             "/console/repositories",
		"https://evil.example/":       "/console/repositories",
		"/console/\r\nSet-Cookie: x":  "/console/repositories",
		"/other":                      "/console/repositories",
		"":                            "/console/repositories",
	} {
		require.Equal(t, want, safeNext(in), in)
	}
}

func TestIsBinary(t *testing.T) {
	require.False(t, isBinary([]byte("NAME=Debian\n")))
	require.False(t, isBinary([]byte("héllo")))
	require.True(t, isBinary([]byte("ELF\x00\x01")))
	require.True(t, isBinary([]byte{0xff, 0xfe, 'a'}))
	// A rune cut at the 8 KiB mark is text.
	long := []byte(strings.Repeat("a", 8<<10-1) + "é" + "tail")
	require.False(t, isBinary(long))
}

func FuzzFsPath(f *testing.F) {
	for _, s := range []string{"", "/", "/etc/os-release", "/../..", "a\x00", "//a/./b/../c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := fsPath(in)
		if err != nil {
			return
		}
		if !fs.ValidPath(p) {
			t.Fatalf("fsPath(%q) = %q is no path inside the root", in, p)
		}
	})
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/console/x", "//evil", "/console//evil", "\\\\evil", "/console/\nx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := safeNext(in)
		if !strings.HasPrefix(out, Prefix) || strings.HasPrefix(out, "//") || strings.ContainsAny(out, "\\\r\n") {
			t.Fatalf("safeNext(%q) = %q", in, out)
		}
	})
}

func FuzzIsBinary(f *testing.F) {
	f.Add([]byte("text\n"))
	f.Add([]byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = isBinary(b) // never panics, whatever the bytes
	})
}
