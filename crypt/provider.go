package crypt

import "context"

// DefaultKeyName is the key-encryption key used when a repository names
// none (ECR's AES256 encryption type).
const DefaultKeyName = "berth-default"

// WrappedKey is a data key sealed under one version of a named KEK.
type WrappedKey struct {
	// KeyName names the KEK in its provider.
	KeyName string `json:"key"`
	// Version is the KEK version that sealed it.
	Version uint32 `json:"version"`
	// Ciphertext is the provider's sealed form of the data key.
	Ciphertext []byte `json:"ciphertext"`
}

// KeyState is the lifecycle state of a KEK.
type KeyState string

// Key states.
const (
	KeyEnabled   KeyState = "enabled"
	KeyDisabled  KeyState = "disabled"
	KeyDestroyed KeyState = "destroyed"
)

// KeyInfo describes one KEK.
type KeyInfo struct {
	Name           string   `json:"name"`
	State          KeyState `json:"state"`
	PrimaryVersion uint32   `json:"primaryVersion"`
	Versions       int      `json:"versions"`
}

// KeyProvider holds key-encryption keys and wraps and unwraps data keys
// with them. Implementations are safe for concurrent use.
type KeyProvider interface {
	// Wrap seals dataKey under the primary version of the KEK keyName,
	// binding ad (associated data) to the wrap.
	Wrap(ctx context.Context, keyName string, dataKey, ad []byte) (WrappedKey, error)
	// Unwrap opens w, which must have been made with the same ad.
	Unwrap(ctx context.Context, w WrappedKey, ad []byte) ([]byte, error)
	// Keys lists the provider's KEKs.
	Keys(ctx context.Context) ([]KeyInfo, error)
}
