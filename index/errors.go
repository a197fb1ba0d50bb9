package index

import (
	"errors"
	"strings"
	"syscall"
)

// Sentinel errors of the index package. Every error returned by this package
// that falls into one of these classes wraps the sentinel with %w, together
// with the name, tag or digest concerned; test them with errors.Is.
var (
	// ErrNotFound is returned by reads when the record asked for is absent.
	ErrNotFound = errors.New("index: not found")
	// ErrInvalidKey is returned when a name, tag, digest, upload id or
	// template prefix cannot be part of a key (empty, contains 0x00, or a
	// malformed digest).
	ErrInvalidKey = errors.New("index: invalid key")
	// ErrCorrupt is returned when a stored value cannot be decoded, or when
	// the store's schema version is unknown.
	ErrCorrupt = errors.New("index: corrupt value")
	// ErrClosed is returned by every call on a closed DB or on a Batch that
	// was already committed or closed.
	ErrClosed = errors.New("index: closed")
	// ErrNoSpace is returned when a commit is refused or fails because the
	// file system holding the index is (nearly) full.
	ErrNoSpace = errors.New("index: no space left on device")
	// ErrFailed is returned by every write after pebble reported a fatal
	// error (for example a WAL write that failed with an I/O error): the
	// process must Close and re-Open the DB before it writes again. Reads
	// keep working. When the cause was a full disk, the error also wraps
	// ErrNoSpace.
	ErrFailed = errors.New("index: store failed, reopen required")
)

// isNoSpace reports whether err was caused by ENOSPC. pebble wraps errors
// with github.com/cockroachdb/errors, which keeps the Unwrap chain, and some
// paths only keep the message; both are checked.
func isNoSpace(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, ErrNoSpace) {
		return true
	}
	return strings.Contains(err.Error(), "no space left on device")
}
