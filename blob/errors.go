package blob

import "errors"

// Sentinel errors of package blob, wrapped with the digest or path
// concerned; test with errors.Is.
var (
	// ErrNotFound: no blob file with that digest.
	ErrNotFound = errors.New("blob: not found")
	// ErrCorrupt: a stored file failed a structural check or its
	// authentication; no bytes of it are returned.
	ErrCorrupt = errors.New("blob: corrupt")
	// ErrDigestMismatch: the written bytes do not have the expected digest.
	ErrDigestMismatch = errors.New("blob: digest mismatch")
	// ErrSizeMismatch: the written bytes are not the expected length.
	ErrSizeMismatch = errors.New("blob: size mismatch")
	// ErrTooLarge: the writer reached its size limit.
	ErrTooLarge = errors.New("blob: size limit exceeded")
	// ErrNoSpace: the device is full. Nothing partial was kept.
	ErrNoSpace = errors.New("blob: no space left on device")
	// ErrUnsupportedDigest: a digest algorithm other than sha256 or sha512.
	ErrUnsupportedDigest = errors.New("blob: unsupported digest algorithm")
	// ErrWriterClosed: the writer was committed, cancelled or closed.
	ErrWriterClosed = errors.New("blob: writer closed")
	// ErrBadState: a resume state that does not match its file.
	ErrBadState = errors.New("blob: invalid writer state")
	// ErrUnavailable: the backend did not answer in time or answered with
	// a transient failure (an object store's 5xx, throttling, a network
	// error). Nothing was changed; the call can be retried.
	ErrUnavailable = errors.New("blob: backend unavailable")
	// ErrKeyRequired: the blob is sealed and no data key was given.
	ErrKeyRequired = errors.New("blob: data key required")
)
