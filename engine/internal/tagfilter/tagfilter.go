// Package tagfilter holds ECR's tag mutability rules: wildcard tag
// filters (imageTagMutabilityExclusionFilters) and the decision whether a
// tag, once it exists, may be moved to another digest.
package tagfilter

import "strings"

// MaxLen is the longest filter ECR accepts.
const MaxLen = 128

// Mode is a repository's tag mutability setting (ECR's
// imageTagMutability), decoded.
type Mode uint8

// Tag mutability modes.
const (
	// Mutable: no tag is immutable (MUTABLE, and the empty setting).
	Mutable Mode = iota
	// Immutable: every tag is (IMMUTABLE).
	Immutable
	// ImmutableExcept: every tag but those matching a filter
	// (IMMUTABLE_WITH_EXCLUSION).
	ImmutableExcept
	// MutableExcept: only the tags matching a filter
	// (MUTABLE_WITH_EXCLUSION).
	MutableExcept
)

// IsImmutable reports whether tag, once it exists, may not be moved to
// another digest under mode with filters (wildcard patterns).
func IsImmutable(mode Mode, filters []string, tag string) bool {
	switch mode {
	case Mutable:
		return false
	case ImmutableExcept:
		return !MatchAny(filters, tag)
	case MutableExcept:
		return MatchAny(filters, tag)
	default: // Immutable, and unknown values: fail closed
		return true
	}
}

// MatchAny reports whether tag matches one of filters.
func MatchAny(filters []string, tag string) bool {
	for _, f := range filters {
		if Match(f, tag) {
			return true
		}
	}
	return false
}

// Valid reports whether f matches ^[0-9a-zA-Z._*-]{1,128}$, ECR's
// constraint on a filter.
func Valid(f string) bool {
	if f == "" || len(f) > MaxLen {
		return false
	}
	for i := 0; i < len(f); i++ {
		b := f[i]
		if !isAlnum(b) && b != '.' && b != '_' && b != '*' && b != '-' {
			return false
		}
	}
	return true
}

func isAlnum(b byte) bool {
	return ('a' <= b && b <= 'z') || ('A' <= b && b <= 'Z') || ('0' <= b && b <= '9')
}

// Match reports whether s matches pattern, in which '*' matches
// any run of characters (also none) and every other byte itself. The
// pattern is cut at its stars into literals: the first must be a prefix,
// the last a suffix, and those between are found left to right, each at
// its leftmost place (greedy leftmost is optimal for '*'-only patterns,
// so there is no backtracking: time O(len(s)·segments) at worst).
func Match(pattern, s string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == s
	}
	prefix := pattern[:star]
	if !strings.HasPrefix(s, prefix) {
		return false
	}
	s = s[len(prefix):]
	rest := pattern[star+1:]
	last := strings.LastIndexByte(rest, '*')
	suffix := rest
	middle := ""
	if last >= 0 {
		suffix = rest[last+1:]
		middle = rest[:last]
	}
	if len(suffix) > len(s) || !strings.HasSuffix(s, suffix) {
		return false
	}
	s = s[:len(s)-len(suffix)]
	for middle != "" {
		var seg string
		if i := strings.IndexByte(middle, '*'); i >= 0 {
			seg, middle = middle[:i], middle[i+1:]
		} else {
			seg, middle = middle, ""
		}
		if seg == "" {
			continue
		}
		j := strings.Index(s, seg)
		if j < 0 {
			return false
		}
		s = s[j+len(seg):]
	}
	return true
}
