package crypt

import (
	"crypto/cipher"
	"fmt"
)

// MaxValueSize bounds a value SealValue seals: small secrets (upstream
// registry credentials), not blobs, which go through FrameSealer.
const MaxValueSize = 1 << 20

// SealValue seals a small value (a stored secret) under a key derived
// from dataKey (HKDF-SHA256, its own label, so a data key never seals a
// frame and a value alike), with AES-256-GCM and a random nonce: the
// result is nonce ‖ ciphertext ‖ tag. ad is bound to it: OpenValue with
// other associated data fails.
func SealValue(dataKey, value, ad []byte) ([]byte, error) {
	aead, err := valueAEAD(dataKey)
	if err != nil {
		return nil, err
	}
	if len(value) > MaxValueSize {
		return nil, fmt.Errorf("%w: a value of %d bytes (at most %d)", ErrInvalidKey, len(value), MaxValueSize)
	}
	return aead.Seal(make([]byte, 0, len(value)+aead.Overhead()), nil, value, ad), nil
}

// OpenValue opens what SealValue sealed with the same data key and
// associated data, or fails with ErrUnauthenticated.
func OpenValue(dataKey, sealed, ad []byte) ([]byte, error) {
	aead, err := valueAEAD(dataKey)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.Overhead() {
		return nil, fmt.Errorf("%w: sealed value too short", ErrUnauthenticated)
	}
	out, err := aead.Open(nil, nil, sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed value", ErrUnauthenticated)
	}
	return out, nil
}

// valueAEAD is the AEAD values are sealed with under dataKey.
func valueAEAD(dataKey []byte) (cipher.AEAD, error) {
	if len(dataKey) != DataKeySize {
		return nil, fmt.Errorf("%w: data key of %d bytes", ErrInvalidKey, len(dataKey))
	}
	aead, err := newWrapAEAD(derive(dataKey, nil, "berth value key v1"))
	if err != nil {
		return nil, fmt.Errorf("crypt: %w", err)
	}
	return aead, nil
}
