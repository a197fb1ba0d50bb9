package crypt

import (
	"errors"

	"github.com/berthstore/berth/crypt/internal/aesgcm"
)

// Sentinel errors of package crypt, wrapped with context; test with errors.Is.
var (
	// ErrUnauthenticated: a ciphertext, wrap or MAC failed authentication.
	ErrUnauthenticated = errors.New("crypt: message authentication failed")
	// ErrKeyNotFound: the provider has no key of that name or version.
	ErrKeyNotFound = errors.New("crypt: key not found")
	// ErrKeyDisabled: the key exists but is disabled; re-enable it to use it.
	ErrKeyDisabled = errors.New("crypt: key disabled")
	// ErrKeyDestroyed: the key's material is gone; what only it wraps is lost.
	ErrKeyDestroyed = errors.New("crypt: key destroyed")
	// ErrUnavailable: the provider cannot be reached now; retry later.
	ErrUnavailable = errors.New("crypt: key provider unavailable")
	// ErrInvalidKey: key material of the wrong size or form, or a key name
	// (such as a malformed pkcs11: URI) the provider cannot use.
	ErrInvalidKey = errors.New("crypt: invalid key")
	// ErrKeyExists: CreateKey with a name already in use.
	ErrKeyExists = errors.New("crypt: key already exists")
	// ErrUnsupported: the provider cannot do this operation (for example
	// PKCS#11 in a build without cgo, or key management on a provider
	// that only wraps and unwraps).
	ErrUnsupported = errors.New("crypt: operation not supported")
	// ErrInvalidSetting: BERTH_AESGCM holds a value other than "stdlib" or
	// "auto"; frames are neither sealed nor opened until it is fixed.
	ErrInvalidSetting = aesgcm.ErrInvalidSetting
)
