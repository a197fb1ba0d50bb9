// Package reference validates what names content in a registry:
// repository names, tags, digests and manifest references (a tag or a
// digest). These run on every request, so they are hand-written scanners
// rather than regular expressions; the tests check them against the
// grammars' regular expressions and against go-digest. Errors wrap the
// engine's sentinel errors (package errdefs).
package reference

import (
	// go-digest registers no hash function itself: digests computed or
	// verified in this package need these two.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine/internal/errdefs"
)

// Length limits of names.
const (
	// MaxRepositoryNameLen is ECR's limit on a repository name.
	MaxRepositoryNameLen = 256
	// maxTagLen is the OCI limit on a tag (1 leading + 127 more).
	maxTagLen = 128
)

// ValidateRepositoryName reports whether name is a valid repository name:
// path components matching [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* joined by
// "/", at most 256 characters in all. The error wraps ErrNameInvalid.
func ValidateRepositoryName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", errdefs.ErrNameInvalid)
	}
	if len(name) > MaxRepositoryNameLen {
		return fmt.Errorf("%w: %q is longer than %d characters", errdefs.ErrNameInvalid, errdefs.Truncate(name), MaxRepositoryNameLen)
	}
	if !validRepoPath(name) {
		return fmt.Errorf("%w: %q", errdefs.ErrNameInvalid, name)
	}
	return nil
}

// validRepoPath reports whether s is one or more valid path components
// joined by single slashes.
func validRepoPath(s string) bool {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '/' {
			if !validPathComponent(s[start:i]) {
				return false
			}
			start = i + 1
		}
	}
	return true
}

// validPathComponent reports whether c matches
// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.
func validPathComponent(c string) bool {
	if c == "" || !isLowerAlnum(c[0]) {
		return false
	}
	i := 0
	for i < len(c) {
		if isLowerAlnum(c[i]) {
			i++
			continue
		}
		// A separator run: ".", "_", "__" or "-"+, then an alphanumeric.
		switch c[i] {
		case '.':
			i++
		case '_':
			i++
			if i < len(c) && c[i] == '_' {
				i++
			}
		case '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return false
		}
		if i == len(c) || !isLowerAlnum(c[i]) {
			return false
		}
	}
	return true
}

func isLowerAlnum(b byte) bool { return ('a' <= b && b <= 'z') || ('0' <= b && b <= '9') }

func isAlnum(b byte) bool {
	return ('a' <= b && b <= 'z') || ('A' <= b && b <= 'Z') || ('0' <= b && b <= '9')
}

// ValidateTag reports whether tag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
// The error wraps ErrTagInvalid.
func ValidateTag(tag string) error {
	if tag == "" {
		return fmt.Errorf("%w: empty tag", errdefs.ErrTagInvalid)
	}
	if len(tag) > maxTagLen {
		return fmt.Errorf("%w: %q is longer than %d characters", errdefs.ErrTagInvalid, errdefs.Truncate(tag), maxTagLen)
	}
	if !isAlnum(tag[0]) && tag[0] != '_' {
		return fmt.Errorf("%w: %q must start with a letter, digit or '_'", errdefs.ErrTagInvalid, tag)
	}
	for i := 1; i < len(tag); i++ {
		b := tag[i]
		if !isAlnum(b) && b != '_' && b != '.' && b != '-' {
			return fmt.Errorf("%w: %q has a forbidden character at offset %d", errdefs.ErrTagInvalid, tag, i)
		}
	}
	return nil
}

// Parse splits a manifest reference into a tag or a digest: a
// reference containing ':' is a digest (sha256 or sha512, validated as
// ParseDigest does), anything else a tag (validated as ValidateTag does).
// Exactly one of tag and d is set when err is nil.
func Parse(ref string) (tag string, d digest.Digest, err error) {
	if strings.IndexByte(ref, ':') >= 0 {
		d, err = ParseDigest(ref)
		return "", d, err
	}
	if err := ValidateTag(ref); err != nil {
		return "", "", err
	}
	return ref, "", nil
}

// ParseDigest parses s as a digest. Only sha256 (64 lower-case hex digits)
// and sha512 (128) are accepted, as go-digest's canonical forms; the error
// wraps ErrDigestInvalid.
func ParseDigest(s string) (digest.Digest, error) {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return "", fmt.Errorf("%w: %q is not algorithm:hex", errdefs.ErrDigestInvalid, errdefs.Truncate(s))
	}
	var want int
	switch alg, hex := s[:i], s[i+1:]; alg {
	case string(digest.SHA256):
		want = 64
		if len(hex) != want || !isLowerHex(hex) {
			return "", fmt.Errorf("%w: %q: sha256 needs %d lower-case hex digits", errdefs.ErrDigestInvalid, errdefs.Truncate(s), want)
		}
	case string(digest.SHA512):
		want = 128
		if len(hex) != want || !isLowerHex(hex) {
			return "", fmt.Errorf("%w: %q: sha512 needs %d lower-case hex digits", errdefs.ErrDigestInvalid, errdefs.Truncate(s), want)
		}
	default:
		return "", fmt.Errorf("%w: %q: unsupported algorithm (sha256 and sha512 only)", errdefs.ErrDigestInvalid, errdefs.Truncate(s))
	}
	return digest.Digest(s), nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('0' <= b && b <= '9') && !('a' <= b && b <= 'f') {
			return false
		}
	}
	return true
}
