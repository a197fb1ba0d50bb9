package engine

// Repository names, tags, references and digests: the exported checks
// callers use on what clients send. The scanners are in
// engine/internal/reference.

import (
	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine/internal/reference"
)

// ValidateRepositoryName reports whether name is a valid repository name:
// path components matching [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* joined by
// "/", at most 256 characters in all. The error wraps ErrNameInvalid.
func ValidateRepositoryName(name string) error { return reference.ValidateRepositoryName(name) }

// ValidateTag reports whether tag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
// The error wraps ErrTagInvalid.
func ValidateTag(tag string) error { return reference.ValidateTag(tag) }

// ParseReference splits a manifest reference into a tag or a digest: a
// reference containing ':' is a digest (sha256 or sha512, validated as
// ParseDigest does), anything else a tag (validated as ValidateTag does).
// Exactly one of tag and d is set when err is nil.
func ParseReference(ref string) (tag string, d digest.Digest, err error) { return reference.Parse(ref) }

// ParseDigest parses s as a digest. Only sha256 (64 lower-case hex digits)
// and sha512 (128) are accepted, as go-digest's canonical forms; the error
// wraps ErrDigestInvalid.
func ParseDigest(s string) (digest.Digest, error) { return reference.ParseDigest(s) }
