package errdefs_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/errdefs"
)

// No two sentinels are the same error or share a message, and each
// names the engine (package engine exports them: engine/sentinels_test.go
// checks that it exports these very values).
func TestSentinelsAreDistinct(t *testing.T) {
	all := map[string]error{
		"ErrNameInvalid": errdefs.ErrNameInvalid, "ErrTagInvalid": errdefs.ErrTagInvalid,
		"ErrDigestInvalid": errdefs.ErrDigestInvalid, "ErrTooLarge": errdefs.ErrTooLarge,
		"ErrManifestInvalid": errdefs.ErrManifestInvalid, "ErrUnsupported": errdefs.ErrUnsupported,
		"ErrCorrupt": errdefs.ErrCorrupt, "ErrInvalidArgument": errdefs.ErrInvalidArgument,
		"ErrLayerRefused": errdefs.ErrLayerRefused,
	}
	msgs := map[string]string{}
	for name, err := range all {
		assert.True(t, strings.HasPrefix(err.Error(), "engine: "), "%s: %q names its package", name, err)
		if other, dup := msgs[err.Error()]; dup {
			t.Errorf("%s and %s have the same message %q", name, other, err)
		}
		msgs[err.Error()] = name
		for other, e2 := range all {
			if other != name {
				assert.False(t, errors.Is(err, e2), "%s is %s", name, other)
			}
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", ""},
		{"short", "sha256:abc", "sha256:abc"},
		{"exactly 300 bytes", strings.Repeat("a", 300), strings.Repeat("a", 300)},
		{"301 bytes", strings.Repeat("a", 301), strings.Repeat("a", 300) + "..."},
		{"long", strings.Repeat("b", 1<<20), strings.Repeat("b", 300) + "..."},
		// "é" is 2 bytes: 299 ASCII bytes then é would be cut in its middle.
		{"a two-byte rune across the cut", strings.Repeat("a", 299) + "é" + "tail", strings.Repeat("a", 299) + "..."},
		// "€" is 3 bytes, "𝄞" 4: the cut backs off to where they start.
		{"a three-byte rune across the cut", strings.Repeat("a", 298) + "€" + "tail", strings.Repeat("a", 298) + "..."},
		{"a four-byte rune across the cut", strings.Repeat("a", 297) + "𝄞" + "tail", strings.Repeat("a", 297) + "..."},
		{"a rune ending at the cut", strings.Repeat("a", 298) + "é" + "tail", strings.Repeat("a", 298) + "é..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := errdefs.Truncate(tc.in)
			require.Equal(t, tc.want, got)
			assert.LessOrEqual(t, len(got), 303)
			if utf8.ValidString(tc.in) {
				assert.True(t, utf8.ValidString(got), "valid text stays valid: %q", got)
			}
		})
	}
}

// Hostile bytes that are not UTF-8 are cut at 300 bytes, or a little
// before, never after.
func FuzzTruncate(f *testing.F) {
	f.Add(strings.Repeat("a", 299) + "é")
	f.Add(strings.Repeat("\xff", 400))
	f.Add(strings.Repeat("\x80", 400))
	f.Fuzz(func(t *testing.T, s string) {
		got := errdefs.Truncate(s)
		if len(s) <= 300 {
			require.Equal(t, s, got)
			return
		}
		require.True(t, strings.HasSuffix(got, "..."))
		kept := strings.TrimSuffix(got, "...")
		require.True(t, strings.HasPrefix(s, kept))
		require.GreaterOrEqual(t, len(kept), 300-utf8.UTFMax+1)
		if utf8.ValidString(s) {
			require.True(t, utf8.ValidString(got))
		}
	})
}
