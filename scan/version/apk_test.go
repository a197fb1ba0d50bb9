package version

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// apkGrammar is apk-tools' version grammar as a regular expression:
// dot-separated numbers, an optional letter, suffixes each with an optional
// number, an optional ~commit hash, and an optional -rN package release.
var apkGrammar = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*[a-z]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*(~[0-9a-f]+)?(-r[0-9]+)?$`)

// TestAPKGrammar checks that the tokenizer accepts what apk accepts and
// refuses the rest.
func TestAPKGrammar(t *testing.T) {
	for _, s := range []string{"1", "1.2.3", "1.0a", "1.0_rc1_p2", "1.0_p", "1.0~abc1-r3", "0.00-r0", "1a_beta2~0-r0"} {
		_, ok := parseAPK(s)
		require.True(t, ok, s)
		require.True(t, apkGrammar.MatchString(s), s)
	}
	for _, s := range []string{"", "a", "1.", "1..2", "1a0", "1ab", "1.0_foo", "1.0_", "1.0-r", "1.0-rc1", "1.0~", "1.0~xyz", "1.0-r1~ab", "1.0-r1_p1", ".1", "1.0a.1"} {
		_, ok := parseAPK(s)
		require.False(t, ok, s)
		require.False(t, apkGrammar.MatchString(s), s)
	}
}

// FuzzAPKGrammar checks the tokenizer against the grammar's regular
// expression on any input.
func FuzzAPKGrammar(f *testing.F) {
	for _, r := range readTable(f, "apk.txt") {
		f.Add(r.A)
		f.Add(r.B)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, ok := parseAPK(s)
		if ok != apkGrammar.MatchString(s) {
			t.Fatalf("%q: tokenizer says %v, grammar %v", s, ok, !ok)
		}
	})
}
