// Package errdefs holds the engine's sentinel errors that its internal
// packages return too, so that an error made deep inside (a manifest that
// does not parse, a tag that is malformed) is the very value callers test
// with errors.Is(err, engine.ErrManifestInvalid). Package engine re-exports
// each one under its Err name and documents it there; its other sentinel
// errors live in engine/errors.go alone.
package errdefs

import (
	"errors"
	"unicode/utf8"
)

// Sentinel errors shared by engine and its internal packages; see the
// variables of the same names in package engine for what each means.
var (
	ErrNameInvalid     = errors.New("engine: invalid repository name")
	ErrTagInvalid      = errors.New("engine: manifest tag did not match URI")
	ErrDigestInvalid   = errors.New("engine: provided digest did not match uploaded content")
	ErrTooLarge        = errors.New("engine: content exceeds the configured size limit")
	ErrManifestInvalid = errors.New("engine: manifest invalid")
	ErrUnsupported     = errors.New("engine: the operation is unsupported")
	ErrCorrupt         = errors.New("engine: stored data is corrupt")
	ErrInvalidArgument = errors.New("engine: invalid argument")
	ErrLayerRefused    = errors.New("engine: layer refused")
)

// Truncate shortens hostile input before it goes into an error message
// (and so into logs and HTTP replies): at most 300 bytes, then "...". It
// cuts at the start of a UTF-8 sequence, so that valid text stays valid.
func Truncate(s string) string {
	const max = 300
	if len(s) <= max {
		return s
	}
	cut := max
	for back := 0; back < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); back++ {
		cut--
	}
	return s[:cut] + "..."
}
