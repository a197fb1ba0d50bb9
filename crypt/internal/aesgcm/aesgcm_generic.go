//go:build !amd64 || purego

package aesgcm

import "crypto/cipher"

// hasAsm reports whether the assembly implementation is available. It never
// is on this platform or with the purego build tag.
const hasAsm = false

// New returns an AES-GCM AEAD for key (16, 24 or 32 bytes) with 12-byte
// nonces and 16-byte tags. On this platform it is the standard library's
// implementation, crypto/cipher.NewGCM(aes.NewCipher(key)).
func New(key []byte) (cipher.AEAD, error) {
	return newStdlib(key)
}
