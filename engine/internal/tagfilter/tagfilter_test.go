package tagfilter

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIsImmutable(t *testing.T) {
	tests := []struct {
		name    string
		mode    Mode
		filters []string
		tag     string
		want    bool
	}{
		{"mutable by default", Mutable, nil, "latest", false},
		{"mutable", Mutable, nil, "v1", false},
		{"immutable", Immutable, nil, "v1", true},
		{"immutable latest", Immutable, nil, "latest", true},
		{"immutable except latest: latest", ImmutableExcept, []string{"latest"}, "latest", false},
		{"immutable except latest: v1", ImmutableExcept, []string{"latest"}, "v1", true},
		{"immutable except latest: latest2", ImmutableExcept, []string{"latest"}, "latest2", true},
		{"immutable except dev-*: dev-abc", ImmutableExcept, []string{"latest", "dev-*"}, "dev-abc", false},
		{"immutable except dev-*: dev-", ImmutableExcept, []string{"dev-*"}, "dev-", false},
		{"immutable except dev-*: dev", ImmutableExcept, []string{"dev-*"}, "dev", true},
		{"immutable except dev-*: prod-dev-1", ImmutableExcept, []string{"dev-*"}, "prod-dev-1", true},
		{"mutable except release-*: release-1", MutableExcept, []string{"release-*"}, "release-1", true},
		{"mutable except release-*: latest", MutableExcept, []string{"release-*"}, "latest", false},
		{"mutable except latest: latest", MutableExcept, []string{"latest"}, "latest", true},
		{"mutable except *-rc*: v1-rc2", MutableExcept, []string{"*-rc*"}, "v1-rc2", true},
		{"mutable except v*.*.*: v1.2.3", MutableExcept, []string{"v*.*.*"}, "v1.2.3", true},
		{"mutable except v*.*.*: v1.2", MutableExcept, []string{"v*.*.*"}, "v1.2", false},
		{"unknown mode fails closed", Mode(99), nil, "v1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, IsImmutable(tt.mode, tt.filters, tt.tag))
		})
	}
}

// wildcardRE is the reference semantics of a filter, for cross-checking.
func wildcardRE(pattern string) *regexp.Regexp {
	parts := strings.Split(pattern, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`(?s)^` + strings.Join(parts, `.*`) + `$`)
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything", true},
		{"**", "x", true},
		{"a*", "a", true},
		{"a*", "ba", false},
		{"*a", "ba", true},
		{"*a", "ab", false},
		{"a*b", "ab", true},
		{"a*b", "axxb", true},
		{"a*b", "axxbc", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "abbbcc", true},
		{"a*b*c", "acb", false},
		{"ab*ba", "aba", false}, // prefix and suffix must not overlap
		{"*ab*ab*", "abab", true},
		{"*ab*ab*", "aab", false},
		{"x.y", "x.y", true},
		{"x.y", "xzy", false}, // '.' is literal
		{"dev-*", "dev-1", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"|"+tt.s, func(t *testing.T) {
			assert.Equal(t, tt.want, Match(tt.pattern, tt.s))
			assert.Equal(t, tt.want, wildcardRE(tt.pattern).MatchString(tt.s), "reference semantics")
		})
	}
}

// TestMatchLinear guards against backtracking blow-ups: the
// classic worst case for a backtracking glob matcher runs instantly.
func TestMatchLinear(t *testing.T) {
	pattern := strings.Repeat("a*", 64) + "b"
	s := strings.Repeat("a", 128)
	start := time.Now()
	for i := 0; i < 1000; i++ {
		require.False(t, Match(pattern, s))
	}
	assert.Less(t, time.Since(start), 2*time.Second)
}

func FuzzMatch(f *testing.F) {
	f.Add("a*b*c", "abbbcc")
	f.Add("*-rc*", "v1-rc2")
	f.Add("ab*ba", "aba")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		// Patterns are validated before use; tags may be anything here
		// (valid UTF-8, for the reference regexp).
		if !Valid(pattern) || len(s) > 256 || !utf8.ValidString(s) {
			return
		}
		require.Equal(t, wildcardRE(pattern).MatchString(s), Match(pattern, s), "pattern %q s %q", pattern, s)
	})
}

func TestValid(t *testing.T) {
	for _, f := range []string{"a", "latest", "dev-*", "*", "v*.*.*", "A_b.c-d", strings.Repeat("*", 128)} {
		assert.True(t, Valid(f), f)
	}
	for _, f := range []string{"", "a/b", "a b", "tag:x", strings.Repeat("a", 129), "é"} {
		assert.False(t, Valid(f), f)
	}
}
