package version

import "strings"

// apkVersion is a version of the apk package manager (Alpine, Wolfi,
// Chainguard): number{.number}...{letter}{_suffix{number}}...{~hash}{-rN}.
//
// It orders as apk-tools 3 does (apk_version_compare): the two versions are
// read token by token; tokens of one kind compare by value, and at the
// first token where the kinds differ, a pre-release suffix (_alpha, _beta,
// _pre, _rc) is older than anything, and otherwise the version whose token
// comes later in the grammar is older ("1.0" < "1.0a" < "1.0.1", and
// "1.0" < "1.0-r0"). Number components after the first compare as numbers
// unless either has a leading zero; then they compare as strings, as
// Gentoo's rules (which apk follows) compare fractional parts. The order
// is total: it is a lexicographic order on token sequences whose tokens are
// totally ordered (see apkToken.rank).
//
// OSV's semantic package pads missing components with zeros instead
// ("1.0" = "1.0.0"), which makes its order disagree with apk and, with
// leading zeros, not transitive; this type is why Berth does not use it
// for apk.
type apkVersion struct {
	tokens []apkToken
}

// apkKind is the kind of an apk version token, in the grammar's order.
type apkKind int

const (
	apkInitialDigit apkKind = iota
	apkDigit
	apkLetter
	apkSuffix
	apkSuffixNumber
	apkHash
	apkRevision
	apkEnd
)

// apkToken is one token of an apk version.
type apkToken struct {
	kind  apkKind
	value string // the token's text, without its separator
	// suffix is the weight of an apkSuffix: negative for pre-release
	// suffixes, positive for post-release ones.
	suffix int
}

// apkSuffixWeight orders the suffixes around a release (weight 0):
// _alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p.
var apkSuffixWeight = map[string]int{
	"alpha": -4, "beta": -3, "pre": -2, "rc": -1,
	"cvs": 1, "svn": 2, "git": 3, "hg": 4, "p": 5,
}

// parseAPK tokenizes s; ok is false unless s is of apk's grammar (each
// token allowed only after the kinds the grammar lets it follow).
func parseAPK(s string) (apkVersion, bool) {
	var v apkVersion
	i := 0
	digits := func() string {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return s[j:i]
	}
	lower := func() string {
		j := i
		for i < len(s) && s[i] >= 'a' && s[i] <= 'z' {
			i++
		}
		return s[j:i]
	}
	first := digits()
	if first == "" {
		return apkVersion{}, false
	}
	v.tokens = append(v.tokens, apkToken{kind: apkInitialDigit, value: first})
	last := apkInitialDigit
	for i < len(s) {
		var t apkToken
		switch c := s[i]; {
		case c == '.' && last <= apkDigit:
			i++
			t = apkToken{kind: apkDigit, value: digits()}
		case c >= 'a' && c <= 'z' && last <= apkDigit:
			t = apkToken{kind: apkLetter, value: s[i : i+1]}
			i++
		case c == '_' && last <= apkSuffixNumber:
			i++
			t = apkToken{kind: apkSuffix, value: lower()}
			w, ok := apkSuffixWeight[t.value]
			if !ok {
				return apkVersion{}, false
			}
			t.suffix = w
		case c >= '0' && c <= '9' && last == apkSuffix:
			t = apkToken{kind: apkSuffixNumber, value: digits()}
		case c == '~' && last < apkHash:
			i++
			j := i
			for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
				i++
			}
			t = apkToken{kind: apkHash, value: s[j:i]}
		case c == '-' && last < apkRevision && strings.HasPrefix(s[i:], "-r"):
			i += 2
			t = apkToken{kind: apkRevision, value: digits()}
		default:
			return apkVersion{}, false
		}
		if t.value == "" {
			return apkVersion{}, false
		}
		v.tokens = append(v.tokens, t)
		last = t.kind
	}
	return v, true
}

// token returns the version's n-th token, or the end.
func (v apkVersion) token(n int) apkToken {
	if n < len(v.tokens) {
		return v.tokens[n]
	}
	return apkToken{kind: apkEnd}
}

// compare orders v against w: -1, 0 or +1.
func (v apkVersion) compare(w apkVersion) int {
	for n := 0; ; n++ {
		a, b := v.token(n), w.token(n)
		if a.kind == apkEnd && b.kind == apkEnd {
			return 0
		}
		if c := a.compare(b); c != 0 {
			return c
		}
	}
}

// rank places a token among tokens of other kinds, where apk decides by
// kind: a pre-release suffix lowest, then the end of the version, then the
// kinds in the reverse of the grammar's order (a revision is older than a
// further number component).
func (t apkToken) rank() int {
	if t.kind == apkSuffix && t.suffix < 0 {
		return -1
	}
	return int(apkEnd - t.kind)
}

// compare orders two tokens at the same position of two versions.
func (t apkToken) compare(u apkToken) int {
	if t.kind != u.kind {
		return sign(t.rank() - u.rank())
	}
	switch t.kind {
	case apkDigit:
		if t.value[0] == '0' || u.value[0] == '0' {
			return strings.Compare(t.value, u.value)
		}
		return compareDecimal(t.value, u.value)
	case apkInitialDigit, apkSuffixNumber, apkRevision:
		return compareDecimal(t.value, u.value)
	case apkSuffix:
		return sign(t.suffix - u.suffix)
	default: // letter, hash
		return strings.Compare(t.value, u.value)
	}
}

// compareDecimal orders two strings of decimal digits by value, however
// long they are.
func compareDecimal(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return sign(len(a) - len(b))
	}
	return strings.Compare(a, b)
}
