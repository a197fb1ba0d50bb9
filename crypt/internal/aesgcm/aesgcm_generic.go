//go:build !amd64 || purego

package aesgcm

import "crypto/cipher"

// hasAsm and hasAsmAVX2 report whether the AVX-512 and the AVX2 assembly
// implementations are available. They never are on this platform or with
// the purego build tag.
const (
	hasAsm     = false
	hasAsmAVX2 = false
)

// New returns an AES-GCM AEAD for key (16, 24 or 32 bytes) with 12-byte
// nonces and 16-byte tags. On this platform it is the standard library's
// implementation, crypto/cipher.NewGCM(aes.NewCipher(key)).
func New(key []byte) (cipher.AEAD, error) {
	return newStdlib(key)
}
